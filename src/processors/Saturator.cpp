// saturator: the algebraic soft clipper f(x) = x / sqrt(1 + x^2) with
// first-order antiderivative anti-aliasing (ADAA; Parker, Zavalishin,
// Le Bivic, "Reducing the aliasing of nonlinear waveshaping using
// continuous-time convolution", DAFx-16). With F(x) = sqrt(1 + x^2) - 1 the
// ADAA quotient (F(x) - F(x1)) / (x - x1) equals (x + x1) / (s(x) + s(x1)),
// s(x) = sqrt(1 + x^2): exact, never ill-conditioned, one sqrt per sample.
// drive_db 0..48 dB, mix 0..1 (dry/wet), output_db -24..12 dB.
#include "Builtins.hpp"

#include <rackterm/Dsp.hpp>
#include <rackterm/Processor.hpp>

#include <cmath>
#include <vector>

namespace {

using namespace rackterm::sdk;

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

    Saturator(double sr, uint32_t maxFrames) : xd_(maxFrames + 1u), sq_(maxFrames + 1u) {
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
        if (!drive_.isSmoothing() && !mix_.isSmoothing() && !out_.isSmoothing()) {
            for (uint32_t c = 0; c < 2; ++c) steady(state_[c], in[c], out[c], frames);
            return;
        }
        for (uint32_t i = 0; i < frames; ++i) {
            const float d = drive_.next(), m = mix_.next(), o = out_.next();
            for (uint32_t c = 0; c < 2; ++c) {
                const float x = in[c][i];
                const float wet = shape(state_[c], x * d);
                out[c][i] = (x + m * (wet - x)) * o;
            }
        }
    }

private:
    struct State {
        float x1 = 0.0f;
        float s1 = 1.0f;  // sqrt(1 + x1^2)
    };
    /// Constant parameters: the same arithmetic as shape(), in passes the
    /// compiler vectorises (driven input, its sqrt term, then the quotient).
    void steady(State& st, const float* x, float* y, uint32_t frames) noexcept {
        const float d = drive_.current(), m = mix_.current(), o = out_.current();
        float* xd = xd_.data();
        float* sq = sq_.data();
        xd[0] = st.x1;
        sq[0] = st.s1;
        for (uint32_t i = 0; i < frames; ++i) xd[i + 1] = x[i] * d;
        for (uint32_t i = 0; i < frames; ++i) sq[i + 1] = std::sqrt(1.0f + xd[i + 1] * xd[i + 1]);
        for (uint32_t i = 0; i < frames; ++i) {
            const float wet = (xd[i + 1] + xd[i]) / (sq[i + 1] + sq[i]);
            y[i] = (x[i] + m * (wet - x[i])) * o;
        }
        st.x1 = xd[frames];
        st.s1 = sq[frames];
    }
    static float shape(State& st, float x) noexcept {
        const float s = std::sqrt(1.0f + x * x);
        const float y = (x + st.x1) / (s + st.s1);
        st.x1 = x;
        st.s1 = s;
        return y;
    }
    LinearSmoother drive_, mix_, out_;
    State state_[2];
    std::vector<float> xd_, sq_;  // scratch: maxFrames + 1 each
};

}  // namespace

extern "C" const rackterm_processor_v2* rackterm_builtin_saturator(void) {
    return descriptorFor<Saturator>();
}
