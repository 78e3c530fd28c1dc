// Meter ballistics and peak hold for one meter (a node's or the master's),
// as the console shows them: peak falls 20 dB per second, RMS follows with
// a 300 ms time constant, the peak hold stays 2 s. [control].
#pragma once

namespace rackterm::app {

/// Meter readings after ballistics, in dBFS (-inf shown as -120), two channels.
struct NodeMeter {
    float peakDb[2] = {-120, -120};
    float rmsDb[2] = {-120, -120};
    float holdDb[2] = {-120, -120};
    float cpuShare = 0;  ///< share of the block period this node took, 0..1
};

/// Level in dBFS of a linear amplitude; -120 at or below 1e-6 (-120 dBFS).
float toDbfs(float linear) noexcept;

class MeterBallistics {
public:
    /// Peak fall rate, dB per second.
    static constexpr float kPeakFallDbPerSecond = 20.0f;
    /// RMS time constant, seconds (exponential smoothing of the dB reading).
    static constexpr double kRmsSeconds = 0.3;
    /// How long a peak hold stays before it follows the signal down, seconds.
    static constexpr double kHoldSeconds = 2.0;

    /// Feed one reading taken `dt` seconds (0..1) after the previous one, at
    /// time `now` (seconds, any steady clock): linear peak and RMS per
    /// channel (0 = silence). A louder peak moves the hold up at once.
    void update(const float peak[2], const float rms[2], double dt, double now) noexcept;
    /// Share of the block period the node took (0..1), shown beside the meter.
    void setCpuShare(float share) noexcept { reading_.cpuShare = share; }
    const NodeMeter& reading() const noexcept { return reading_; }

private:
    NodeMeter reading_;
    double holdTime_[2] = {0, 0};  // when each channel's hold was last set, seconds
};

}  // namespace rackterm::app
