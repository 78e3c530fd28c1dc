// kill -9 during save: a live headless session (private jackd) saves its
// 64-node session file over and over while the test kills it at a random
// moment, 200 times. After each kill the session file and its backup must
// load and hold one complete version, and the next session's first save
// must leave no temporary file of the killed one behind.
#include "support/Support.hpp"

#include <rackterm/config/Session.hpp>

#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

constexpr int kTrials = 200;
constexpr int kNodes = 64;

/// Temporary files in `dir` that a process other than `livePid` left.
std::vector<std::string> foreignTemporaries(const std::string& dir, pid_t livePid) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        const size_t at = name.rfind(".tmp-");
        if (at != std::string::npos && name.substr(at + 5) != std::to_string(livePid)) out.push_back(name);
    }
    return out;
}

/// Empty when `path` holds a whole session as this test writes them, else what is wrong.
std::string damage(const std::string& path, const std::set<double>& written) {
    auto s = config::loadSession(path);
    if (!s) return s.error();
    if (s->nodes.size() != kNodes) return path + ": " + std::to_string(s->nodes.size()) + " nodes";
    for (const auto& n : s->nodes)
        for (const auto& p : n.params)
            if (!written.count(p.value)) return path + ": value " + std::to_string(p.value) + " was never written";
    return {};
}

}  // namespace

TEST(SaveCrash, KillDuringSaveNeverDamagesTheSessionOrItsBackup) {
    test::JackServer server;
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("savecrash");
    const std::string session = dir + "/s.toml";
    std::string text = "# a hand-written session\n[session]\nname = \"crash\"\n[engine]\noutputs = []\n";
    for (int i = 0; i < kNodes; ++i)
        text += "[[node]]\nid = \"g" + std::to_string(i) + "\"\nprocessor = \"gain\"\nparams = { gain_db = -1.0 }\n";
    test::writeText(session, text);
    std::set<double> written = {-1.0};
    std::mt19937 rng(20261121);
    std::string commands;  // every save replaces the whole file; values change between saves
    for (int k = 0; k < 400; ++k) {
        const double v = -1.0 - (k % 40) * 0.5;
        written.insert(v);
        commands += "set g" + std::to_string(k % kNodes) + ".gain_db " + std::to_string(v) + "\nsave\n";
    }
    int killedMidWay = 0, leftovers = 0;
    pid_t previous = -1;
    for (int trial = 0; trial < kTrials; ++trial) {
        int in = -1;
        const pid_t pid = test::spawn({test::binary(), "--headless", session},
                                      {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, dir + "/out",
                                      dir + "/err", &in);
        ASSERT_GT(pid, 0);
        ASSERT_EQ(::write(in, commands.data(), commands.size()), static_cast<ssize_t>(commands.size()));
        // The first save's reply: from here on the session saves again and again.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (test::readText(dir + "/out").find("ok saved") == std::string::npos) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << test::readText(dir + "/err");
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        // That first save cleaned what the killed process before it left.
        const auto stale = foreignTemporaries(dir, pid);
        EXPECT_TRUE(stale.empty()) << "trial " << trial << ": left by pid " << previous << ": " << stale[0];
        std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 30000)(rng)));
        ::kill(pid, SIGKILL);
        EXPECT_EQ(test::stop(pid, 0), -1) << "it was running when killed";
        ::close(in);
        previous = pid;
        const std::string out = test::readText(dir + "/out");
        size_t saves = 0;
        for (size_t p = out.find("ok saved"); p != std::string::npos; p = out.find("ok saved", p + 1)) ++saves;
        killedMidWay += saves < 400;
        leftovers += !foreignTemporaries(dir, -1).empty();
        const std::string main = damage(session, written);
        ASSERT_TRUE(main.empty()) << "trial " << trial << ": damaged session file: " << main;
        if (fs::exists(session + "~")) {
            const std::string backup = damage(session + "~", written);
            ASSERT_TRUE(backup.empty()) << "trial " << trial << ": damaged backup: " << backup;
        }
    }
    std::printf("%d kills during a run of saves (%d left a temporary file, each removed by the next save); "
                "0 damaged session files, 0 damaged backups\n",
                killedMidWay, leftovers);
    EXPECT_GT(killedMidWay, kTrials / 2) << "most kills must land while saves are still running";
    fs::remove_all(dir);
}
