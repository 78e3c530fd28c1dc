// gain: a smoothed stereo gain stage. gain_db -60..24 dB.
#include "Builtins.hpp"

#include <rackterm/Dsp.hpp>
#include <rackterm/Processor.hpp>

namespace {

using namespace rackterm::sdk;

class Gain {
public:
    static constexpr const char* kId = "gain";
    static constexpr const char* kName = "Gain";
    static constexpr const char* kVersion = "1.0.0";
    static constexpr std::array<rackterm_param_info, 1> kParams{{
        {"gain_db", "Gain", "dB", -60.0f, 24.0f, 0.0f, 0u, nullptr},
    }};

    Gain(double sr, uint32_t) { gain_.prepare(sr, 0.02); }
    void reset() noexcept {}
    void process(const float* const* in, float* const* out, uint32_t frames,
                 const float* p) noexcept {
        gain_.setTarget(dbToGain(p[0]));
        if (!gain_.isSmoothing()) {
            const float g = gain_.current();
            for (uint32_t c = 0; c < 2; ++c)
                for (uint32_t i = 0; i < frames; ++i) out[c][i] = in[c][i] * g;
            return;
        }
        for (uint32_t i = 0; i < frames; ++i) {
            const float g = gain_.next();
            out[0][i] = in[0][i] * g;
            out[1][i] = in[1][i] * g;
        }
    }

private:
    LinearSmoother gain_;
};

}  // namespace

extern "C" const rackterm_processor_v2* rackterm_builtin_gain(void) { return descriptorFor<Gain>(); }
