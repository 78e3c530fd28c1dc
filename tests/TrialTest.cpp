// Trial: a new build runs offline in rackterm-sandbox before it is heard.
// Each misbehaving fixture (NaN, a segfault, abort(), an endless loop, 5 ms
// per block) is refused with its reason and the block where it happened;
// the host (this test) survives every one. Live: hot reload of a module file
// replaced by bad builds keeps the old processor playing and names why;
// a good build then swaps in.
#include "support/Support.hpp"

#include <rackterm/app/Trial.hpp>
#include <rackterm/app/Runtime.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return test::fixtureDir() + "/libfixture_" + name + ".so"; }

/// True once `file` holds `text` after its first `from` bytes (within `seconds`).
bool waitForText(const std::string& file, const std::string& text, size_t from, double seconds = 15) {
    for (int i = 0; i < seconds * 20; ++i) {
        if (test::readText(file).find(text, from) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

/// Replace `module` by `with` as a build would: a new file renamed over the old.
void replaceModule(const std::string& module, const std::string& with) {
    const std::string tmp = module + ".tmp";
    fs::copy_file(with, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, module);
}

/// Run a trial to its end through the sandbox next to the rackterm binary.
std::unique_ptr<app::TrialRun> trial(const std::string& module, uint32_t block = 256,
                                     std::vector<std::pair<std::string, float>> values = {}) {
    setenv("RACKTERM_SANDBOX", (fs::path(test::binary()).parent_path() / "rackterm-sandbox").c_str(), 1);
    auto t = app::TrialRun::start(module, 48000, block, values, app::nowSeconds());
    while (!t->poll(app::nowSeconds())) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return t;
}

}  // namespace

TEST(Trial, AGoodBuildPassesInTheSandbox) {
    auto t = trial(fixture("swap_1"));
    EXPECT_TRUE(t->isolated());
    EXPECT_EQ(t->problem(), "");
    EXPECT_GT(t->medianBlockSeconds(), 0.0);
}

TEST(Trial, EachBadBuildIsRefusedWithItsReasonAndTheHostSurvives) {
    struct Case {
        std::string module;
        uint32_t block;
        std::string expected;
    };
    const std::vector<Case> cases = {
        {fixture("makes_nan"), 256, "NaN in output 1 at block 1 of the silence"},
        {fixture("segfaults"), 256, "crashed (SIGSEGV) in block 1 of the silence"},
        {fixture("aborts"), 256, "crashed (SIGABRT) in block 1 of the silence"},
        {fixture("loops"), 256, "did not finish block 1 of the silence within 3 s (an endless loop?)"},
        {fixture("sleeps"), 128, "a block takes 5."},  // 5 ms in a 2.67 ms period
        {fixture("create_throws"), 256, "out of coffee"},
        {test::fixtureDir() + "/libfixture_abi_v1.so", 256, "ABI"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.module);
        auto t = trial(c.module, c.block);
        EXPECT_NE(t->problem().find(c.expected), std::string::npos) << t->problem();
        EXPECT_EQ(t->loadError(), c.expected == "out of coffee" || c.expected == "ABI");
    }
    // 5 ms per block fits a 5.33 ms period: passes.
    EXPECT_EQ(trial(fixture("sleeps"), 256)->problem(), "");
    // A crash later than the trial's 32 blocks is not the trial's to see (the watchdog's).
    EXPECT_EQ(trial(fixture("segfaults"), 256, {{"after_blocks", 100.0f}})->problem(), "");
    EXPECT_NE(trial(fixture("segfaults"), 256, {{"after_blocks", 20.0f}})->problem().find("in block 5 of the noise"),
              std::string::npos)
        << "the values reach the trial by id: 8 silence + 8 impulse + 4 noise blocks played";
}

TEST(Trial, HotReloadRefusesBadBuildsAndKeepsTheOldOnePlaying) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("trial-live");
    const std::string module = dir + "/mod.so";
    fs::copy_file(fixture("swap_1"), module);
    test::writeText(dir + "/t.toml", "[session]\nname = \"trialtest\"\n[engine]\noutputs = []\n[[node]]\nid = \"m\"\npath = \"" +
                                         module + "\"\n");
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                          "XDG_RUNTIME_DIR=" + dir};
    test::Child rackterm(test::spawn({test::binary(), "--headless", dir + "/t.toml"}, env, dir + "/out", dir + "/err"));
    auto waitLog = [&](const std::string& text, size_t from) { return waitForText(dir + "/err", text, from); };
    ASSERT_TRUE(waitLog("live on JACK", 0)) << test::readText(dir + "/err");
    auto replace = [&](const std::string& with) { replaceModule(module, with); };
    for (const auto& [bad, why] : std::vector<std::pair<std::string, std::string>>{
             {"makes_nan", "NaN in output 1"}, {"segfaults", "crashed (SIGSEGV)"}, {"loops", "an endless loop?"}}) {
        SCOPED_TRACE(bad);
        const size_t from = test::readText(dir + "/err").size();
        replace(fixture(bad));
        EXPECT_TRUE(waitLog("the old processor keeps playing: the new build failed its trial", from))
            << test::readText(dir + "/err");
        EXPECT_NE(test::readText(dir + "/err").find(why, from), std::string::npos) << test::readText(dir + "/err");
        ASSERT_TRUE(rackterm.running()) << "the host survives";
    }
    // `add` of a module file passes the same trial.
    auto add = test::run({test::binary(), "ctl", "--session", "trialtest", "add x " + fixture("aborts")}, env, 20);
    EXPECT_NE(add.out.find("error: cannot add x: "), std::string::npos) << add.out << add.err;
    EXPECT_NE(add.out.find("failed its trial (256-frame blocks at 48000 Hz): crashed (SIGABRT) in block 1 of the silence"),
              std::string::npos)
        << add.out;
    const size_t from = test::readText(dir + "/err").size();
    replace(fixture("swap_2"));
    EXPECT_TRUE(waitLog("parameters (+", from)) << "the good build swaps in: " << test::readText(dir + "/err");
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    fs::remove_all(dir);
}

TEST(Watchdog, ASwappedBuildThatGoesBadWithinFiveSecondsIsRevertedAndASlowNodeIsBypassed) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("watchdog");
    const std::string module = dir + "/mod.so";
    fs::copy_file(fixture("segfaults"), module);  // with after_blocks = 1000000: plays on for the whole test
    test::writeText(dir + "/w.toml", "[session]\nname = \"watchdog\"\n[engine]\noutputs = []\n[[node]]\nid = \"m\"\npath = \"" +
                                         module + "\"\nparams = { after_blocks = 1000000 }\n[[node]]\nid = \"hog\"\npath = \"" +
                                         fixture("slow_later") + "\"\n");
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                          "XDG_RUNTIME_DIR=" + dir};
    test::Child rackterm(test::spawn({test::binary(), "--headless", dir + "/w.toml"}, env, dir + "/out", dir + "/err"));
    auto waitLog = [&](const std::string& text, size_t from) { return waitForText(dir + "/err", text, from); };
    ASSERT_TRUE(waitLog("live on JACK", 0)) << test::readText(dir + "/err");
    // A node that goes over the period by itself (opened with the session, in process) is bypassed and named.
    EXPECT_TRUE(waitLog("node 'hog' (slow_later) took ", 0)) << test::readText(dir + "/err");
    EXPECT_TRUE(waitLog("in 8 blocks in a row: bypassed; `bypass hog off` tries it again", 0));
    auto nodes = test::run({test::binary(), "ctl", "--session", "watchdog", "list nodes"}, env, 20);
    EXPECT_NE(nodes.out.find("bypassed"), std::string::npos) << nodes.out;
    auto replace = [&](const std::string& with) { replaceModule(module, with); };
    for (const auto& [later, why] : std::vector<std::pair<std::string, std::string>>{
             {"nan_later", "the new build output NaN/Inf"}, {"slow_later", "the new build took "}}) {
        SCOPED_TRACE(later);
        const size_t from = test::readText(dir + "/err").size();
        replace(fixture(later));  // passes the trial (32 blocks), goes bad after 200 (about 1 s)
        ASSERT_TRUE(waitLog("parameters (+", from)) << test::readText(dir + "/err");
        EXPECT_TRUE(waitLog(why, from)) << test::readText(dir + "/err");
        EXPECT_TRUE(waitLog("after the swap: reverted to the previous build (crossfaded)", from))
            << test::readText(dir + "/err");
        ASSERT_TRUE(rackterm.running());
    }
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    fs::remove_all(dir);
}

TEST(Watchdog, AnIsolatedNewBuildThatCrashesWithinFiveSecondsIsRevertedAndTheHostPlaysOn) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("watchdog-isolated");
    const std::string module = dir + "/mod.so";
    fs::copy_file(fixture("swap_1"), module);
    test::writeText(dir + "/w.toml", "[session]\nname = \"watchiso\"\n[engine]\noutputs = []\n[[node]]\nid = \"m\"\npath = \"" +
                                         module + "\"\nisolate = true\n");
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                          "XDG_RUNTIME_DIR=" + dir};
    test::Child rackterm(test::spawn({test::binary(), "--headless", dir + "/w.toml"}, env, dir + "/out", dir + "/err"));
    auto waitLog = [&](const std::string& text, size_t from) { return waitForText(dir + "/err", text, from); };
    ASSERT_TRUE(waitLog("live on JACK", 0)) << test::readText(dir + "/err");
    auto nodes = test::run({test::binary(), "ctl", "--session", "watchiso", "list nodes"}, env, 20);
    EXPECT_NE(nodes.out.find("m=swapper(active, isolated)"), std::string::npos) << nodes.out;
    // A build that passes the trial (32 blocks) and segfaults in its child after 200 blocks.
    const size_t from = test::readText(dir + "/err").size();
    replaceModule(module, fixture("crashes_later"));
    ASSERT_TRUE(waitLog("parameters (+", from)) << test::readText(dir + "/err");
    EXPECT_TRUE(waitLog("node 'm': crashed (SIGSEGV) in its block 201", from)) << test::readText(dir + "/err");
    EXPECT_TRUE(waitLog("after the swap: reverted to the previous build (crossfaded)", from))
        << test::readText(dir + "/err");
    ASSERT_TRUE(rackterm.running()) << test::readText(dir + "/err");
    nodes = test::run({test::binary(), "ctl", "--session", "watchiso", "list nodes"}, env, 20);
    EXPECT_NE(nodes.out.find("m=swapper(active, isolated"), std::string::npos) << "the previous build plays again, isolated: " << nodes.out;
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    fs::remove_all(dir);
}
