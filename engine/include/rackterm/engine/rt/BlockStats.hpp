// Peak and mean square of a block, and whether it is finite, in one pass
// that the compiler vectorises (8 independent lanes, no -ffast-math needed).
// [audio]; noexcept; no allocation.
#pragma once

#include <cmath>
#include <cstdint>

namespace rackterm::engine::rt {

struct ChannelStats {
    float peak;        ///< largest |x|, linear
    float meanSquare;  ///< mean of x^2 (RMS^2)
    bool finite;       ///< no NaN or Inf (and no value whose square overflows)
};

/// Peak, mean square and finiteness of `frames` samples of `x`.
inline ChannelStats measure(const float* x, uint32_t frames) noexcept {
    float peak[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t i = 0;
    for (; i + 8 <= frames; i += 8)
        for (int k = 0; k < 8; ++k) {
            const float v = x[i + static_cast<uint32_t>(k)];
            const float a = std::fabs(v);
            peak[k] = peak[k] > a ? peak[k] : a;
            sum[k] += v * v;
        }
    for (; i < frames; ++i) {
        const float a = std::fabs(x[i]);
        peak[0] = peak[0] > a ? peak[0] : a;
        sum[0] += x[i] * x[i];
    }
    float p = 0, s = 0;
    for (int k = 0; k < 8; ++k) {
        p = p > peak[k] ? p : peak[k];
        s += sum[k];
    }
    // NaN fails every comparison above, so test the sum too: NaN or Inf in x makes it non-finite.
    const bool finite = std::isfinite(s);
    return {p, frames ? s / static_cast<float>(frames) : 0.0f, finite};
}

/// True when no sample of `x` is NaN or Inf: integer tests of the exponent
/// bits, which vectorise without -ffast-math.
inline bool allFinite(const float* x, uint32_t frames) noexcept {
    uint32_t bad = 0;
    for (uint32_t i = 0; i < frames; ++i) {
        uint32_t bits;
        __builtin_memcpy(&bits, x + i, sizeof bits);
        bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

}  // namespace rackterm::engine::rt
