// Small DSP helpers shared by the built-in processors and the host's player.
// All functions are [any thread], noexcept, allocation-free.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace rackterm::sdk {

/// Decibels to linear amplitude: 10^(dB/20).
inline float dbToGain(float db) noexcept { return std::pow(10.0f, db * 0.05f); }

/// Linear amplitude to decibels (floor -240 dB for 0).
inline float gainToDb(float g) noexcept { return g > 1e-12f ? 20.0f * std::log10(g) : -240.0f; }

/// Linear ramp from the current value to a target over a fixed time, so a
/// parameter jump never makes a step in the signal (no zipper noise).
/// `setTarget` is cheap when the target is unchanged.
class LinearSmoother {
public:
    /// [control] Ramp length `seconds` at `sampleRateHz`. The first
    /// setTarget() jumps there: a new instance starts at the values it was
    /// given, not gliding from its defaults.
    void prepare(double sampleRateHz, double seconds) noexcept {
        rampFrames_ = std::max<uint32_t>(1u, static_cast<uint32_t>(sampleRateHz * seconds));
        current_ = target_ = 0.0f;
        step_ = 0.0f;
        remaining_ = 0;
        primed_ = false;
    }
    /// [audio] Start a ramp toward `target` unless it is already the target.
    void setTarget(float target) noexcept {
        if (!primed_) {
            primed_ = true;
            snap(target);
            return;
        }
        if (target == target_) return;
        target_ = target;
        remaining_ = rampFrames_;
        step_ = (target_ - current_) / static_cast<float>(rampFrames_);
    }
    /// [audio] Jump to `value` with no ramp.
    void snap(float value) noexcept { current_ = target_ = value; remaining_ = 0; step_ = 0.0f; }
    /// [audio] The next value of the ramp.
    float next() noexcept {
        if (remaining_ == 0) return current_;
        if (--remaining_ == 0) current_ = target_;
        else current_ += step_;
        return current_;
    }
    bool isSmoothing() const noexcept { return remaining_ != 0; }
    float current() const noexcept { return current_; }
    float target() const noexcept { return target_; }

private:
    float current_ = 0.0f, target_ = 0.0f, step_ = 0.0f;
    uint32_t remaining_ = 0, rampFrames_ = 1;
    bool primed_ = false;
};

}  // namespace rackterm::sdk
