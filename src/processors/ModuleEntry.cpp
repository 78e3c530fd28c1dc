// The one exported symbol of a built-in processor module. Compiled once per
// module with RACKTERM_BUILTIN set to the processor's id (e.g. gain).
#include "Builtins.hpp"

#include <rackterm/Processor.hpp>

#define RACKTERM_CAT2(a, b) a##b
#define RACKTERM_CAT(a, b) RACKTERM_CAT2(a, b)

RACKTERM_EXPORT const rackterm_processor_v2* rackterm_processor_entry(void) {
    return RACKTERM_CAT(rackterm_builtin_, RACKTERM_BUILTIN)();
}
