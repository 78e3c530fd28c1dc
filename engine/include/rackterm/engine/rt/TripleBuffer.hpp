// TripleBuffer<T>: one writer publishes whole values, one reader always gets
// the newest complete one; wait-free on both sides. The three buffers are set
// up by the constructor or reset() [control]; writeBuffer()/publish() belong
// to the writer thread, consume()/readBuffer() to the reader thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace rackterm::engine::rt {

template <class T>
class TripleBuffer {
public:
    /// [control, before sharing] Give all three buffers the value `init`.
    void reset(const T& init) {
        for (auto& b : buffers_) b = init;
        back_ = 0;
        middle_.store(1, std::memory_order_relaxed);
        front_ = 2;
    }

    /// [writer] The buffer to fill before publish(); its old content is stale.
    T& writeBuffer() noexcept { return buffers_[back_]; }

    /// [writer] Make the written buffer the newest; never blocks.
    void publish() noexcept {
        const uint8_t previous = middle_.exchange(static_cast<uint8_t>(back_ | kFresh), std::memory_order_acq_rel);
        back_ = previous & kIndex;
    }

    /// [reader] Take the newest published buffer if there is one; true when readBuffer() changed.
    bool consume() noexcept {
        if (!(middle_.load(std::memory_order_relaxed) & kFresh)) return false;
        const uint8_t previous = middle_.exchange(front_, std::memory_order_acq_rel);
        front_ = previous & kIndex;
        return true;
    }

    /// [reader] The newest buffer taken by consume().
    const T& readBuffer() const noexcept { return buffers_[front_]; }

private:
    static constexpr uint8_t kIndex = 3, kFresh = 4;
    T buffers_[3];
    uint8_t back_ = 0;
    alignas(64) std::atomic<uint8_t> middle_{1};
    alignas(64) uint8_t front_ = 2;
};

}  // namespace rackterm::engine::rt
