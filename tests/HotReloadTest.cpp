// The hot-reload pipeline on a real processor project compiled by g++:
// watch filters and which events count, builds started on the first write
// (no debounce) with one pending build behind a running one, saves by
// rename, a failed build that changes nothing audible and shows the
// compiler's error, and the fix that swaps; a replaced module swapped once
// settled. The test thread plays the audio thread between polls.
#include "support/Support.hpp"

#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/app/HotReload.hpp>
#include <rackterm/loader/Watcher.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

std::string processorSource(const std::string& version, float gain, const std::string& extra = "") {
    return "#include <rackterm/Processor.hpp>\n"
           "namespace {\nstruct Proc {\n"
           "  static constexpr const char* kId = \"proc\";\n  static constexpr const char* kName = \"Proc\";\n"
           "  static constexpr const char* kVersion = \"" + version + "\";\n"
           "  static constexpr std::array<rackterm_param_info, 1> kParams{{{\"gain_db\", \"Gain\", \"dB\", -60.0f, 24.0f, 0.0f, 0u, nullptr}}};\n"
           "  Proc(double, uint32_t) {}\n  void reset() noexcept {}\n"
           "  void process(const float* const* in, float* const* out, uint32_t n, const float*) noexcept {\n"
           "    for (uint32_t c = 0; c < 2; ++c) for (uint32_t i = 0; i < n; ++i) out[c][i] = in[c][i] * " +
           std::to_string(gain) + "f;\n  }\n};\n}\nRACKTERM_PROCESSOR(Proc)\n" + extra;
}

class HotReloadTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir = test::tempDir("hot");
        fs::create_directories(dir + "/proc/src");
        fs::create_directories(dir + "/proc/build");
        test::writeText(dir + "/proc/src/proc.cpp", processorSource("1", 1.0f));
        // A test that saves during a build makes the build last (a loaded machine may compile in well under a second).
        const bool slow = std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) ==
                          "SavesDuringABuildGiveExactlyOnePendingBuild";
        const std::string build = std::string(slow ? "sleep 2 && " : "") +
                                  "g++ -std=c++20 -O1 -fPIC -shared -fvisibility=hidden -fno-gnu-unique -I" +
                                  test::sourceDir() + "/src/sdk/include -o proc/build/libproc.so proc/src/proc.cpp";
        test::writeText(dir + "/s.toml", "[[node]]\nid = \"p\"\npath = \"proc/build/libproc.so\"\nwatch = { source = \"proc\", build = \"" +
                                             build + "\" }\n");
        auto s = config::loadSession(dir + "/s.toml");
        ASSERT_TRUE(s) << s.error();
        ASSERT_TRUE(app::buildMissingModules(s.value(), [](const std::string&) {}));
        auto r = app::Runtime::open(s.value(), 48000, 256);
        ASSERT_TRUE(r) << r.error();
        rt = std::move(r.value());
        hot = std::make_unique<app::HotReload>(
            *rt,
            [this](const std::string& l) {
                if (l.rfind("building ", 0) == 0 && buildingAt == 0) buildingAt = now();
                log.push_back(l);
            },
            [this](const std::string& l) { warnings.push_back(l); });
        ASSERT_TRUE(hot->start().empty());
    }
    void TearDown() override {
        hot.reset();
        rt.reset();
        fs::remove_all(dir);
    }
    double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
    /// Run the control loop (and play blocks) until `done()` or `seconds` pass.
    bool runUntil(const std::function<bool()>& done, double seconds) {
        const double end = now() + seconds;
        while (now() < end) {
            auto fds = hot->pollFds();
            ::poll(fds.data(), fds.size(), 10);
            hot->onReadable(now());
            hot->tick(now());
            playBlock();
            rt->tick();
            if (done()) return true;
        }
        return false;
    }
    float playBlock() {  // returns the output's peak for an input of 0.5
        std::vector<float> in(256, 0.5f), l(256), r(256);
        const float* ins[2] = {in.data(), in.data()};
        float* outs[2] = {l.data(), r.data()};
        rt->engine().process(ins, outs, 256);
        return l[255];
    }
    void save(const std::string& text) { test::writeText(source(), text); }
    std::string source() const { return dir + "/proc/src/proc.cpp"; }
    bool settled() { return !hot->busy(0) && !rt->swapping(); }

    std::string dir;
    double buildingAt = 0;  // when the first "building p..." line came (steady clock, seconds)
    std::unique_ptr<app::Runtime> rt;
    std::unique_ptr<app::HotReload> hot;
    std::vector<std::string> log, warnings;
};

}  // namespace

TEST(Watcher, OnlySourcesCount) {
    EXPECT_TRUE(loader::countsAsSource("drive.cpp"));
    EXPECT_TRUE(loader::countsAsSource("dsp/filter.hpp"));
    EXPECT_TRUE(loader::countsAsSource("CMakeLists.txt"));
    EXPECT_TRUE(loader::countsAsSource("cmake/flags.cmake"));
    for (const char* no : {".drive.cpp.swp", "drive.cpp.swo", "drive.cpp~", "4913", "#drive.cpp#", ".#drive.cpp",
                           "build/drive.cpp", "build-release/x.h", "cmake-build-debug/a.cpp", "CMakeFiles/a.cpp",
                           ".git/HEAD", "notes.txt", "libdrive.so"})
        EXPECT_FALSE(loader::countsAsSource(no)) << no;
}

TEST(Watcher, RecursiveAndNewFolders) {
    const std::string d = test::tempDir("watch");
    fs::create_directories(d + "/a/b");
    auto w = loader::SourceWatcher::create();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w.value()->watchSources(7, d));
    test::writeText(d + "/a/b/deep.hpp", "x");
    test::writeText(d + "/a/b/.deep.hpp.swp", "x");
    fs::create_directories(d + "/new");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    w.value()->read();  // registers the new folder
    test::writeText(d + "/new/fresh.cpp", "x");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto events = w.value()->read();
    std::vector<std::string> names;
    for (const auto& e : events) names.push_back(fs::path(e.path).filename().string());
    EXPECT_NE(std::find(names.begin(), names.end(), "fresh.cpp"), names.end());
    EXPECT_EQ(std::find(names.begin(), names.end(), ".deep.hpp.swp"), names.end());
    fs::remove_all(d);
}

namespace {
/// What the watcher reports after a moment: "name" for a complete file, "-name" for one gone.
std::vector<std::string> settledEvents(loader::SourceWatcher& w) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::vector<std::string> out;
    for (const auto& e : w.read()) out.push_back((e.removed ? "-" : "") + fs::path(e.path).filename().string());
    return out;
}
using Names = std::vector<std::string>;
double steadySeconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
}  // namespace

TEST(Watcher, ReportsSourcesWhenComplete) {
    const std::string d = test::tempDir("watchrules");
    auto w = loader::SourceWatcher::create();
    ASSERT_TRUE(w);
    loader::SourceWatcher& watcher = *w.value();
    ASSERT_TRUE(watcher.watchSources(1, d));
    // The module folder is the source folder: watching the module must not narrow the sources' events.
    ASSERT_TRUE(watcher.watchModule(2, d + "/libx.so"));
    {
        std::ofstream f(d + "/a.cpp");  // IN_CREATE
        f << "int a;";
        f.flush();
        EXPECT_EQ(settledEvents(watcher), Names{}) << "a file still being written is not reported";
    }  // IN_CLOSE_WRITE
    EXPECT_EQ(settledEvents(watcher), Names{"a.cpp"});
    fs::create_symlink(d + "/a.cpp", d + "/b.hpp");  // no close follows a link
    EXPECT_EQ(settledEvents(watcher), Names{"b.hpp"});
    fs::rename(d + "/a.cpp", d + "/a.cpp~");  // vim's backup: the backup itself is ignored
    EXPECT_EQ(settledEvents(watcher), Names{"-a.cpp"});
    fs::remove(d + "/b.hpp");
    EXPECT_EQ(settledEvents(watcher), Names{"-b.hpp"});
    test::writeText(d + "/.c.cpp.tmp", "int c;");
    fs::rename(d + "/.c.cpp.tmp", d + "/c.cpp");  // a temporary renamed over the file
    EXPECT_EQ(settledEvents(watcher), Names{"c.cpp"});
    fs::create_directories(d + "/sub");
    EXPECT_EQ(settledEvents(watcher), Names{}) << "an empty new folder";
    fs::rename(d + "/sub", d + "/sub2");
    EXPECT_EQ(settledEvents(watcher), (Names{"-sub", "sub2"}));
    test::writeText(d + "/sub2/d.cpp", "int d;");
    EXPECT_EQ(settledEvents(watcher), Names{"d.cpp"}) << "the renamed folder is watched under its new name";
    test::writeText(d + "/libx.so", "not really");
    EXPECT_EQ(settledEvents(watcher), Names{"libx.so"});
    fs::remove_all(d);
}

TEST_F(HotReloadTest, FirstWriteStartsOneBuildAtOnce) {
    const double saved = now();
    save(processorSource("2", 0.5f));
    ASSERT_TRUE(runUntil([&] { return buildingAt > 0; }, 5)) << "no build started";
    // A functional check that nothing debounces (a debounce waits 300 ms or
    // more after the save), not a speed target: bench/reload_latency has that.
    EXPECT_LT(buildingAt - saved, 0.15);
    ASSERT_TRUE(runUntil([&] { return settled(); }, 60));
    EXPECT_EQ(hot->buildsStarted(0), 1u);
    EXPECT_STREQ(rt->descriptor(0).version, "2");
    EXPECT_TRUE(warnings.empty()) << warnings.front();
}

TEST_F(HotReloadTest, SavesDuringABuildGiveExactlyOnePendingBuild) {
    save(processorSource("a", 0.9f));
    ASSERT_TRUE(runUntil([&] { return buildingAt > 0; }, 5));
    save(processorSource("b", 0.9f));
    ASSERT_TRUE(runUntil([&] { return hot->status().find("(+1 pending)") != std::string::npos; }, 5)) << hot->status();
    save(processorSource("c", 0.25f));
    runUntil([] { return false; }, 0.05);
    // The first build (sleep 2 && g++) takes far longer than these 50 ms, so it still runs.
    EXPECT_EQ(hot->status(), "p: building (+1 pending), 1 builds");
    ASSERT_TRUE(runUntil([&] { return settled(); }, 90));
    EXPECT_EQ(hot->buildsStarted(0), 2u) << "the running build and one pending";
    EXPECT_STREQ(rt->descriptor(0).version, "c");
    EXPECT_NEAR(playBlock(), 0.125f, 1e-6) << "the last save is heard";
}

TEST_F(HotReloadTest, NewFileBuildsWhenItsWriterClosesIt) {
    {
        std::ofstream f(dir + "/proc/src/extra.hpp");
        f << "#pragma once\n";
        f.flush();
        runUntil([] { return false; }, 0.5);
        EXPECT_EQ(hot->buildsStarted(0), 0u) << "no build of a file still being written";
        f << "constexpr int kExtra = 1;\n";
    }
    ASSERT_TRUE(runUntil([&] { return buildingAt > 0; }, 5));
    ASSERT_TRUE(runUntil([&] { return settled(); }, 60));
    EXPECT_EQ(hot->buildsStarted(0), 1u);
}

TEST_F(HotReloadTest, SavesByRenameBuildOnceOnTheNewFile) {
    // vim's and Emacs's save: the file renamed to a backup, a new one written
    // (vim fsyncs it first, hence the pause), the backup removed.
    fs::rename(source(), source() + "~");
    runUntil([] { return false; }, 0.05);
    EXPECT_EQ(hot->buildsStarted(0), 0u) << "no build while the file is missing";
    save(processorSource("vim", 0.5f));
    fs::remove(source() + "~");
    ASSERT_TRUE(runUntil([&] { return settled(); }, 60));
    EXPECT_EQ(hot->buildsStarted(0), 1u);
    EXPECT_TRUE(warnings.empty()) << warnings.front();
    EXPECT_STREQ(rt->descriptor(0).version, "vim");
    // JetBrains, gedit, sed -i: a temporary renamed over the file.
    test::writeText(dir + "/proc/src/.proc.cpp.tmp", processorSource("renamed", 0.25f));
    fs::rename(dir + "/proc/src/.proc.cpp.tmp", source());
    ASSERT_TRUE(runUntil([&] { return hot->buildsStarted(0) == 2u; }, 5));
    ASSERT_TRUE(runUntil([&] { return settled(); }, 60));
    EXPECT_EQ(hot->buildsStarted(0), 2u);
    EXPECT_STREQ(rt->descriptor(0).version, "renamed");
}

TEST_F(HotReloadTest, DeletedSourceBuildsAfterAShortWait) {
    test::writeText(dir + "/proc/src/unused.hpp", "#pragma once\n");
    ASSERT_TRUE(runUntil([&] { return settled() && hot->buildsStarted(0) == 1u; }, 60));
    fs::remove(dir + "/proc/src/unused.hpp");
    ASSERT_TRUE(runUntil([&] { return hot->buildsStarted(0) == 2u; }, 5)) << "a real deletion is built too";
    ASSERT_TRUE(runUntil([&] { return settled(); }, 60));
    EXPECT_EQ(hot->buildsStarted(0), 2u);
    EXPECT_TRUE(warnings.empty()) << warnings.front();
}

TEST(HotReloadModule, ReplacedModuleSwapsOnceSettled) {
    const std::string d = test::tempDir("hotmodule");
    const std::string module = d + "/libswap.so";
    fs::copy_file(test::fixtureDir() + "/libfixture_swap_1.so", module);
    test::writeText(d + "/s.toml", "[[node]]\nid = \"sw\"\npath = \"" + module + "\"\n");
    auto s = config::loadSession(d + "/s.toml");
    ASSERT_TRUE(s) << s.error();
    auto r = app::Runtime::open(s.value(), 48000, 256);
    ASSERT_TRUE(r) << r.error();
    app::Runtime& rt = *r.value();
    std::vector<std::string> log, warnings;
    app::HotReload hot(
        rt, [&](const std::string& l) { log.push_back(l); }, [&](const std::string& l) { warnings.push_back(l); });
    ASSERT_TRUE(hot.start().empty());
    auto loop = [&](double seconds) {
        const double end = steadySeconds() + seconds;
        while (steadySeconds() < end) {
            auto fds = hot.pollFds();
            ::poll(fds.data(), fds.size(), 5);
            hot.onReadable(steadySeconds());
            hot.tick(steadySeconds());
            rt.tick();
        }
    };
    // A module written by two writers in a row (a linker, then strip): the
    // half-written first one must never be loaded. The second comes well
    // within the settle time (100 ms).
    const std::string whole = test::readText(test::fixtureDir() + "/libfixture_swap_2.so");
    test::writeText(module, whole.substr(0, whole.size() / 3));
    loop(0.02);
    test::writeText(module, whole);
    loop(0.5);
    EXPECT_TRUE(warnings.empty()) << warnings.front();
    EXPECT_EQ(std::count_if(log.begin(), log.end(), [](const std::string& l) { return l.find("sw: module replaced") == 0; }), 1)
        << (log.empty() ? "" : log.back());
    EXPECT_STREQ(rt.descriptor(0).version, "2.0.0");
    fs::remove_all(d);
}

TEST_F(HotReloadTest, EditBuildsOnceAndSwaps) {
    EXPECT_NEAR(playBlock(), 0.5f, 1e-6);
    save(processorSource("2", 0.5f));
    ASSERT_TRUE(runUntil([&] { return std::string(rt->descriptor(0).version) == "2" && !rt->swapping(); }, 60))
        << "no swap; log: " << (log.empty() ? "" : log.back());
    EXPECT_EQ(hot->buildsStarted(0), 1u);
    EXPECT_NEAR(playBlock(), 0.25f, 1e-6) << "the new code is heard";
    bool reported = false;
    for (const auto& l : log) reported = reported || l.find("p: build ok in ") == 0;
    EXPECT_TRUE(reported);
    EXPECT_NE(hot->status().find("p: ok, 1 builds"), std::string::npos) << hot->status();
}

TEST_F(HotReloadTest, RapidSavesGiveAtMostTwoBuilds) {
    for (int i = 0; i < 10; ++i) {
        save(processorSource("r" + std::to_string(i), 0.9f));
        runUntil([] { return false; }, 0.02);  // ten saves in about 200 ms
    }
    ASSERT_TRUE(runUntil([&] { return !hot->busy(0) && !rt->swapping(); }, 90));
    EXPECT_GE(hot->buildsStarted(0), 1u);
    EXPECT_LE(hot->buildsStarted(0), 2u);
    EXPECT_STREQ(rt->descriptor(0).version, "r9") << "the last save is what plays";
}

TEST_F(HotReloadTest, SwapFilesAndBuildFolderTriggerNothing) {
    test::writeText(dir + "/proc/src/.proc.cpp.swp", "swap");
    test::writeText(dir + "/proc/src/proc.cpp~", "backup");
    test::writeText(dir + "/proc/src/4913", "");
    test::writeText(dir + "/proc/build/generated.cpp", "int x;");
    test::writeText(dir + "/proc/README.txt", "notes");
    runUntil([] { return false; }, 1.0);
    EXPECT_EQ(hot->buildsStarted(0), 0u);
    EXPECT_FALSE(hot->busy(0));
}

TEST_F(HotReloadTest, FailedBuildChangesNothingAndShowsTheErrorThenTheFixSwaps) {
    const float before = playBlock();
    save(processorSource("bad", 0.1f, "int broken(\n"));
    ASSERT_TRUE(runUntil([&] { return !warnings.empty(); }, 60));
    EXPECT_NE(warnings.back().find("p: build failed"), std::string::npos) << warnings.back();
    EXPECT_NE(warnings.back().find("proc.cpp:"), std::string::npos) << warnings.back();
    EXPECT_NE(warnings.back().find(": error: "), std::string::npos) << warnings.back();
    EXPECT_NE(warnings.back().find("the old processor keeps playing"), std::string::npos);
    EXPECT_STREQ(rt->descriptor(0).version, "1");
    EXPECT_EQ(playBlock(), before) << "output identical to before";
    save(processorSource("fixed", 0.25f));
    ASSERT_TRUE(runUntil([&] { return std::string(rt->descriptor(0).version) == "fixed" && !rt->swapping(); }, 60));
    EXPECT_NEAR(playBlock(), 0.125f, 1e-6);
}

TEST_F(HotReloadTest, ReloadCommandBuildsThenSwaps) {
    app::CommandContext ctx{*rt};
    ctx.reload = [&](const std::string& id) { return hot->reload(id); };
    ctx.buildStatus = [&] { return hot->status(); };
    auto r = app::execute(ctx, "reload p");
    ASSERT_TRUE(r.ok) << r.text;
    EXPECT_EQ(r.text, "p: building (the swap follows a successful build)");
    EXPECT_NE(app::execute(ctx, "build status").text.find("p: building"), std::string::npos);
    ASSERT_TRUE(runUntil([&] { return !hot->busy(0) && !rt->swapping(); }, 60));
    EXPECT_EQ(hot->buildsStarted(0), 1u);
}

// A node added while a build runs (the live loop then re-watches the rack):
// the running build is kept, not killed, and its swap lands on the node it
// was built for; `reload` finds nodes by id, wherever they moved.
TEST_F(HotReloadTest, ABuildSurvivesAnAddAndReloadFindsNodesById) {
    fs::copy_file(dir + "/proc/build/libproc.so", dir + "/first.so");  // build 1, apart from what the build writes
    save(processorSource("kept", 0.5f));
    ASSERT_TRUE(runUntil([&] { return buildingAt > 0; }, 5));
    auto added = rt->addNode("first", dir + "/first.so", "p", true);  // before p: p moves to index 1
    ASSERT_TRUE(runUntil([&] { return added.ready(); }, 5));
    ASSERT_TRUE(added.result()) << added.result().error();
    for (const auto& w : hot->start()) ADD_FAILURE() << w;  // what serviceLive does when the nodes change
    ASSERT_EQ(rt->nodeId(1), "p");
    ASSERT_TRUE(runUntil([&] { return std::string(rt->descriptor(1).version) == "kept" && !rt->swapping(); }, 60))
        << (warnings.empty() ? "" : warnings.front());
    EXPECT_EQ(hot->buildsStarted(1), 1u) << "the running build was kept, not started again";
    EXPECT_STREQ(rt->descriptor(0).version, "1") << "the new node was not swapped";
    app::CommandContext ctx{*rt};
    ctx.reload = [&](const std::string& id) { return hot->reload(id); };
    const app::Reply r = app::execute(ctx, "reload p");
    EXPECT_EQ(r.text, "p: building (the swap follows a successful build)");
    ASSERT_TRUE(runUntil([&] { return !hot->busy(1) && !rt->swapping(); }, 60));
    EXPECT_EQ(hot->buildsStarted(1), 2u);
    EXPECT_EQ(hot->buildsStarted(0), 0u);
}
