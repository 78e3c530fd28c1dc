// The trial a new processor build passes before anyone hears it: a few
// blocks run offline at the session's sample rate and block size on silence,
// an impulse and noise. NaN or Inf in the output, or a median block time
// above the block's period, fails it. rackterm-sandbox runs it in a process
// of its own (so a crash or an endless loop fails the trial, not the host);
// without the sandbox the control thread runs it. [control].
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/processor.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace rackterm::loader {

/// Blocks of each trial signal: silence, then an impulse (1.0 on every input
/// channel at the first frame), then white noise (uniform, +-0.5, a fixed seed).
inline constexpr uint32_t kTrialSilenceBlocks = 8, kTrialImpulseBlocks = 8, kTrialNoiseBlocks = 16;

/// What a trial found.
struct TrialReport {
    /// "" when it passed; else one line, e.g. "NaN in output 2 at block 3 of the impulse".
    std::string problem;
    uint32_t blocks = 0;              ///< blocks run
    double medianBlockSeconds = 0;    ///< over every block run
    double maxBlockSeconds = 0;
};

/// Run `instance` of `d` (created for `sampleRateHz` and blocks of
/// `blockFrames`) through the trial signals, `d.input_channels` x
/// `blockFrames` non-interleaved in, `d.output_channels` out. `progress` is
/// called before each block with the signal's name ("silence", "impulse",
/// "noise") and the block's number within it (from 1). The period is
/// blockFrames / sampleRateHz seconds.
TrialReport runTrial(const rackterm_processor_v2& d, rackterm_instance* instance, double sampleRateHz,
                     uint32_t blockFrames, const std::function<void(const char*, uint32_t)>& progress = {});

/// Load the module at `path` (loadModule), create an instance for
/// `sampleRateHz` and blocks of `blockFrames`, send it `values` by id
/// (valuesById) and run the trial. Error: the loader's own, when the module
/// does not load or create() fails.
Result<TrialReport> trialModule(const std::string& path, double sampleRateHz, uint32_t blockFrames,
                                const std::vector<std::pair<std::string, float>>& values,
                                const std::function<void(const char*, uint32_t)>& progress = {});

/// The plain values for `d`'s table from (id, value) pairs: matching ids
/// take the value clamped into range, the rest their default (what a hot
/// swap would send the new build).
std::vector<float> valuesById(const rackterm_processor_v2& d, const std::vector<std::pair<std::string, float>>& byId);

}  // namespace rackterm::loader
