// drive: an example processor to edit while it plays. Change the shaping
// line, save, and hear the new code about a second later, crossfaded.
// Try: replace std::tanh by a hard clip, std::clamp(x, -0.5f, 0.5f), and save.
#include <rackterm/Dsp.hpp>
#include <rackterm/Processor.hpp>

#include <algorithm>
#include <cmath>

namespace {

using rackterm::sdk::dbToGain;
using rackterm::sdk::LinearSmoother;

class Drive {
public:
    static constexpr const char* kId = "drive";
    static constexpr const char* kName = "Drive";
    static constexpr const char* kVersion = "1.0.0";
    static constexpr std::array<rackterm_param_info, 2> kParams{{
        {"drive_db", "Drive", "dB", 0.0f, 36.0f, 12.0f, 0u, nullptr},
        {"output_db", "Output", "dB", -24.0f, 6.0f, -6.0f, 0u, nullptr},
    }};

    Drive(double sampleRate, uint32_t) {
        drive_.prepare(sampleRate, 0.02);
        output_.prepare(sampleRate, 0.02);
    }
    void reset() noexcept {}
    void process(const float* const* in, float* const* out, uint32_t frames, const float* params) noexcept {
        drive_.setTarget(dbToGain(params[0]));
        output_.setTarget(dbToGain(params[1]));
        for (uint32_t i = 0; i < frames; ++i) {
            const float d = drive_.next(), o = output_.next();
            for (uint32_t c = 0; c < 2; ++c) {
                const float x = in[c][i] * d;
                out[c][i] = std::tanh(x) * o;  // <- the sound of this processor
            }
        }
    }

private:
    LinearSmoother drive_, output_;
};

}  // namespace

RACKTERM_PROCESSOR(Drive)
