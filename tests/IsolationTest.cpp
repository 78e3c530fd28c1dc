// Isolated processors: a processor that segfaults, aborts, loops forever or
// sleeps 5 ms per block runs in a rackterm-sandbox child. The host (this
// test, or rackterm live and offline) survives each, the node plays its
// dry signal from the block it missed on (the child's side of it is
// silence), the child
// is restarted with its current values, and after 3 failures in 10 s the
// node stays bypassed; the other nodes keep playing, equal to the render of
// the session without that node.
#include "support/JackCapture.hpp"
#include "support/Support.hpp"

#include <rackterm/loader/Isolation.hpp>
#include <rackterm/loader/Loader.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <thread>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return test::fixtureDir() + "/libfixture_" + name + ".so"; }
std::string sandbox() { return (fs::path(test::binary()).parent_path() / "rackterm-sandbox").string(); }
double now() { return test::steadySeconds(); }

/// One isolated instance of `module` (2 x 256-frame blocks at 48 kHz) and its input/output blocks.
struct Harness {
    std::shared_ptr<loader::Module> module;
    std::unique_ptr<loader::Instance> instance;
    loader::IsolatedProcessor* iso = nullptr;
    std::vector<float> inL = std::vector<float>(256), inR = std::vector<float>(256);
    std::vector<float> outL = std::vector<float>(256), outR = std::vector<float>(256);
    std::vector<std::string> log;
    uint32_t block = 0;

    Harness(const std::string& path, std::vector<float> values, bool offline) {
        auto m = loader::loadModule(path);
        EXPECT_TRUE(m) << m.error();
        if (!m) return;
        module = m.value();
        auto inst = loader::createIsolatedInstance(module, 48000, 256, values, {sandbox(), "bad", 0, offline});
        EXPECT_TRUE(inst) << inst.error();
        if (!inst) return;
        instance = std::move(inst.value());
        iso = instance->isolated().get();
    }
    /// Run one block of a sine in, as the rack would; true when the output is the child's (not silence).
    bool run() {
        for (uint32_t f = 0; f < 256; ++f) {
            inL[f] = 0.5f * std::sin(0.05f * static_cast<float>(block * 256 + f));
            inR[f] = -inL[f];
        }
        ++block;
        const float* in[2] = {inL.data(), inR.data()};
        float* out[2] = {outL.data(), outR.data()};
        instance->descriptor().process(instance->get(), in, out, 256);
        return !iso->fault().load();
    }
    /// The control thread's turn (offline: waits for a restarted child).
    void supervise(bool wait = true) {
        for (auto& l : iso->supervise(now(), wait)) log.push_back(l);
    }
    std::string allLog() const {
        std::string s;
        for (const auto& l : log) s += l + "\n";
        return s;
    }
    bool silent() const {
        for (uint32_t f = 0; f < 256; ++f)
            if (outL[f] != 0.0f || outR[f] != 0.0f) return false;
        return true;
    }
    bool passedThrough() const { return outL == inL && outR == inR; }
};

}  // namespace

TEST(Isolation, AnIsolatedProcessorSoundsExactlyAsInProcess) {
    auto module = loader::loadModule(test::moduleDir() + "/libbiquad.so");
    ASSERT_TRUE(module) << module.error();
    const auto& d = module.value()->descriptor();
    std::vector<float> values;
    for (uint32_t i = 0; i < d.param_count; ++i) values.push_back(d.params[i].default_value);
    auto local = loader::createInstance(module.value(), 48000, 256);
    // Offline deadlines (1 s a block): this test is about the samples, and a
    // shared CI machine can deschedule the child past a live 3.7 ms deadline
    // (the live deadlines have their own tests below).
    auto isolated = loader::createIsolatedInstance(module.value(), 48000, 256, values, {sandbox(), "eq", 0, true});
    ASSERT_TRUE(local && isolated) << (isolated ? "" : isolated.error());
    ASSERT_NE(isolated.value()->isolated(), nullptr);
    EXPECT_GT(isolated.value()->isolated()->pid(), 0);
    const auto& h = isolated.value()->descriptor();
    EXPECT_EQ(std::string(h.id), d.id);
    EXPECT_EQ(h.param_count, d.param_count);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> noise(-0.5f, 0.5f);
    std::vector<float> in[2], a[2], b[2];
    for (auto* v : {in, a, b})
        for (int c = 0; c < 2; ++c) v[c].assign(256, 0.0f);
    for (int blockNo = 0; blockNo < 200; ++blockNo) {
        if (blockNo % 50 == 10) {  // a new cutoff now and then: values travel with the next block
            values[1] = 200.0f + 40.0f * static_cast<float>(blockNo);
            d.apply_plain_values(local.value()->get(), values.data(), values.size());
            h.apply_plain_values(isolated.value()->get(), values.data(), values.size());
        }
        for (int c = 0; c < 2; ++c)
            for (auto& x : in[c]) x = noise(rng);
        // Blocks of every length up to the maximum.
        const uint32_t frames = blockNo % 7 == 3 ? 1 + static_cast<uint32_t>(blockNo) % 256 : 256;
        const float* ins[2] = {in[0].data(), in[1].data()};
        float* outA[2] = {a[0].data(), a[1].data()};
        float* outB[2] = {b[0].data(), b[1].data()};
        d.process(local.value()->get(), ins, outA, frames);
        h.process(isolated.value()->get(), ins, outB, frames);
        ASSERT_FALSE(isolated.value()->isolated()->fault().load()) << "block " << blockNo;
        for (int c = 0; c < 2; ++c)
            for (uint32_t f = 0; f < frames; ++f) ASSERT_EQ(a[c][f], b[c][f]) << "block " << blockNo << " frame " << f;
    }
    EXPECT_EQ(isolated.value()->isolated()->lateBlocks(), 0u);
}

TEST(Isolation, ACrashCostsABlockTheChildRestartsWithItsValuesAndThreeCrashesBypassIt) {
    for (const auto& [name, signal] : {std::pair{"segfaults", "SIGSEGV"}, std::pair{"aborts", "SIGABRT"}}) {
        SCOPED_TRACE(name);
        Harness h(fixture(name), {5.0f}, true);  // after_blocks = 5
        ASSERT_NE(h.iso, nullptr);
        std::vector<pid_t> pids;
        for (int crash = 1; crash <= 3; ++crash) {
            pids.push_back(h.iso->pid());
            for (int b = 0; b < 5; ++b) {
                ASSERT_TRUE(h.run()) << "block " << b << " after start " << crash << "\n" << h.allLog();
                EXPECT_TRUE(h.passedThrough());
            }
            EXPECT_FALSE(h.run()) << "the 6th block crashes the child";
            EXPECT_TRUE(h.silent());
            EXPECT_TRUE(h.iso->fault().load());
            const size_t before = h.log.size();
            h.supervise();
            ASSERT_GT(h.log.size(), before);
            EXPECT_EQ(h.log[before].find(std::string("node 'bad': crashed (") + signal + ") in its block 6"), 0u)
                << h.allLog();
        }
        EXPECT_NE(h.allLog().find("restarting it with its current values"), std::string::npos) << h.allLog();
        EXPECT_NE(h.allLog().find("3 failures in 10 s: it stays bypassed; `reload bad` starts it again"),
                  std::string::npos)
            << h.allLog();
        EXPECT_TRUE(h.iso->gaveUp());
        EXPECT_EQ(h.iso->status(now()), "failed");
        EXPECT_EQ(h.iso->failureCount(), 3u);
        EXPECT_EQ(h.iso->lateBlocks(), 0u) << "a crash is not a late block";
        EXPECT_NE(pids[0], pids[1]);
        EXPECT_NE(pids[1], pids[2]);
        // Given up: silence and the fault flag (the rack plays the dry signal), at once.
        EXPECT_FALSE(h.run());
        EXPECT_TRUE(h.silent());
        h.supervise();
        EXPECT_EQ(h.iso->pid(), -1);
    }
}

TEST(Isolation, ANewValueSurvivesARestart) {
    Harness h(fixture("segfaults"), {3.0f}, true);
    ASSERT_NE(h.iso, nullptr);
    for (int b = 0; b < 3; ++b) ASSERT_TRUE(h.run());
    // after_blocks 3 -> 6: sent with the next block, which the child then survives.
    const float six = 6.0f;
    h.instance->descriptor().apply_plain_values(h.instance->get(), &six, 1);
    for (int b = 0; b < 3; ++b) ASSERT_TRUE(h.run()) << b;
    EXPECT_FALSE(h.run());  // its 7th block
    h.supervise();
    // The new child starts with after_blocks = 6: six good blocks, then the crash.
    for (int b = 0; b < 6; ++b) ASSERT_TRUE(h.run()) << "restarted child, block " << b << "\n" << h.allLog();
    EXPECT_FALSE(h.run());
}

TEST(Isolation, ALoopingOrSleepingChildIsLateThenStuckThenRestarted) {
    for (const std::string name : {"loops", "sleeps"}) {
        SCOPED_TRACE(name);
        Harness h(fixture(name), {2.0f}, false);  // live deadlines: 70 % of the 5.33 ms period
        ASSERT_NE(h.iso, nullptr);
        const bool loops = name == "loops";
        // Blocks paced as periods would be.
        auto next = std::chrono::steady_clock::now();
        auto paced = [&] {
            std::this_thread::sleep_until(next);
            next += std::chrono::microseconds(5333);
            return h.run();
        };
        if (loops)
            for (int b = 0; b < 2; ++b) ASSERT_TRUE(paced());
        const pid_t first = h.iso->pid();
        // Blocks miss their deadline until the child counts as stuck (late in
        // most blocks of a quarter second); the control thread looks after every block.
        const double since = now();
        int blocks = 0, silentBlocks = 0;
        while (h.iso->pid() == first && blocks < 500) {
            silentBlocks += paced() ? 0 : 1;
            ++blocks;
            h.supervise(false);
        }
        const double took = now() - since;
        EXPECT_GE(took, loader::kIsolationStuckSeconds - 0.02) << "not stuck before a quarter second (its window may have begun with the good blocks)";
        EXPECT_LT(took, 2.5) << h.allLog();
        EXPECT_GE(silentBlocks * 5, blocks * 4) << "4 blocks of 5 or more are silent (a busy machine may make "
                                                   "the host so late itself that a slow reply is in time)";
        EXPECT_NE(h.allLog().find("node 'bad': late: no reply within "), std::string::npos) << h.allLog();
        EXPECT_NE(h.allLog().find("node 'bad': late: no reply in time in "),
                  std::string::npos)
            << h.allLog();
        EXPECT_NE(h.iso->pid(), first) << "the stuck child was killed and a new one started";
        int status = 0;
        EXPECT_EQ(::waitpid(first, &status, WNOHANG), -1) << "the old child was reaped";
        EXPECT_GE(h.iso->lateBlocks(), static_cast<uint64_t>(silentBlocks - 1));
    }
}

TEST(Isolation, BlocksBackToBackAfterOneLateReplyAreNotAStuckChild) {
    Harness h(fixture("sleeps"), {0.0f}, false);
    ASSERT_NE(h.iso, nullptr);
    const pid_t child = h.iso->pid();
    // The first block misses its deadline (5 ms of sleep); 20 more right
    // after it find the child still busy: silent, but not stuck (they span
    // microseconds, not the quarter second a stuck child takes).
    EXPECT_FALSE(h.run());
    for (int b = 0; b < 20; ++b) EXPECT_FALSE(h.run());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    h.supervise();
    EXPECT_EQ(h.iso->pid(), child) << h.allLog();
    EXPECT_EQ(h.iso->failureCount(), 0u);
}

namespace {

/// A looping session (player -> NODE -> lowpass -> gain) with `node` as its second node, or none.
std::string loopingSession(const std::string& name, const std::string& node) {
    std::string nodes = test::kLoopingNodes;
    if (!node.empty()) {
        const size_t lp = nodes.find("[[node]]\nid = \"lp\"");
        nodes.insert(lp, node);
    }
    return "[session]\nname = \"" + name + "\"\n[engine]\n" + nodes;
}

std::string badNode(const std::string& fixtureName, int afterBlocks) {
    return "[[node]]\nid = \"bad\"\npath = \"" + fixture(fixtureName) + "\"\nisolate = true\nparams = { after_blocks = " +
           std::to_string(afterBlocks) + ".0 }\n";
}

}  // namespace

TEST(Isolation, OfflineTheRenderFinishesNamesTheNodeAndAMissedBlockPlaysDry) {
    const std::string dir = test::tempDir("isolate-offline");
    test::writeText(dir + "/without.toml", loopingSession("without", ""));
    std::string error;
    const size_t frames = 96000;
    const test::Sound without = test::renderForCapture(dir + "/without.toml", dir, frames, &error);
    ASSERT_EQ(error, "");
    for (const auto& [name, after] : {std::pair{"segfaults", 40}, std::pair{"aborts", 40}, std::pair{"loops", 40},
                                      std::pair{"sleeps", 0}}) {
        SCOPED_TRACE(name);
        const std::string session = dir + "/" + name + ".toml";
        test::writeText(session, loopingSession(name, badNode(name, after)));
        fs::create_directories(dir + "/" + name);
        const test::Sound with = test::renderForCapture(session, dir + "/" + name, frames, &error);
        ASSERT_EQ(error, "") << "the render finishes";
        ASSERT_EQ(with.frames(), without.frames());
        const auto r = test::run({test::binary(), "render", session, "-i", dir + "/" + name + "/silence.wav", "-o",
                                  dir + "/" + name + "/again.wav", "--block", "256"},
                                 {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
        ASSERT_EQ(r.exitCode, 0) << r.err;
        if (std::string(name) == "sleeps") {  // 5 ms per block is no deadline offline: it plays, a pass-through
            EXPECT_EQ(r.err.find("node 'bad'"), std::string::npos) << r.err;
            EXPECT_EQ(with.samples, without.samples);
            continue;
        }
        EXPECT_NE(r.err.find("node 'bad': "), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("3 failures in 10 s: it stays bypassed"), std::string::npos) << r.err;
        // The pass-through node's crashes, its loop's time-outs and its
        // restarts cost nothing audible: each missed block plays the dry
        // signal (which is what the node passed through), so the render
        // equals the render without the node, sample for sample.
        EXPECT_EQ(with.samples, without.samples);
    }
    fs::remove_all(dir);
}

TEST(Isolation, LiveTheHostSurvivesOtherNodesKeepPlayingAndTheNodeIsNamed) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("isolate-live");
    test::writeText(dir + "/without.toml", loopingSession("without", ""));
    const size_t frames = 48000;
    std::string error;
    const test::Sound without = test::renderForCapture(dir + "/without.toml", dir, frames, &error);
    ASSERT_EQ(error, "");
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                          "XDG_RUNTIME_DIR=" + dir};
    for (const auto& [name, after] : {std::pair{"segfaults", 100}, std::pair{"aborts", 100}, std::pair{"loops", 100},
                                      std::pair{"sleeps", 0}}) {
        SCOPED_TRACE(name);
        const std::string client = std::string("iso_") + name;
        const std::string session = dir + "/" + name + ".toml";
        test::writeText(session, loopingSession(client, badNode(name, after)));
        test::Child rackterm(
            test::spawn({test::binary(), "--headless", session}, env, dir + "/" + name + ".out", dir + "/" + name + ".err"));
        ASSERT_GT(rackterm.pid(), 0);
        // Three failures (each a restart) and the node stays bypassed.
        const auto until = now() + 30;
        while (now() < until && test::readText(dir + "/" + name + ".err").find("stays bypassed") == std::string::npos &&
               rackterm.running())
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        const std::string err = test::readText(dir + "/" + name + ".err");
        ASSERT_TRUE(rackterm.running()) << "the host survives: " << err;
        EXPECT_NE(err.find("stays bypassed"), std::string::npos) << err;
        const std::string reason = std::string(name) == "segfaults" ? "crashed (SIGSEGV)"
                                   : std::string(name) == "aborts" ? "crashed (SIGABRT)"
                                                                    : "late: no reply";
        EXPECT_NE(err.find("node 'bad': " + reason), std::string::npos) << err;
        // The console and `status` name it too.
        auto st = test::run({test::binary(), "ctl", "--session", client, "list nodes"}, env, 20);
        EXPECT_NE(st.out.find("bad=" + std::string(name) + "(active, isolated: failed)"), std::string::npos) << st.out << st.err;
        // The rest plays on: the capture equals the render without the node.
        const auto got = test::captureInProcess(server.name(), "recorder", frames, 2, dir + "/capture.wav", 10,
                                                {client + ":out_1", client + ":out_2"});
        ASSERT_EQ(got.exitCode, 0) << got.log;
        const auto l = got.sound.channel(0), r = got.sound.channel(1);
        const auto m = test::matchCapture(l, r, without, test::loopingFrames(), 256);
        EXPECT_LE(m.mismatched, 1u + m.compared / 50) << m.failure;
        EXPECT_GT(m.compared, frames / 256 / 2) << "most periods carry sound";
        if (std::string(name) == "segfaults") {  // `reload NODE` brings a node that gave up back
            auto set = test::run({test::binary(), "ctl", "--session", client, "set bad.after_blocks 1000000"}, env, 20);
            EXPECT_EQ(set.exitCode, 0) << set.out << set.err;
            auto reload = test::run({test::binary(), "ctl", "--session", client, "reload bad"}, env, 20);
            EXPECT_EQ(reload.exitCode, 0) << reload.out << reload.err;
            EXPECT_NE(reload.out.find("bad: reloaded"), std::string::npos) << reload.out << reload.err;
            st = test::run({test::binary(), "ctl", "--session", client, "list nodes"}, env, 20);
            EXPECT_NE(st.out.find("bad=segfaults(active, isolated)"), std::string::npos) << st.out << st.err;
        }
        EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/" + name + ".err");
    }
    fs::remove_all(dir);
}
