// The block measurements of BlockStats.hpp, built for AVX2 and the x86-64
// baseline (GCC function multiversioning; the loader picks one per CPU).
#include <rackterm/engine/rt/BlockStats.hpp>

namespace rackterm::engine::rt {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define RACKTERM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RACKTERM_CLONES
#endif

RACKTERM_CLONES
void measurePair(const float* a, const float* b, uint32_t frames, bool squares, ChannelStats out[2]) noexcept {
    // |x| as an integer orders like |x| as a float, and NaN and Inf lie above
    // every finite value: one integer max gives both the peak and the guard.
    typedef float F8 __attribute__((vector_size(32)));
    typedef int32_t I8 __attribute__((vector_size(32)));
    const I8 absMask = I8{} + 0x7fffffff;
    I8 ma = I8{}, mb = I8{};
    F8 sa = F8{}, sb = F8{};
    uint32_t i = 0;
    if (squares) {
        for (; i + 8 <= frames; i += 8) {
            I8 x, y;
            __builtin_memcpy(&x, a + i, sizeof x);
            __builtin_memcpy(&y, b + i, sizeof y);
            const F8 fx = reinterpret_cast<F8>(x), fy = reinterpret_cast<F8>(y);
            sa += fx * fx;
            sb += fy * fy;
            x &= absMask;
            y &= absMask;
            ma = ma > x ? ma : x;
            mb = mb > y ? mb : y;
        }
    } else {
        for (; i + 8 <= frames; i += 8) {
            I8 x, y;
            __builtin_memcpy(&x, a + i, sizeof x);
            __builtin_memcpy(&y, b + i, sizeof y);
            x &= absMask;
            y &= absMask;
            ma = ma > x ? ma : x;
            mb = mb > y ? mb : y;
        }
    }
    int32_t maxA = 0, maxB = 0;
    float sumA = 0, sumB = 0;
    for (int k = 0; k < 8; ++k) {
        maxA = std::max(maxA, ma[k]);
        maxB = std::max(maxB, mb[k]);
        sumA += sa[k];
        sumB += sb[k];
    }
    for (; i < frames; ++i) {
        int32_t x, y;
        __builtin_memcpy(&x, a + i, sizeof x);
        __builtin_memcpy(&y, b + i, sizeof y);
        maxA = std::max(maxA, x & 0x7fffffff);
        maxB = std::max(maxB, y & 0x7fffffff);
        if (squares) {
            sumA += a[i] * a[i];
            sumB += b[i] * b[i];
        }
    }
    constexpr int32_t kInf = 0x7f800000;  // the bits of +Inf: NaN and Inf are >= it
    auto stats = [&](int32_t peakBits, float sum) {
        float peak;
        __builtin_memcpy(&peak, &peakBits, sizeof peak);
        const bool finite = peakBits < kInf;  // huge but finite samples pass; their square may not
        const float meanSquare = squares && frames ? std::min(sum / static_cast<float>(frames), 3.4e38f) : 0.0f;
        return ChannelStats{finite ? peak : 0.0f, finite ? meanSquare : 0.0f, finite};
    };
    out[0] = stats(maxA, sumA);
    out[1] = stats(maxB, sumB);
}

}  // namespace rackterm::engine::rt
