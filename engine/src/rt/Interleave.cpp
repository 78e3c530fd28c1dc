#include <rackterm/engine/rt/Interleave.hpp>

namespace rackterm::engine::rt {

void deinterleave(const float* in, size_t channels, float* left, float* right, size_t frames) noexcept {
    if (channels == 2) {  // the common case, with a fixed stride the compiler vectorises
        for (size_t i = 0; i < frames; ++i) {
            left[i] = in[2 * i];
            right[i] = in[2 * i + 1];
        }
        return;
    }
    const size_t second = channels > 1 ? 1 : 0;
    for (size_t i = 0; i < frames; ++i) {
        left[i] = in[i * channels];
        right[i] = in[i * channels + second];
    }
}

void interleave(const float* left, const float* right, float* out, size_t frames) noexcept {
    for (size_t i = 0; i < frames; ++i) {
        out[2 * i] = left[i];
        out[2 * i + 1] = right[i];
    }
}

}  // namespace rackterm::engine::rt
