// The built-in processors. Each function returns the static descriptor of one
// processor compiled into this library (the static reference path); the same
// sources are also built into one .so module each (the dlopen path).
// [any thread]; never fails.
#pragma once

#include <rackterm/processor.h>

extern "C" {
const rackterm_processor_v2* rackterm_builtin_gain(void);
const rackterm_processor_v2* rackterm_builtin_oscillator(void);
const rackterm_processor_v2* rackterm_builtin_biquad(void);
const rackterm_processor_v2* rackterm_builtin_saturator(void);
const rackterm_processor_v2* rackterm_builtin_delay(void);
}

namespace rackterm::processors {
/// Every built-in, in a fixed order; ends with nullptr.
inline const rackterm_processor_v2* const* builtinDescriptors() noexcept {
    static const rackterm_processor_v2* const all[] = {
        rackterm_builtin_gain(),      rackterm_builtin_oscillator(), rackterm_builtin_biquad(),
        rackterm_builtin_saturator(), rackterm_builtin_delay(),      nullptr};
    return all;
}
}  // namespace rackterm::processors
