// Audio-thread safety: this executable interposes malloc/free/new and the
// pthread lock calls and counts those made from the thread marked as the
// audio thread. 100,000 blocks with a parameter change before every block
// must make none; a rack holding a module that mallocs in process() (the
// injected violation) must be caught by the same harness. Also: NaN/Inf
// leaving a node is muted and reported.
#include "support/Support.hpp"

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Runtime.hpp>
#include <rackterm/engine/Player.hpp>
#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/loader/Loader.hpp>

#include "support/LibcAllocator.hpp"

#include <dlfcn.h>
#include <pthread.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <cmath>
#include <thread>

namespace {
thread_local bool tAudio = false;  // static TLS: reading it never allocates
std::atomic<long> gAllocs{0}, gFrees{0}, gLocks{0};
}  // namespace

extern "C" {

void* malloc(size_t n) {
    if (tAudio) gAllocs.fetch_add(1);
    return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
    if (tAudio) gAllocs.fetch_add(1);
    return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
    if (tAudio) gAllocs.fetch_add(1);
    return __libc_realloc(p, n);
}
void* aligned_alloc(size_t a, size_t n) {
    if (tAudio) gAllocs.fetch_add(1);
    return __libc_memalign(a, n);
}
void* memalign(size_t a, size_t n) {
    if (tAudio) gAllocs.fetch_add(1);
    return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
    if (tAudio) gAllocs.fetch_add(1);
    *out = __libc_memalign(a, n);
    return *out ? 0 : 12;
}
void free(void* p) {
    if (tAudio && p) gFrees.fetch_add(1);
    __libc_free(p);
}

#define RACKTERM_COUNT_LOCK(fn, T)                                                        \
    int fn(T* m) {                                                                        \
        static std::atomic<int (*)(T*)> real{nullptr};                                    \
        if (tAudio) gLocks.fetch_add(1);                                                  \
        auto f = real.load();                                                             \
        if (!f) {                                                                         \
            f = reinterpret_cast<int (*)(T*)>(dlsym(RTLD_NEXT, #fn));                     \
            real.store(f);                                                                \
        }                                                                                 \
        return f(m);                                                                      \
    }
RACKTERM_COUNT_LOCK(pthread_mutex_lock, pthread_mutex_t)
RACKTERM_COUNT_LOCK(pthread_mutex_trylock, pthread_mutex_t)
RACKTERM_COUNT_LOCK(pthread_rwlock_rdlock, pthread_rwlock_t)
RACKTERM_COUNT_LOCK(pthread_rwlock_wrlock, pthread_rwlock_t)
RACKTERM_COUNT_LOCK(pthread_spin_lock, pthread_spinlock_t)
}

using namespace rackterm;

namespace {

struct Counts {
    long allocs, frees, locks;
    uint64_t blocks;
};

/// Build a rack of every built-in (dlopen path) plus a player on a real
/// recording, optionally with `extra` fixture modules, and run `blocks`
/// blocks of 64 frames on a thread marked as the audio thread while the
/// control thread changes a parameter before every block.
Counts runAudio(const std::vector<std::string>& extraModules, uint32_t blocks) {
    std::vector<std::shared_ptr<loader::Module>> modules;
    std::vector<engine::NodeSetup> nodes;
    auto data = engine::decodeFile("/usr/share/sounds/alsa/Front_Right.wav", 48000);
    EXPECT_TRUE(data);
    struct PlayerOwner {
        rackterm_instance* p;
        ~PlayerOwner() { engine::playerDescriptor()->destroy(p); }
    };
    auto player = std::make_shared<PlayerOwner>();
    player->p = engine::createPlayer(data.value(), 64);
    nodes.push_back({"src", engine::playerDescriptor(), player->p, player, {0.0f}, false});
    std::vector<std::string> paths;
    for (const char* n : {"gain", "oscillator", "biquad", "saturator", "delay"})
        paths.push_back(test::moduleDir() + "/lib" + n + ".so");
    for (const auto& e : extraModules) paths.push_back(e);
    for (const auto& path : paths) {
        auto m = loader::loadModule(path);
        EXPECT_TRUE(m) << m.error();
        auto inst = loader::createInstance(m.value(), 48000, 64);
        EXPECT_TRUE(inst);
        std::shared_ptr<loader::Instance> owned = std::move(inst.value());
        std::vector<float> values;
        for (uint32_t i = 0; i < owned->descriptor().param_count; ++i)
            values.push_back(owned->descriptor().params[i].default_value);
        nodes.push_back({owned->descriptor().id, &owned->descriptor(), owned->get(), owned, values, false});
    }
    engine::Engine eng;
    const uint32_t nodeCount = static_cast<uint32_t>(nodes.size());
    eng.publish(std::make_unique<engine::Rack>(std::move(nodes), 64, 48000, 0));

    std::atomic<uint32_t> published{0};
    std::atomic<bool> done{false};
    std::thread audio([&] {
        std::vector<float> inL(64, 0.0f), inR(64, 0.0f), outL(64), outR(64);  // allocated before marking
        const float* in[2] = {inL.data(), inR.data()};
        float* out[2] = {outL.data(), outR.data()};
        tAudio = true;
        for (uint32_t b = 0; b < blocks; ++b) {
            while (published.load(std::memory_order_acquire) <= b) {
            }  // the control thread has changed a parameter for this block
            eng.process(in, out, 64);
        }
        tAudio = false;
        done.store(true);
    });
    // Control thread: a parameter change before every block, bypass flips now and then.
    for (uint32_t b = 0; b < blocks; ++b) {
        const uint32_t node = 1 + b % (nodeCount - 1);
        const auto* d = eng.rack()->descriptor(node);
        if (d->param_count) {
            const auto& info = d->params[b % d->param_count];
            eng.setValue(node, b % d->param_count, info.min + (info.max - info.min) * static_cast<float>(b % 97) / 97.0f);
        }
        if (b % 1000 == 0) eng.setBypass(node, (b / 1000) % 2 == 1);
        published.store(b + 1, std::memory_order_release);
        if (b % 64 == 0) {
            engine::MeterFrame m;
            eng.latestMeters(m);
            eng.collectGarbage();
        }
    }
    audio.join();
    return {gAllocs.exchange(0), gFrees.exchange(0), gLocks.exchange(0), eng.events().blocks.load()};
}

}  // namespace

TEST(AudioThread, NoAllocationNoLockIn100000BlocksWithChangesEveryBlock) {
    const Counts c = runAudio({}, 100000);
    EXPECT_EQ(c.blocks, 100000u);
    EXPECT_EQ(c.allocs, 0) << "allocations on the audio thread";
    EXPECT_EQ(c.frees, 0) << "frees on the audio thread";
    EXPECT_EQ(c.locks, 0) << "lock calls on the audio thread";
}

TEST(AudioThread, NoAllocationNoLockIn100000BlocksWithLv2AndLadspaNodes) {
    // swh-lv2, mda-lv2 and ladspa-sdk plugins beside the built-ins; a parameter change every block.
    const Counts c = runAudio({"lv2:http://plugin.org.uk/swh-plugins/sc4", "lv2:http://drobilla.net/plugins/mda/Delay",
                               "lv2:http://drobilla.net/plugins/mda/Combo", "lv2:http://plugin.org.uk/swh-plugins/amp",
                               "ladspa:amp_stereo"},
                              100000);
    EXPECT_EQ(c.blocks, 100000u);
    EXPECT_EQ(c.allocs, 0) << "allocations on the audio thread";
    EXPECT_EQ(c.frees, 0) << "frees on the audio thread";
    EXPECT_EQ(c.locks, 0) << "lock calls on the audio thread";
}

TEST(AudioThread, InjectedMallocIsCaught) {
    const Counts c = runAudio({test::fixtureDir() + "/libfixture_mallocs.so"}, 1000);
    EXPECT_GE(c.allocs, 1000) << "the harness must see the fixture's malloc in every block";
}

TEST(AudioThread, NonFiniteOutputIsMutedAndReported) {
    auto m = loader::loadModule(test::fixtureDir() + "/libfixture_makes_nan.so");
    ASSERT_TRUE(m) << m.error();
    auto inst = loader::createInstance(m.value(), 48000, 64);
    ASSERT_TRUE(inst);
    std::shared_ptr<loader::Instance> owned = std::move(inst.value());
    engine::Engine eng;
    std::vector<engine::NodeSetup> nodes;
    nodes.push_back({"bad", &owned->descriptor(), owned->get(), owned, {}, false});
    eng.publish(std::make_unique<engine::Rack>(std::move(nodes), 64, 48000, 0));
    std::vector<float> l(64, 0.5f), r(64, 0.5f), ol(64), orr(64);
    const float* in[2] = {l.data(), r.data()};
    float* out[2] = {ol.data(), orr.data()};
    eng.process(in, out, 64);
    for (float v : ol) ASSERT_EQ(v, 0.0f);
    EXPECT_EQ(eng.events().nonFiniteBlocks.load(), 1u);
    EXPECT_EQ(eng.events().lastNonFiniteNode.load(), 0u);
}

TEST(AudioThread, DenormalsAreFlushed) {
    engine::flushDenormals();
    volatile float tiny = 1e-39f;  // subnormal
    volatile float scaled = tiny * 1.0f;
    EXPECT_EQ(scaled, 0.0f);
}

namespace {
/// The audio thread of `rt`: 64-frame blocks of a sine, counted in `blocks`,
/// `pace` apart (0: back to back), until `stop`; marked for the counters.
std::thread audioThread(app::Runtime& rt, std::atomic<bool>& stop, std::atomic<uint64_t>& blocks,
                        std::chrono::microseconds pace) {
    return std::thread([&rt, &stop, &blocks, pace] {
        std::vector<float> in(64), l(64), rr(64);
        const float* ins[2] = {in.data(), in.data()};
        float* outs[2] = {l.data(), rr.data()};
        uint64_t phase = 0;
        tAudio = true;
        while (!stop.load(std::memory_order_acquire)) {
            for (float& x : in) x = 0.5f * std::sin(static_cast<float>(phase++) * 0.13f);
            rt.engine().process(ins, outs, 64);
            blocks.fetch_add(1, std::memory_order_release);
            if (pace.count() > 0) std::this_thread::sleep_for(pace);
        }
        tAudio = false;
    });
}
}  // namespace

TEST(AudioThread, NoAllocationNoLockAcross1000HotSwaps) {
    auto s = config::parseSession("[[node]]\nid = \"sw\"\npath = \"" + test::fixtureDir() +
                                      "/libfixture_swap_1.so\"\n[[node]]\nid = \"lp\"\npath = \"" +
                                      test::moduleDir() + "/libbiquad.so\"\n",
                                  "swap.toml");
    ASSERT_TRUE(s) << s.error();
    auto r = app::Runtime::open(s.value(), 48000, 64);
    ASSERT_TRUE(r) << r.error();
    app::Runtime& rt = *r.value();
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> blocks{0};
    std::thread audio = audioThread(rt, stop, blocks, std::chrono::microseconds(0));
    for (int swap = 0; swap < 1000; ++swap) {
        auto rep = rt.swapNode(rt.nodeId(0), test::fixtureDir() + (swap % 2 ? "/libfixture_swap_1.so" : "/libfixture_swap_2.so"));
        while (rt.swapping()) {  // let the crossfade run, then publish the clean rack
            rt.tick();
            std::this_thread::yield();
        }
        ASSERT_TRUE(rep.ready());
        ASSERT_TRUE(rep.result()) << rep.result().error();
        engine::MeterFrame m;
        rt.engine().latestMeters(m);
    }
    const uint64_t target = blocks.load() + 4;
    while (blocks.load() < target) std::this_thread::yield();
    stop.store(true);
    audio.join();
    rt.tick();
    EXPECT_GT(blocks.load(), 1000u);
    EXPECT_EQ(gAllocs.exchange(0), 0) << "allocations on the audio thread during swaps";
    EXPECT_EQ(gFrees.exchange(0), 0) << "frees on the audio thread during swaps";
    EXPECT_EQ(gLocks.exchange(0), 0) << "lock calls on the audio thread during swaps";
}

TEST(AudioThread, NoAllocationNoLockWithIsolatedNodesThatCrashAndRestart) {
    // Three nodes in rackterm-sandbox children: a gain, a lowpass, and one
    // that segfaults every 300 blocks (restarted by the control thread,
    // given up after three); values change every block.
    setenv("RACKTERM_SANDBOX", (std::filesystem::path(test::binary()).parent_path() / "rackterm-sandbox").c_str(), 1);
    auto s = config::parseSession("[[node]]\nid = \"g\"\npath = \"" + test::moduleDir() +
                                      "/libgain.so\"\nisolate = true\n[[node]]\nid = \"lp\"\npath = \"" +
                                      test::moduleDir() + "/libbiquad.so\"\nisolate = true\n[[node]]\nid = \"bad\"\npath = \"" +
                                      test::fixtureDir() + "/libfixture_segfaults.so\"\nisolate = true\n"
                                      "params = { after_blocks = 300.0 }\n",
                                  "isolated.toml");
    ASSERT_TRUE(s) << s.error();
    auto r = app::Runtime::open(s.value(), 48000, 64);
    ASSERT_TRUE(r) << r.error();
    app::Runtime& rt = *r.value();
    ASSERT_TRUE(rt.nodeIsolated(0) && rt.nodeIsolated(1) && rt.nodeIsolated(2));
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> blocks{0};
    std::thread audio = audioThread(rt, stop, blocks, std::chrono::microseconds(200));  // paced, as periods would be
    std::vector<std::string> log;
    for (int i = 0; blocks.load() < 8000 && i < 200000; ++i) {
        (void)rt.setValue(1, 1, 500.0f + static_cast<float>(i % 1000));
        rt.tick();
        for (auto& e : rt.takeEvents(app::nowSeconds())) log.push_back(e);
        std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
    stop.store(true);
    audio.join();
    rt.tick();
    for (auto& e : rt.takeEvents(app::nowSeconds())) log.push_back(e);
    std::string all;
    for (const auto& e : log) all += e + "\n";
    EXPECT_NE(all.find("node 'bad': crashed (SIGSEGV)"), std::string::npos) << all;
    EXPECT_NE(all.find("stays bypassed"), std::string::npos) << all;
    EXPECT_EQ(rt.nodeFault(2), "failed");
    EXPECT_EQ(gAllocs.exchange(0), 0) << "allocations on the audio thread with isolated nodes";
    EXPECT_EQ(gFrees.exchange(0), 0) << "frees on the audio thread with isolated nodes";
    EXPECT_EQ(gLocks.exchange(0), 0) << "lock calls on the audio thread with isolated nodes";
}

TEST(AudioThread, NoAllocationNoLockIn100000BlocksOfASixteenNodeGraphWithConnectsEvery100Blocks) {
    // 16 nodes: a chain of 8, a branch of 4 fed from it (a fan-out), a
    // feedback edge inside the branch, three sends summed into one node (a
    // fan-in) and two paths into the output. Every 100 blocks a connection
    // comes or goes (a new rack with fades each time).
    std::string text = "[engine]\ninput_ports = 2\n";
    const char* kinds[] = {"biquad", "saturator", "gain", "delay"};
    for (int i = 0; i < 16; ++i)
        text += "[[node]]\nid = \"n" + std::to_string(i) + "\"\nprocessor = \"" + kinds[i % 4] + "\"\n";
    auto link = [&](const std::string& a, const std::string& b, const std::string& extra = "") {
        text += "[[connection]]\nfrom = \"" + a + "\"\nto = \"" + b + "\"\n" + extra;
    };
    link("input", "n0");
    for (int i = 0; i < 7; ++i) link("n" + std::to_string(i), "n" + std::to_string(i + 1));
    link("n7", "output");
    link("n3", "n8");
    for (int i = 8; i < 11; ++i) link("n" + std::to_string(i), "n" + std::to_string(i + 1));
    link("n11", "n8", "gain_db = -20.0\nfeedback = true\n");
    for (const char* from : {"n11", "n12", "n13"}) link(from, "n15", "gain_db = -6.0\n");
    link("n2", "n12");
    link("n5", "n13");
    link("n15", "output", "gain_db = -12.0\n");
    auto s = config::parseSession(text, "graph.toml");
    ASSERT_TRUE(s) << s.error();
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto r = app::Runtime::open(s.value(), 48000, 64);
    ASSERT_TRUE(r) << r.error();
    app::Runtime& rt = *r.value();
    constexpr uint32_t kBlocks = 100000;
    std::atomic<uint32_t> published{0}, processed{0};
    std::thread audio([&] {
        std::vector<float> in(64), l(64), rr(64);
        const float* ins[2] = {in.data(), in.data()};
        float* outs[2] = {l.data(), rr.data()};
        uint64_t phase = 0;
        tAudio = true;
        for (uint32_t b = 0; b < kBlocks; ++b) {
            while (published.load(std::memory_order_acquire) <= b) {
            }
            for (float& x : in) x = 0.5f * std::sin(static_cast<float>(phase++) * 0.13f);
            rt.engine().process(ins, outs, 64);
            processed.store(b + 1, std::memory_order_release);
        }
        tAudio = false;
    });
    app::CommandContext ctx{rt};
    std::vector<app::Reply> pending;
    int done = 0, failed = 0;
    for (uint32_t b = 0; b < kBlocks; ++b) {
        if (b % 100 == 0) pending.push_back(app::execute(ctx, (b / 100) % 2 == 0 ? "connect n1 n14 -6" : "disconnect n1 n14"));
        rt.tick();
        for (auto it = pending.begin(); it != pending.end();) {
            if (it->waiting())
                if (auto final = it->pending()) *it = std::move(*final);
            if (it->waiting()) {
                ++it;
                continue;
            }
            (it->ok ? done : failed) += 1;
            if (!it->ok && failed < 4) ADD_FAILURE() << "block " << b << ": " << it->text;
            it = pending.erase(it);
        }
        if (b % 64 == 0) rt.updateMeters(app::nowSeconds());
        published.store(b + 1, std::memory_order_release);
        while (processed.load(std::memory_order_acquire) <= b) {
        }  // in step: the control loop sees every block the audio ran
    }
    audio.join();
    rt.tick();
    EXPECT_EQ(done, 1000) << failed << " edits failed";
    EXPECT_EQ(gAllocs.exchange(0), 0) << "allocations on the audio thread while the graph changed";
    EXPECT_EQ(gFrees.exchange(0), 0) << "frees on the audio thread while the graph changed";
    EXPECT_EQ(gLocks.exchange(0), 0) << "lock calls on the audio thread while the graph changed";
}
