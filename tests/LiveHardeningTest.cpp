// Hardening of a live session (private jackd, `rackterm --headless` fed on
// stdin): quitting under a busy audio callback and while recording never
// aborts; bad targets (a FIFO, a Unix socket, a character device made with
// mknod in a temp folder when root, /proc/self/mem, a session over the node limit, a
// truncated processor descriptor) get one error line each, at once, and the
// session goes on; repeated NaN/Inf warnings are rate-limited.
#include "support/Support.hpp"

#include <rackterm/common/Limits.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return test::fixtureDir() + "/lib" + name + ".so"; }

/// One headless rackterm on the test's server, commands on its stdin.
class Headless {
public:
    Headless(const test::JackServer& server, const std::string& dir, const std::string& sessionText) : dir_(dir) {
        test::writeText(dir + "/s.toml", sessionText);
        pid_ = test::spawn({test::binary(), "--headless", dir + "/s.toml"},
                           {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, dir + "/out", dir + "/err",
                           &stdin_);
    }
    ~Headless() {
        if (stdin_ >= 0) ::close(stdin_);
        if (pid_ > 0) test::stop(pid_, SIGKILL);
    }
    /// Wait until the session runs on JACK.
    bool live(double seconds = 15) { return waitFor("live on JACK server", seconds); }
    bool waitFor(const std::string& text, double seconds) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < end) {
            if (err().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    /// Send one command and return its reply line ("" when none came within `seconds`).
    std::string ask(const std::string& command, double seconds = 5) {
        const size_t before = lines().size();
        const std::string line = command + "\n";
        if (::write(stdin_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return {};
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < end) {
            const auto now = lines();
            if (now.size() > before) return now[before];
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return {};
    }
    /// Send `command` and wait for the process to end; its exit status (-1 signal, -2 time-out).
    int finish(const std::string& command, double seconds = 20) {
        const std::string line = command + "\n";
        [[maybe_unused]] ssize_t n = ::write(stdin_, line.data(), line.size());
        const int code = test::stop(pid_, 0, seconds);
        pid_ = -1;
        return code;
    }
    int terminate() {
        const int code = test::stop(pid_, SIGTERM);
        pid_ = -1;
        return code;
    }
    std::string err() const { return test::readText(dir_ + "/err"); }
    std::vector<std::string> lines() const {
        std::vector<std::string> out;
        std::istringstream in(test::readText(dir_ + "/out"));
        for (std::string l; std::getline(in, l);) out.push_back(l);
        return out;
    }

private:
    std::string dir_;
    pid_t pid_ = -1;
    int stdin_ = -1;
};

class LiveHardening : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(server.ready()) << server.error();
        dir = test::tempDir("livehard");
    }
    void TearDown() override { fs::remove_all(dir); }
    /// Two processors that each spin for 90 % of the block: the callback is always busy.
    std::string busySession() const {
        return "[session]\nname = \"busy\"\n[engine]\noutputs = []\n"
               "[[node]]\nid = \"slow\"\npath = \"" + fixture("fixture_slow") + "\"\nparams = { load = 0.9 }\n"
               "[[node]]\nid = \"slower\"\npath = \"" + fixture("fixture_slow") + "\"\nparams = { load = 0.9 }\n";
    }
    test::JackServer server;
    std::string dir;
};

mode_t kind(const std::string& p) {
    struct stat st {};
    ::lstat(p.c_str(), &st);
    return st.st_mode & S_IFMT;
}

}  // namespace

TEST_F(LiveHardening, QuitUnderABusyAudioCallbackNeverAborts) {
    for (int run = 0; run < 5; ++run) {  // 0.1 aborted (exit 134) in every run of this
        const std::string d = dir + "/" + std::to_string(run);
        fs::create_directories(d);
        Headless h(server, d, busySession());
        ASSERT_TRUE(h.live()) << h.err();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_EQ(h.finish("quit"), 0) << "run " << run << ": " << h.err();
        EXPECT_EQ(h.err().find("terminate called"), std::string::npos) << h.err();
    }
}

TEST_F(LiveHardening, QuitWhileRecordingKeepsTheRecording) {
    Headless h(server, dir, busySession());
    ASSERT_TRUE(h.live()) << h.err();
    EXPECT_EQ(h.ask("record start " + dir + "/take.wav"), "ok recording to " + dir + "/take.wav");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(h.finish("quit"), 0) << h.err();
    ASSERT_TRUE(fs::exists(dir + "/take.wav")) << "the recording is finished and kept at quit";
    const test::Sound take = test::readSound(dir + "/take.wav");
    EXPECT_EQ(take.channels, 2);
    EXPECT_GT(take.frames(), 4800u);
    for (const auto& e : fs::directory_iterator(dir))
        EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << "left behind: " << e.path();
}

TEST_F(LiveHardening, BadTargetsGetOneLineAtOnceAndTheSessionGoesOn) {
    Headless h(server, dir, "[session]\nname = \"targets\"\n[engine]\noutputs = []\n[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
    ASSERT_TRUE(h.live()) << h.err();
    const std::string fifo = dir + "/fifo.toml", sock = dir + "/sock.toml";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const int sfd = test::bindUnixSocket(sock);
    ASSERT_GE(sfd, 0);
    std::vector<std::string> targets = {fifo, sock};
    if (test::makeMemoryDevice(dir + "/null.wav", 3)) targets.push_back(dir + "/null.wav");    // like /dev/null, made here
    if (test::makeMemoryDevice(dir + "/zero.toml", 5)) targets.push_back(dir + "/zero.toml");  // like /dev/zero
    ASSERT_EQ(h.ask("set g.gain_db -3"), "ok g.gain_db = -3.0 dB");
    for (const auto& t : targets) {
        const mode_t before = kind(t);
        const std::string save = h.ask("save " + t);
        EXPECT_EQ(save.rfind("error: cannot save: " + t + ": is ", 0), 0u) << save;
        EXPECT_NE(save.find("not a regular file"), std::string::npos) << save;
        const std::string rec = h.ask("record start " + t);
        EXPECT_EQ(rec.rfind("error: ", 0), 0u) << rec;
        const std::string load = h.ask("load " + t + " !");
        EXPECT_NE(load.find("not a regular file; the session file must be a regular file"), std::string::npos) << load;
        EXPECT_EQ(kind(t), before) << t << " was replaced";
    }
    const std::string wavFifo = dir + "/take.wav";
    ASSERT_EQ(::mkfifo(wavFifo.c_str(), 0600), 0);
    EXPECT_NE(h.ask("record start " + wavFifo).find("is a FIFO, not a regular file"), std::string::npos);
    EXPECT_EQ(kind(wavFifo), static_cast<mode_t>(S_IFIFO));
    EXPECT_NE(h.ask("load /proc/self/mem !").find("/proc/self/mem: cannot read the session file ("), std::string::npos)
        << "0.1 loaded it as an empty session";
    std::string big;
    const size_t tooMany = kMaxNodes + 100;
    for (size_t i = 0; i < tooMany; ++i) big += "[[node]]\nid = \"n" + std::to_string(i) + "\"\nprocessor = \"gain\"\n";
    test::writeText(dir + "/big.toml", big);
    EXPECT_NE(h.ask("load " + dir + "/big.toml !").find(nodeLimitMessage(tooMany)), std::string::npos);
    const std::string add = h.ask("add x " + fixture("fixture_small_struct"));
    EXPECT_NE(add.find("descriptor is 16 bytes, ABI v2 needs"), std::string::npos) << add << h.err();
    EXPECT_EQ(h.ask("list nodes"), "ok g=gain(active)") << "the session is as it was";
    EXPECT_EQ(h.ask("get g.gain_db"), "ok g.gain_db = -3.0 dB");
    EXPECT_EQ(h.ask("wait applied").rfind("ok applied", 0), 0u);
    EXPECT_EQ(h.terminate(), 0) << h.err();
    ::close(sfd);
}

TEST_F(LiveHardening, RepeatedNaNWarningsAreRateLimited) {
    Headless h(server, dir, "[session]\nname = \"nan\"\n[engine]\noutputs = []\n[[node]]\nid = \"bad\"\npath = \"" +
                                fixture("fixture_makes_nan") + "\"\n");
    ASSERT_TRUE(h.live()) << h.err();
    std::this_thread::sleep_for(std::chrono::milliseconds(6500));  // ~1200 blocks, every one muted
    EXPECT_EQ(h.terminate(), 0);
    const std::string err = h.err();
    size_t lines = 0;
    for (size_t p = err.find("NaN/Inf"); p != std::string::npos; p = err.find("NaN/Inf", p + 1)) ++lines;
    EXPECT_GE(lines, 1u) << err;
    EXPECT_LE(lines, 3u) << "the first at once, then a count every 5 s:\n" << err;
    EXPECT_NE(err.find("node 'bad' produced NaN/Inf: its output is muted and it is reset"), std::string::npos) << err;
}
