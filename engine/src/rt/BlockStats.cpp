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
    typedef float F8 __attribute__((vector_size(32)));
    typedef uint32_t U8 __attribute__((vector_size(32)));
    const U8 absMask = U8{} + 0x7fffffffu, expMask = U8{} + 0x7f800000u, oneExp = U8{} + 0x00800000u;
    F8 pa = F8{}, pb = F8{}, sa = F8{}, sb = F8{};
    U8 bad = U8{};
    uint32_t i = 0;
    if (squares) {
        for (; i + 8 <= frames; i += 8) {
            U8 x, y;
            __builtin_memcpy(&x, a + i, sizeof x);
            __builtin_memcpy(&y, b + i, sizeof y);
            bad |= ((x & expMask) + oneExp) | ((y & expMask) + oneExp);
            const F8 fx = reinterpret_cast<F8>(x), fy = reinterpret_cast<F8>(y);
            sa += fx * fx;
            sb += fy * fy;
            const F8 ax = reinterpret_cast<F8>(x & absMask), ay = reinterpret_cast<F8>(y & absMask);
            pa = pa > ax ? pa : ax;
            pb = pb > ay ? pb : ay;
        }
    } else {
        for (; i + 8 <= frames; i += 8) {
            U8 x, y;
            __builtin_memcpy(&x, a + i, sizeof x);
            __builtin_memcpy(&y, b + i, sizeof y);
            bad |= ((x & expMask) + oneExp) | ((y & expMask) + oneExp);
            const F8 ax = reinterpret_cast<F8>(x & absMask), ay = reinterpret_cast<F8>(y & absMask);
            pa = pa > ax ? pa : ax;
            pb = pb > ay ? pb : ay;
        }
    }
    float peakA = 0, peakB = 0, sumA = 0, sumB = 0;
    uint32_t badA = 0, badB = 0;
    for (int k = 0; k < 8; ++k) {
        peakA = std::max(peakA, pa[k]);
        peakB = std::max(peakB, pb[k]);
        sumA += sa[k];
        sumB += sb[k];
        badA |= bad[k];
    }
    badB = badA;  // one word for both: either channel non-finite mutes the node
    for (; i < frames; ++i) {
        uint32_t x, y;
        __builtin_memcpy(&x, a + i, sizeof x);
        __builtin_memcpy(&y, b + i, sizeof y);
        badA |= (x & 0x7f800000u) + 0x00800000u;
        badB |= (y & 0x7f800000u) + 0x00800000u;
        peakA = std::max(peakA, std::fabs(a[i]));
        peakB = std::max(peakB, std::fabs(b[i]));
        if (squares) {
            sumA += a[i] * a[i];
            sumB += b[i] * b[i];
        }
    }
    const float n = frames ? static_cast<float>(frames) : 1.0f;
    out[0] = {peakA, squares ? sumA / n : 0.0f, (badA & 0x80000000u) == 0 && std::isfinite(sumA)};
    out[1] = {peakB, squares ? sumB / n : 0.0f, (badB & 0x80000000u) == 0 && std::isfinite(sumB)};
}

}  // namespace rackterm::engine::rt
