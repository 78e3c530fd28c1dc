// Interleaved <-> planar stereo conversion for file I/O (render) and
// recording. Built at -O3 in src/rt so the stereo case vectorises.
// [any thread]; noexcept; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rackterm::engine::rt {

/// Split `frames` interleaved frames of `channels` channels into `left` and
/// `right`: a mono source goes to both, beyond two channels the first two.
void deinterleave(const float* interleaved, size_t channels, float* left, float* right, size_t frames) noexcept;

/// Join `left` and `right` into `frames` interleaved stereo frames.
void interleave(const float* left, const float* right, float* interleaved, size_t frames) noexcept;

}  // namespace rackterm::engine::rt
