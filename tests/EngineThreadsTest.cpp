// The engine across its two threads, as live: an audio thread runs blocks as
// fast as it can while the control thread changes values, flips bypass,
// publishes new racks (hot swaps with crossfades), frees retired racks and
// reads meters; and the recorder's audio -> disk hand-over. Run in the
// normal build and under ThreadSanitizer (.ci/run), which reports any data
// race between the threads.
#include "support/Support.hpp"

#include <Builtins.hpp>
#include <rackterm/engine/Recorder.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

using namespace rackterm;

namespace {

std::atomic<int> gLiveInstances{0};

/// An instance of a static built-in, counted so the test sees every one freed.
struct Owned {
    const rackterm_processor_v2* d;
    rackterm_instance* i;
    explicit Owned(const rackterm_processor_v2* desc) : d(desc), i(desc->create(48000, 64)) { ++gLiveInstances; }
    Owned(const Owned&) = delete;
    Owned& operator=(const Owned&) = delete;
    ~Owned() {
        d->destroy(i);
        --gLiveInstances;
    }
};

engine::NodeSetup setupFor(const rackterm_processor_v2* d, const std::string& id) {
    auto owned = std::make_shared<Owned>(d);
    engine::NodeSetup s;
    s.id = id;
    s.descriptor = d;
    s.instance = owned->i;
    s.owner = owned;
    for (uint32_t p = 0; p < d->param_count; ++p) s.values.push_back(d->params[p].default_value);
    return s;
}

/// gain -> biquad -> saturator -> delay, fresh instances.
std::vector<engine::NodeSetup> chain() {
    std::vector<engine::NodeSetup> nodes;
    nodes.push_back(setupFor(rackterm_builtin_gain(), "gain"));
    nodes.push_back(setupFor(rackterm_builtin_biquad(), "eq"));
    nodes.push_back(setupFor(rackterm_builtin_saturator(), "sat"));
    nodes.push_back(setupFor(rackterm_builtin_delay(), "dly"));
    return nodes;
}

/// The audio side: blocks of 64 frames of a 440 Hz sine until told to stop.
struct AudioThread {
    engine::Engine& eng;
    std::atomic<bool> stop{false};
    std::atomic<bool> finite{true};
    std::atomic<uint64_t> blocks{0};
    std::thread t;
    explicit AudioThread(engine::Engine& e) : eng(e) {
        t = std::thread([this] {
            std::vector<float> l(64), r(64), ol(64), orr(64);
            double phase = 0;
            while (!stop.load(std::memory_order_acquire)) {
                for (size_t i = 0; i < 64; ++i, phase += 2 * M_PI * 440.0 / 48000.0)
                    l[i] = r[i] = static_cast<float>(0.5 * std::sin(phase));
                const float* in[2] = {l.data(), r.data()};
                float* out[2] = {ol.data(), orr.data()};
                eng.process(in, out, 64);
                for (size_t i = 0; i < 64; ++i)
                    if (!std::isfinite(ol[i]) || !std::isfinite(orr[i])) finite.store(false);
                blocks.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    ~AudioThread() {
        stop.store(true, std::memory_order_release);
        t.join();
    }
};

}  // namespace

TEST(EngineThreads, ValuesBypassSwapsAndMetersCrossThreadsCleanly) {
    {
        engine::Engine eng;
        std::vector<engine::NodeSetup> current = chain();  // what the newest rack runs (copies share the owners)
        eng.publish(std::make_unique<engine::Rack>(current, 64, 48000, eng.generation()));
        AudioThread audio(eng);
        std::mt19937 rng(99);
        uint64_t lastApplied = 0;
        unsigned swaps = 0;
        for (int step = 0; step < 20000; ++step) {
            engine::Rack* rack = eng.rack();
            const uint32_t node = static_cast<uint32_t>(rng() % rack->nodeCount());
            const rackterm_processor_v2* d = rack->descriptor(node);
            if (d->param_count) {
                const uint32_t p = static_cast<uint32_t>(rng() % d->param_count);
                const auto& info = d->params[p];
                float v = info.min + (info.max - info.min) * std::uniform_real_distribution<float>(0, 1)(rng);
                if (info.flags & RACKTERM_PARAM_INTEGER) v = std::round(v);
                eng.setValue(node, p, v);
            }
            if (step % 100 == 0) eng.setBypass(node, step % 200 == 0);
            if (step % 500 == 0) {  // a hot swap of every node, crossfaded from the running instances
                std::vector<engine::NodeSetup> next = chain();
                for (uint32_t n = 0; n < next.size(); ++n) {
                    next[n].fadeFromDescriptor = current[n].descriptor;
                    next[n].fadeFromInstance = current[n].instance;
                    next[n].fadeFromOwner = current[n].owner;
                    next[n].fadeFrames = 480;
                    next[n].bypass = rack->bypassed(n);
                    for (uint32_t p = 0; p < next[n].values.size(); ++p) next[n].values[p] = rack->value(n, p);
                }
                current = next;
                for (auto& c : current) c.fadeFromOwner.reset();
                eng.publish(std::make_unique<engine::Rack>(std::move(next), 64, 48000, eng.generation()));
                ++swaps;
            }
            if (step % 50 == 0) {  // let the audio thread take the newest rack and run a few blocks of it
                const uint64_t b0 = audio.blocks.load();
                while (audio.blocks.load() < b0 + 3) std::this_thread::yield();
            }
            const uint64_t applied = eng.appliedGeneration();
            ASSERT_GE(applied, lastApplied) << "applied generations never go back";
            lastApplied = applied;
            if (step % 16 == 0) {
                engine::MeterFrame m;
                eng.latestMeters(m);
                eng.collectGarbage();
            }
        }
        // Every change reaches the audio thread.
        const uint64_t target = eng.generation();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (eng.appliedGeneration() < target && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        EXPECT_GE(eng.appliedGeneration(), target);
        EXPECT_TRUE(audio.finite.load()) << "NaN/Inf left the rack";
        EXPECT_GT(audio.blocks.load(), 100u);
        EXPECT_EQ(swaps, 40u);
    }
    EXPECT_EQ(gLiveInstances.load(), 0) << "every instance of every retired rack was freed, once";
}

TEST(EngineThreads, RecorderHandsBlocksFromTheAudioThreadToItsDiskThread) {
    const std::string dir = test::tempDir("enginerec");
    engine::Engine eng;
    eng.publish(std::make_unique<engine::Rack>(chain(), 64, 48000, eng.generation()));
    auto rec = engine::Recorder::start(dir + "/take.wav", 48000);
    ASSERT_TRUE(rec) << rec.error();
    {
        AudioThread audio(eng);
        eng.setRecorder(rec.value().get());
        while (audio.blocks.load() < 3000) std::this_thread::yield();
        eng.setRecorder(nullptr);
        const uint64_t after = eng.blocks() + 2;
        while (eng.blocks() < after) std::this_thread::yield();
    }
    auto frames = rec.value()->stop();
    ASSERT_TRUE(frames) << frames.error();
    EXPECT_GE(frames.value() + rec.value()->dropped() * 64, 3000u * 64 / 2);
    const test::Sound take = test::readSound(dir + "/take.wav");
    EXPECT_EQ(take.frames(), frames.value());
    std::filesystem::remove_all(dir);
}
