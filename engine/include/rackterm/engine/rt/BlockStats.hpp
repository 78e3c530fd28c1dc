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
    bool finite;       ///< no NaN or Inf (and no value whose square overflows)
};

/// Peak, mean square and finiteness of `frames` samples of `x`. Written
/// with GCC/Clang vector extensions (4 x float, any target) so it is SIMD at
/// any optimisation level.
inline ChannelStats measure(const float* x, uint32_t frames) noexcept {
    typedef float F4 __attribute__((vector_size(16)));
    typedef uint32_t U4 __attribute__((vector_size(16)));
    const U4 absMask = {0x7fffffffu, 0x7fffffffu, 0x7fffffffu, 0x7fffffffu};
    F4 p0 = {0, 0, 0, 0}, p1 = p0, s0 = p0, s1 = p0;
    uint32_t i = 0;
    for (; i + 8 <= frames; i += 8) {
        F4 a, b;
        __builtin_memcpy(&a, x + i, sizeof a);
        __builtin_memcpy(&b, x + i + 4, sizeof b);
        s0 += a * a;
        s1 += b * b;
        const F4 aa = reinterpret_cast<F4>(reinterpret_cast<U4>(a) & absMask);
        const F4 ab = reinterpret_cast<F4>(reinterpret_cast<U4>(b) & absMask);
        p0 = p0 > aa ? p0 : aa;
        p1 = p1 > ab ? p1 : ab;
    }
    float peak = 0, sum = 0;
    for (int k = 0; k < 4; ++k) {
        peak = std::max(peak, std::max(p0[k], p1[k]));
        sum += s0[k] + s1[k];
    }
    for (; i < frames; ++i) {
        peak = std::max(peak, std::fabs(x[i]));
        sum += x[i] * x[i];
    }
    // NaN or Inf in x makes the sum non-finite.
    return {peak, frames ? sum / static_cast<float>(frames) : 0.0f, std::isfinite(sum)};
}

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
