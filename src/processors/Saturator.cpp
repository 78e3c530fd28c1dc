// saturator: tanh soft clipper with first-order antiderivative anti-aliasing
// (ADAA; Parker, Zavalishin, Le Bivic, "Reducing the aliasing of nonlinear
// waveshaping using continuous-time convolution", DAFx-16).
// drive_db 0..48 dB, mix 0..1 (dry/wet), output_db -24..12 dB.
#include "Builtins.hpp"

#include <rackterm/Dsp.hpp>
#include <rackterm/Processor.hpp>

#include <cmath>

namespace {

using namespace rackterm::sdk;

/// Antiderivative of tanh: log(cosh(x)), written to stay finite for large |x|.
inline double logCosh(double x) noexcept {
    const double a = std::fabs(x);
    return a + std::log1p(std::exp(-2.0 * a)) - 0.6931471805599453;
}

class Saturator {
public:
    static constexpr const char* kId = "saturator";
    static constexpr const char* kName = "Saturator";
    static constexpr const char* kVersion = "1.0.0";
    static constexpr std::array<rackterm_param_info, 3> kParams{{
        {"drive_db", "Drive", "dB", 0.0f, 48.0f, 0.0f, 0u, nullptr},
        {"mix", "Mix", "", 0.0f, 1.0f, 1.0f, 0u, nullptr},
        {"output_db", "Output", "dB", -24.0f, 12.0f, 0.0f, 0u, nullptr},
    }};

    Saturator(double sr, uint32_t) {
        drive_.prepare(sr, 0.02);
        mix_.prepare(sr, 0.02);
        out_.prepare(sr, 0.02);
    }
    void reset() noexcept {
        for (auto& s : state_) s = {};
    }
    void process(const float* const* in, float* const* out, uint32_t frames,
                 const float* p) noexcept {
        drive_.setTarget(dbToGain(p[0]));
        mix_.setTarget(p[1]);
        out_.setTarget(dbToGain(p[2]));
        for (uint32_t i = 0; i < frames; ++i) {
            const float d = drive_.next(), m = mix_.next(), o = out_.next();
            for (uint32_t c = 0; c < 2; ++c) {
                const float x = in[c][i];
                const float wet = shape(state_[c], static_cast<double>(x) * d);
                out[c][i] = (x + m * (wet - x)) * o;
            }
        }
    }

private:
    struct State {
        double x1 = 0.0;
        double f1 = 0.0;  // logCosh(x1)
    };
    static float shape(State& s, double x) noexcept {
        const double fx = logCosh(x);
        const double dx = x - s.x1;
        double y;
        if (std::fabs(dx) > 1e-5) y = (fx - s.f1) / dx;
        else y = std::tanh(0.5 * (x + s.x1));
        s.x1 = x;
        s.f1 = fx;
        return static_cast<float>(y);
    }
    LinearSmoother drive_, mix_, out_;
    State state_[2];
};

}  // namespace

extern "C" const rackterm_processor_v2* rackterm_builtin_saturator(void) {
    return descriptorFor<Saturator>();
}
