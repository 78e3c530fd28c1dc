#include <rackterm/app/Meters.hpp>

#include <algorithm>
#include <cmath>

namespace rackterm::app {

float toDbfs(float linear) noexcept { return linear > 1e-6f ? 20.0f * std::log10(linear) : -120.0f; }

void MeterBallistics::update(const float peak[2], const float rms[2], double dt, double now) noexcept {
    const float fall = static_cast<float>(kPeakFallDbPerSecond * dt);
    const float rmsCoeff = static_cast<float>(1.0 - std::exp(-dt / kRmsSeconds));
    for (int c = 0; c < 2; ++c) {
        const float p = toDbfs(peak[c]);
        reading_.peakDb[c] = std::max(p, reading_.peakDb[c] - fall);
        reading_.rmsDb[c] += (toDbfs(rms[c]) - reading_.rmsDb[c]) * rmsCoeff;
        if (p >= reading_.holdDb[c] || now - holdTime_[c] > kHoldSeconds) {
            reading_.holdDb[c] = p;
            holdTime_[c] = now;
        }
    }
}

}  // namespace rackterm::app
