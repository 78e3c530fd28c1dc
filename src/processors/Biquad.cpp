// biquad: RBJ Audio EQ Cookbook filters (Robert Bristow-Johnson), transposed
// direct form II, double precision state. Coefficients are recomputed every
// 16 frames while a parameter glides, so sweeps do not zipper.
// type 0..6 (lowpass, highpass, bandpass, notch, peak, lowshelf, highshelf),
// frequency_hz 20..20000 (log), q 0.1..18, gain_db -24..24 (peak and shelves).
#include "Builtins.hpp"

#include <rackterm/Dsp.hpp>
#include <rackterm/Processor.hpp>

#include <cmath>

namespace {

using namespace rackterm::sdk;

struct Coefficients {
    double b0 = 1, b1 = 0, b2 = 0, a1 = 0, a2 = 0;
};

/// RBJ cookbook coefficients, normalised by a0. f0 in Hz, fs in Hz, gain in dB.
Coefficients rbj(int type, double f0, double q, double gainDb, double fs) noexcept {
    f0 = std::min(f0, 0.49 * fs);
    const double A = std::pow(10.0, gainDb / 40.0);
    const double w0 = 2.0 * 3.141592653589793 * f0 / fs;
    const double cw = std::cos(w0), sw = std::sin(w0);
    const double alpha = sw / (2.0 * q);
    double b0, b1, b2, a0, a1, a2;
    switch (type) {
        case 1:  // highpass
            b0 = (1 + cw) / 2; b1 = -(1 + cw); b2 = (1 + cw) / 2;
            a0 = 1 + alpha; a1 = -2 * cw; a2 = 1 - alpha; break;
        case 2:  // bandpass, constant 0 dB peak gain
            b0 = alpha; b1 = 0; b2 = -alpha;
            a0 = 1 + alpha; a1 = -2 * cw; a2 = 1 - alpha; break;
        case 3:  // notch
            b0 = 1; b1 = -2 * cw; b2 = 1;
            a0 = 1 + alpha; a1 = -2 * cw; a2 = 1 - alpha; break;
        case 4:  // peaking EQ
            b0 = 1 + alpha * A; b1 = -2 * cw; b2 = 1 - alpha * A;
            a0 = 1 + alpha / A; a1 = -2 * cw; a2 = 1 - alpha / A; break;
        case 5: {  // low shelf
            const double s = 2 * std::sqrt(A) * alpha;
            b0 = A * ((A + 1) - (A - 1) * cw + s); b1 = 2 * A * ((A - 1) - (A + 1) * cw);
            b2 = A * ((A + 1) - (A - 1) * cw - s); a0 = (A + 1) + (A - 1) * cw + s;
            a1 = -2 * ((A - 1) + (A + 1) * cw); a2 = (A + 1) + (A - 1) * cw - s; break;
        }
        case 6: {  // high shelf
            const double s = 2 * std::sqrt(A) * alpha;
            b0 = A * ((A + 1) + (A - 1) * cw + s); b1 = -2 * A * ((A - 1) + (A + 1) * cw);
            b2 = A * ((A + 1) + (A - 1) * cw - s); a0 = (A + 1) - (A - 1) * cw + s;
            a1 = 2 * ((A - 1) - (A + 1) * cw); a2 = (A + 1) - (A - 1) * cw - s; break;
        }
        default:  // lowpass
            b0 = (1 - cw) / 2; b1 = 1 - cw; b2 = (1 - cw) / 2;
            a0 = 1 + alpha; a1 = -2 * cw; a2 = 1 - alpha; break;
    }
    return {b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0};
}

class Biquad {
public:
    static constexpr const char* kId = "biquad";
    static constexpr const char* kName = "Biquad";
    static constexpr const char* kVersion = "1.0.0";
    static constexpr std::array<rackterm_param_info, 4> kParams{{
        {"type", "Type", "", 0.0f, 6.0f, 0.0f, RACKTERM_PARAM_INTEGER,
         "lowpass|highpass|bandpass|notch|peak|lowshelf|highshelf"},
        {"frequency_hz", "Frequency", "Hz", 20.0f, 20000.0f, 1000.0f, RACKTERM_PARAM_LOG, nullptr},
        {"q", "Q", "", 0.1f, 18.0f, 0.7071f, 0u, nullptr},
        {"gain_db", "Gain", "dB", -24.0f, 24.0f, 0.0f, 0u, nullptr},
    }};

    Biquad(double sr, uint32_t) : sampleRate_(sr) {
        frequency_.prepare(sr, 0.03);
        q_.prepare(sr, 0.03);
        gain_.prepare(sr, 0.03);
        coeffs_ = rbj(0, 1000.0, 0.7071, 0.0, sr);
    }
    void reset() noexcept {
        for (auto& s : state_) s[0] = s[1] = 0.0;
    }
    void process(const float* const* in, float* const* out, uint32_t frames,
                 const float* p) noexcept {
        const int type = static_cast<int>(p[0]);
        frequency_.setTarget(p[1]);
        q_.setTarget(p[2]);
        gain_.setTarget(p[3]);
        if (type != type_ || frequency_.isSmoothing() || q_.isSmoothing() || gain_.isSmoothing() ||
            !valid_) {
            type_ = type;
            valid_ = true;
            update(0);  // settle the first coefficients of this block
        }
        uint32_t i = 0;
        while (i < frames) {
            const uint32_t n = std::min<uint32_t>(16u, frames - i);
            if (frequency_.isSmoothing() || q_.isSmoothing() || gain_.isSmoothing()) update(n);
            run(in, out, i, n);
            i += n;
        }
    }

private:
    void update(uint32_t advance) noexcept {
        float f = frequency_.current(), q = q_.current(), g = gain_.current();
        for (uint32_t k = 0; k < advance; ++k) { f = frequency_.next(); q = q_.next(); g = gain_.next(); }
        coeffs_ = rbj(type_, f, q, g, sampleRate_);
    }
    /// Both channels in one loop body, so the compiler pairs them (2 x double SIMD).
    void run(const float* const* in, float* const* out, uint32_t offset, uint32_t n) noexcept {
        const Coefficients& k = coeffs_;
        double z1[2] = {state_[0][0], state_[1][0]}, z2[2] = {state_[0][1], state_[1][1]};
        const float* x0 = in[0] + offset;
        const float* x1 = in[1] + offset;
        float* y0 = out[0] + offset;
        float* y1 = out[1] + offset;
        for (uint32_t i = 0; i < n; ++i) {
            const double v[2] = {x0[i], x1[i]};
            double o[2];
            for (int c = 0; c < 2; ++c) {
                o[c] = k.b0 * v[c] + z1[c];
                z1[c] = k.b1 * v[c] - k.a1 * o[c] + z2[c];
                z2[c] = k.b2 * v[c] - k.a2 * o[c];
            }
            y0[i] = static_cast<float>(o[0]);
            y1[i] = static_cast<float>(o[1]);
        }
        for (int c = 0; c < 2; ++c) {
            state_[c][0] = z1[c];
            state_[c][1] = z2[c];
        }
    }
    double sampleRate_;
    int type_ = 0;
    bool valid_ = false;
    Coefficients coeffs_;
    double state_[2][2] = {{0, 0}, {0, 0}};
    LinearSmoother frequency_, q_, gain_;
};

}  // namespace

extern "C" const rackterm_processor_v2* rackterm_builtin_biquad(void) { return descriptorFor<Biquad>(); }
