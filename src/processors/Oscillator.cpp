// oscillator: band-limited sine, saw, square and triangle, added to the input.
// Saw and square use 2-point polyBLEP step residuals, the triangle the
// integrated residual (polyBLAMP) at its two corners (Valimaki, Pekonen,
// Nam, "Perceptually informed synthesis of bandlimited classical waveforms
// using integrated polynomial interpolation", JASA 2012).
// waveform 0..3, frequency_hz 20..20000 (log), level_db -60..0.
#include "Builtins.hpp"

#include <rackterm/Dsp.hpp>
#include <rackterm/Processor.hpp>

#include <cmath>

namespace {

using namespace rackterm::sdk;

/// Residual of a unit upward step, x in samples from the step (|x| < 1).
inline double blep(double x) noexcept {
    if (x >= 0.0) return -(1.0 - x) * (1.0 - x) * 0.5;
    return (x + 1.0) * (x + 1.0) * 0.5;
}
/// Residual of a unit slope increase (integral of blep), x in samples.
inline double blamp(double x) noexcept {
    if (x >= 0.0) return (1.0 - x) * (1.0 - x) * (1.0 - x) / 6.0;
    return (x + 1.0) * (x + 1.0) * (x + 1.0) / 6.0;
}
/// Distance in samples from a discontinuity at phase `at` (cycles), or 2 when
/// farther than one sample (no correction). dt = cycles per sample.
inline double samplesFrom(double phase, double at, double dt) noexcept {
    double d = phase - at;
    if (d < -0.5) d += 1.0;
    if (d >= 0.5) d -= 1.0;
    const double x = d / dt;
    return (x > -1.0 && x < 1.0) ? x : 2.0;
}

class Oscillator {
public:
    static constexpr const char* kId = "oscillator";
    static constexpr const char* kName = "Oscillator";
    static constexpr const char* kVersion = "1.0.0";
    static constexpr std::array<rackterm_param_info, 3> kParams{{
        {"waveform", "Waveform", "", 0.0f, 3.0f, 0.0f, RACKTERM_PARAM_INTEGER, "sine|saw|square|triangle"},
        {"frequency_hz", "Frequency", "Hz", 20.0f, 20000.0f, 440.0f, RACKTERM_PARAM_LOG, nullptr},
        {"level_db", "Level", "dB", -60.0f, 0.0f, -12.0f, 0u, nullptr},
    }};

    Oscillator(double sr, uint32_t) : sampleRate_(sr) {
        frequency_.prepare(sr, 0.02);
        level_.prepare(sr, 0.02);
    }
    void reset() noexcept { phase_ = 0.0; }
    void process(const float* const* in, float* const* out, uint32_t frames,
                 const float* p) noexcept {
        const int waveform = static_cast<int>(p[0]);
        frequency_.setTarget(p[1]);
        level_.setTarget(dbToGain(p[2]));
        for (uint32_t i = 0; i < frames; ++i) {
            const double dt = static_cast<double>(frequency_.next()) / sampleRate_;
            const float s = static_cast<float>(sample(waveform, dt)) * level_.next();
            out[0][i] = in[0][i] + s;
            out[1][i] = in[1][i] + s;
            phase_ += dt;
            if (phase_ >= 1.0) phase_ -= 1.0;
        }
    }

private:
    double sample(int waveform, double dt) const noexcept {
        const double ph = phase_;
        switch (waveform) {
            case 1: {  // saw: falls by 2 at phase 0
                double x = samplesFrom(ph, 0.0, dt);
                return 2.0 * ph - 1.0 - (x < 2.0 ? 2.0 * blep(x) : 0.0);
            }
            case 2: {  // square: rises by 2 at 0, falls by 2 at 0.5
                double v = ph < 0.5 ? 1.0 : -1.0;
                double x0 = samplesFrom(ph, 0.0, dt), x1 = samplesFrom(ph, 0.5, dt);
                if (x0 < 2.0) v += 2.0 * blep(x0);
                if (x1 < 2.0) v -= 2.0 * blep(x1);
                return v;
            }
            case 3: {  // triangle: peak at 0 (slope -8 dt), trough at 0.5 (slope +8 dt)
                double v = 2.0 * std::fabs(2.0 * ph - 1.0) - 1.0;
                double x0 = samplesFrom(ph, 0.0, dt), x1 = samplesFrom(ph, 0.5, dt);
                if (x0 < 2.0) v -= 8.0 * dt * blamp(x0);
                if (x1 < 2.0) v += 8.0 * dt * blamp(x1);
                return v;
            }
            default:
                return std::sin(6.283185307179586 * ph);
        }
    }
    double sampleRate_;
    double phase_ = 0.0;
    LinearSmoother frequency_, level_;
};

}  // namespace

extern "C" const rackterm_processor_v2* rackterm_builtin_oscillator(void) {
    return descriptorFor<Oscillator>();
}
