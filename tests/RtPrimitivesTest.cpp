// Concurrency tests for the wait-free primitives: one producer thread and one
// consumer thread hammer each one; every value must arrive once, in order,
// and a reader must never see a torn snapshot.
#include <rackterm/engine/rt/BlockStats.hpp>
#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/engine/rt/SpscRing.hpp>
#include <rackterm/engine/rt/TripleBuffer.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>
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

TEST(BlockStats, MeasurePairGivesExactPeaksSquaresAndCatchesNaNInEitherChannel) {
    for (uint32_t frames : {1u, 7u, 8u, 13u, 64u, 255u}) {
        std::vector<float> a(frames), b(frames);
        for (uint32_t i = 0; i < frames; ++i) {
            a[i] = 0.25f * std::sin(static_cast<float>(i));
            b[i] = -0.5f * std::cos(static_cast<float>(i));
        }
        a[frames - 1] = -0.875f;  // the peak in the scalar tail or the last vector
        rackterm::engine::rt::ChannelStats st[2];
        rackterm::engine::rt::measurePair(a.data(), b.data(), frames, true, st);
        float pb = 0, sa = 0;
        for (uint32_t i = 0; i < frames; ++i) {
            pb = std::max(pb, std::fabs(b[i]));
            sa += a[i] * a[i];
        }
        EXPECT_EQ(st[0].peak, 0.875f) << frames;
        EXPECT_EQ(st[1].peak, pb) << frames;
        EXPECT_NEAR(st[0].meanSquare, sa / static_cast<float>(frames), 1e-6f) << frames;
        EXPECT_TRUE(st[0].finite && st[1].finite);
        rackterm::engine::rt::measurePair(a.data(), b.data(), frames, false, st);
        EXPECT_EQ(st[0].peak, 0.875f);
        EXPECT_EQ(st[0].meanSquare, 0.0f) << "no squares unless asked";
        b[frames / 2] = std::numeric_limits<float>::infinity();
        rackterm::engine::rt::measurePair(a.data(), b.data(), frames, false, st);
        EXPECT_FALSE(st[0].finite && st[1].finite) << "Inf in channel 2, " << frames << " frames";
        b[frames / 2] = std::nanf("");
        rackterm::engine::rt::measurePair(a.data(), b.data(), frames, true, st);
        EXPECT_FALSE(st[0].finite && st[1].finite) << "NaN in channel 2, " << frames << " frames";
    }
}

TEST(BlockStats, APeakBetweenTwoReadsOfTheMetersIsHeld) {
    // 64-frame blocks make a meter frame every 4th block; the console reads
    // far less often. A one-sample spike in any block must reach the reading.
    rackterm::engine::Engine eng;
    eng.publish(std::make_unique<rackterm::engine::Rack>(std::vector<rackterm::engine::NodeSetup>{}, 64, 48000, 0));
    std::vector<float> quiet(64, 0.1f), loud(64, 0.1f), l(64), r(64);
    loud[17] = -0.9f;
    float* out[2] = {l.data(), r.data()};
    for (int b = 0; b < 40; ++b) {
        const float* in[2] = {b == 9 ? loud.data() : quiet.data(), quiet.data()};
        eng.process(in, out, 64);
    }
    rackterm::engine::MeterFrame m;
    ASSERT_TRUE(eng.latestMeters(m));
    EXPECT_EQ(m.masterPeak[0], 0.9f) << "the spike of block 10 of 40";
    EXPECT_EQ(m.masterPeak[1], 0.1f);
    for (int b = 0; b < 8; ++b) {
        const float* in[2] = {quiet.data(), quiet.data()};
        eng.process(in, out, 64);
    }
    ASSERT_TRUE(eng.latestMeters(m));
    EXPECT_EQ(m.masterPeak[0], 0.1f) << "the next reading starts afresh";
}
