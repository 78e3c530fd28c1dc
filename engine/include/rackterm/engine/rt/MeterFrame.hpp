// MeterFrame: one block's meters, written in place by the audio thread into
// the engine's meter ring and read by the control thread.
#pragma once

#include <rackterm/common/Limits.hpp>

#include <cstdint>

namespace rackterm::engine {

/// Most nodes a rack may hold (the meter frame has a slot per node): the
/// session-wide limit of rackterm/common/Limits.hpp.
inline constexpr uint32_t kMaxNodes = static_cast<uint32_t>(rackterm::kMaxNodes);

/// Per node and master: peak and RMS per channel (linear, full scale 1.0).
/// A frame covers the blocks since the previous one (at least 256 frames of
/// audio, so about 190 a second at 48 kHz, several times the console's
/// redraw rate): the peak is the exact largest |x| of all of them, the RMS
/// that of the frame's last block. Times are filled only when `timed` (every
/// 4th frame, to keep the clock reads off most blocks); otherwise they hold
/// stale values.
struct MeterFrame {
    uint64_t rackSerial = 0;
    uint32_t nodeCount = 0;
    uint32_t frames = 0;  ///< frames of the last block (the RMS's and the times' window)
    bool timed = false;
    float nodePeak[kMaxNodes][2];
    float nodeRms[kMaxNodes][2];
    float nodeNanoseconds[kMaxNodes];
    float masterPeak[2];
    float masterRms[2];
    float blockNanoseconds = 0;
};

}  // namespace rackterm::engine
