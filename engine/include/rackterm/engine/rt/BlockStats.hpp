// Peak and mean square of a block, and whether it is finite, in one pass
// that the compiler vectorises (8 independent lanes, no -ffast-math needed).
// [audio]; noexcept; no allocation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace rackterm::engine::rt {

struct ChannelStats {
    float peak;        ///< largest |x|, linear
    float meanSquare;  ///< mean of x^2 (RMS^2)
    bool finite;       ///< no NaN or Inf
};

/// Both channels of a stereo pair in one pass: peak and finiteness of
/// `frames` samples of `a` and of `b` into out[0] and out[1], plus the mean
/// square when `squares` (else 0). One call per node and block: the NaN/Inf
/// guard and the exact peak the meters hold, the RMS only on the blocks that
/// make a meter frame. The peak and the guard are one integer max of the
/// sign-cleared bits (NaN and Inf order above every finite value), 8 floats a
/// step (AVX2 where the CPU has it, two SSE halves elsewhere).
void measurePair(const float* a, const float* b, uint32_t frames, bool squares, ChannelStats out[2]) noexcept;

/// True when no sample of `x` is NaN or Inf: integer tests of the exponent
/// bits, which vectorise without -ffast-math.
inline bool allFinite(const float* x, uint32_t frames) noexcept {
    // An all-ones exponent (NaN, Inf) plus one exponent unit carries into bit 31.
    uint32_t bad = 0;
    for (uint32_t i = 0; i < frames; ++i) {
        uint32_t bits;
        __builtin_memcpy(&bits, x + i, sizeof bits);
        bad |= (bits & 0x7f800000u) + 0x00800000u;
    }
    return (bad & 0x80000000u) == 0;
}

}  // namespace rackterm::engine::rt
