// SpscRing<T>: a wait-free single-producer/single-consumer ring of trivially
// copyable T. Storage is allocated in the constructor [control]; push() is
// called by exactly one producer thread and pop() by exactly one consumer
// thread, either of which may be the audio thread. Neither allocates, locks
// nor blocks; both return false instead of waiting.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

namespace rackterm::engine::rt {

template <class T>
class SpscRing {
    static_assert(std::is_trivially_copyable_v<T>, "SpscRing holds trivially copyable values");

public:
    /// [control] A ring that holds up to `capacity` items (rounded up to a power of two).
    explicit SpscRing(size_t capacity) {
        size_t n = 2;
        while (n < capacity + 1) n <<= 1;
        mask_ = n - 1;
        slots_ = std::make_unique<T[]>(n);
    }

    /// [producer] Append `v`; false when the ring is full (nothing is written).
    bool push(const T& v) noexcept {
        const size_t w = write_.load(std::memory_order_relaxed);
        const size_t next = (w + 1) & mask_;
        if (next == readCache_) {
            readCache_ = read_.load(std::memory_order_acquire);
            if (next == readCache_) return false;
        }
        slots_[w] = v;
        write_.store(next, std::memory_order_release);
        return true;
    }

    /// [consumer] Take the oldest item into `out`; false when the ring is empty.
    bool pop(T& out) noexcept {
        const size_t r = read_.load(std::memory_order_relaxed);
        if (r == writeCache_) {
            writeCache_ = write_.load(std::memory_order_acquire);
            if (r == writeCache_) return false;
        }
        out = slots_[r];
        read_.store((r + 1) & mask_, std::memory_order_release);
        return true;
    }

    /// [producer] The slot the next push would fill, to write in place, or
    /// nullptr when the ring is full. publish() makes it visible.
    T* reserve() noexcept {
        const size_t w = write_.load(std::memory_order_relaxed);
        const size_t next = (w + 1) & mask_;
        if (next == readCache_) {
            readCache_ = read_.load(std::memory_order_acquire);
            if (next == readCache_) return nullptr;
        }
        return &slots_[w];
    }
    /// [producer] Publish the slot returned by reserve().
    void publish() noexcept {
        write_.store((write_.load(std::memory_order_relaxed) + 1) & mask_, std::memory_order_release);
    }

    /// Number of slots usable at once.
    size_t capacity() const noexcept { return mask_; }

private:
    std::unique_ptr<T[]> slots_;
    size_t mask_ = 0;
    alignas(64) std::atomic<size_t> write_{0};
    size_t readCache_ = 0;  // producer's last view of read_
    alignas(64) std::atomic<size_t> read_{0};
    size_t writeCache_ = 0;  // consumer's last view of write_
};

}  // namespace rackterm::engine::rt
