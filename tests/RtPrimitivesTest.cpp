// Concurrency tests for the wait-free primitives: one producer thread and one
// consumer thread hammer each one; every value must arrive once, in order,
// and a reader must never see a torn snapshot.
#include <rackterm/engine/rt/SpscRing.hpp>
#include <rackterm/engine/rt/TripleBuffer.hpp>

#include <gtest/gtest.h>

#include <array>
#include <thread>

using rackterm::engine::rt::SpscRing;
using rackterm::engine::rt::TripleBuffer;

TEST(SpscRing, RejectsWhenFullAndEmpty) {
    SpscRing<int> ring(3);
    int v = 0;
    EXPECT_FALSE(ring.pop(v));
    for (size_t i = 0; i < ring.capacity(); ++i) EXPECT_TRUE(ring.push(static_cast<int>(i)));
    EXPECT_FALSE(ring.push(99));
    EXPECT_TRUE(ring.pop(v));
    EXPECT_EQ(v, 0);
}

TEST(SpscRing, TwoThreadsDeliverEveryItemInOrder) {
    SpscRing<uint64_t> ring(64);
    constexpr uint64_t kCount = 2'000'000;
    std::thread producer([&] {
        for (uint64_t i = 0; i < kCount;)
            if (ring.push(i)) ++i;
    });
    uint64_t expected = 0, v = 0;
    while (expected < kCount) {
        if (ring.pop(v)) {
            ASSERT_EQ(v, expected);
            ++expected;
        }
    }
    producer.join();
    EXPECT_FALSE(ring.pop(v));
}

TEST(TripleBuffer, ReaderSeesWholeSnapshotsOnlyAndNewestLast) {
    using Frame = std::array<uint64_t, 64>;
    TripleBuffer<Frame> tb;
    Frame zero{};
    tb.reset(zero);
    constexpr uint64_t kCount = 500'000;
    std::thread writer([&] {
        for (uint64_t g = 1; g <= kCount; ++g) {
            Frame& f = tb.writeBuffer();
            f.fill(g);
            tb.publish();
        }
    });
    uint64_t last = 0;
    while (last < kCount) {
        if (tb.consume()) {
            const Frame& f = tb.readBuffer();
            for (uint64_t x : f) ASSERT_EQ(x, f[0]) << "torn snapshot";
            ASSERT_GT(f[0], last) << "generation went backwards";
            last = f[0];
        }
    }
    writer.join();
    EXPECT_EQ(last, kCount);
}
