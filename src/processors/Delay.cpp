// delay: stereo feedback delay with a linearly interpolated, smoothed time.
// time_ms 1..2000, feedback 0..0.95, mix 0..1. Memory: 2 x (2 s + 1 block) floats,
// allocated in create().
#include "Builtins.hpp"

#include <rackterm/Dsp.hpp>
#include <rackterm/Processor.hpp>

#include <cmath>
#include <vector>

namespace {

using namespace rackterm::sdk;

class Delay {
public:
    static constexpr const char* kId = "delay";
    static constexpr const char* kName = "Delay";
    static constexpr const char* kVersion = "1.0.0";
    static constexpr std::array<rackterm_param_info, 3> kParams{{
        {"time_ms", "Time", "ms", 1.0f, 2000.0f, 250.0f, 0u, nullptr},
        {"feedback", "Feedback", "", 0.0f, 0.95f, 0.3f, 0u, nullptr},
        {"mix", "Mix", "", 0.0f, 1.0f, 0.3f, 0u, nullptr},
    }};

    Delay(double sr, uint32_t maxFrames) : sampleRate_(sr) {
        size_ = static_cast<size_t>(std::ceil(sr * 2.0)) + maxFrames + 4;
        for (auto& b : line_) b.assign(size_, 0.0f);
        time_.prepare(sr, 0.05);
        feedback_.prepare(sr, 0.02);
        mix_.prepare(sr, 0.02);
    }
    void reset() noexcept {
        for (auto& b : line_) std::fill(b.begin(), b.end(), 0.0f);
        write_ = 0;
    }
    void process(const float* const* in, float* const* out, uint32_t frames,
                 const float* p) noexcept {
        time_.setTarget(static_cast<float>(p[0] * 0.001 * sampleRate_));
        feedback_.setTarget(p[1]);
        mix_.setTarget(p[2]);
        const double size = static_cast<double>(size_);
        for (uint32_t i = 0; i < frames; ++i) {
            const double delay = time_.next();
            const float fb = feedback_.next(), m = mix_.next();
            double pos = static_cast<double>(write_) - delay;
            if (pos < 0.0) pos += size;
            const size_t i0 = static_cast<size_t>(pos);
            const size_t i1 = (i0 + 1 == size_) ? 0 : i0 + 1;
            const float frac = static_cast<float>(pos - static_cast<double>(i0));
            for (uint32_t c = 0; c < 2; ++c) {
                const float* l = line_[c].data();
                const float wet = l[i0] + frac * (l[i1] - l[i0]);
                const float x = in[c][i];
                line_[c][write_] = x + fb * wet;
                out[c][i] = x + m * (wet - x);
            }
            if (++write_ == size_) write_ = 0;
        }
    }

private:
    double sampleRate_;
    size_t size_ = 0, write_ = 0;
    std::vector<float> line_[2];
    LinearSmoother time_, feedback_, mix_;
};

}  // namespace

extern "C" const rackterm_processor_v2* rackterm_builtin_delay(void) { return descriptorFor<Delay>(); }
