// JackRestart: a private jackd is killed (SIGKILL, SIGTERM) and started
// again under `rackterm --headless`. rackterm stays up, its socket answers,
// and when the server is back its client, ports and connections are back
// (the session's and one a test client had made), and the capture equals
// the offline render. Edits made while the server was away are heard; a
// new rate rebuilds the rack; ten restarts grow neither memory nor
// descriptors. The time from "the server accepts clients" to "sound on the
// capture client" is printed (no timed assertion: machines are shared).
#include "support/JackCapture.hpp"
#include "support/Support.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#if defined(__SANITIZE_ADDRESS__)
#define RACKTERM_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RACKTERM_TEST_ASAN 1
#endif
#endif
#ifndef RACKTERM_TEST_ASAN
#define RACKTERM_TEST_ASAN 0
#endif

using namespace rackterm;

namespace {

void sleepSeconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

/// The connections `jack_lsp -c` lists, each as "PORT -> PORT" (both directions appear).
std::vector<std::string> connectionList(const std::string& lsp) {
    std::vector<std::string> out;
    std::string port, line;
    for (size_t at = 0; at < lsp.size();) {
        const size_t end = std::min(lsp.find('\n', at), lsp.size());
        line = lsp.substr(at, end - at);
        at = end + 1;
        if (line.rfind("   ", 0) == 0) out.push_back(port + " -> " + line.substr(3));
        else port = line;
    }
    return out;
}

/// Wait (at most `seconds`) until `jack_lsp -c` on the test's server lists every connection of `wanted` ("A -> B").
bool waitForConnections(const test::JackServer& server, const std::vector<std::string>& wanted, double seconds,
                        std::string* seen) {
    const double end = test::steadySeconds() + seconds;
    while (test::steadySeconds() < end) {
        *seen = test::run({"jack_lsp", "-c"}, {server.envEntry()}, 10).out;
        const auto have = connectionList(*seen);
        bool all = true;
        for (const auto& w : wanted) all = all && std::find(have.begin(), have.end(), w) != have.end();
        if (all) return true;
        sleepSeconds(0.05);
    }
    return false;
}

size_t openDescriptors(pid_t pid) {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
    return n;
}

/// Resident anonymous memory (kB): the heap and stacks, not the JACK
/// server's shared memory, whose pages count in VmRSS as they are touched.
long residentKb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8));
    return -1;
}

}  // namespace

TEST(JackRestart, KillAndSigtermBringBackPortsConnectionsAndTheSameAudio) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("restart");
    const std::string session = dir + "/restart.toml";
    test::writeText(session, std::string("[session]\nname = \"restart\"\n[engine]\n"
                                         "inputs = [\"system:capture_1\", \"system:capture_2\"]\n"
                                         "outputs = [\"system:playback_1\", \"system:playback_2\"]\n") +
                                 test::kLoopingNodes);
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                          "XDG_RUNTIME_DIR=" + dir};
    test::Child rackterm(test::spawn({test::binary(), "--headless", session}, env, dir + "/out", dir + "/err"));
    ASSERT_GT(rackterm.pid(), 0);
    const size_t frames = 72000, settle = 24000;
    test::Sound offline;  // the session rendered offline, once
    // libjack shares one view of the server among a process's clients: a
    // client whose server died is closed before the next one opens.
    auto capture = std::make_unique<test::JackCapture>(server.name(), "recorder", frames);
    ASSERT_TRUE(capture->ok());
    // A connection another program makes: rackterm must remember it too.
    ASSERT_TRUE(capture->connectFrom("restart:out_1", 1) && capture->connectFrom("restart:out_2", 2))
        << test::readText(dir + "/err");
    sleepSeconds(0.6);  // rackterm takes a connection change once it is 250 ms old
    for (int sig : {SIGKILL, SIGTERM}) {
        SCOPED_TRACE(sig == SIGKILL ? "kill -9" : "SIGTERM");
        server.kill(sig);
        capture.reset();
        sleepSeconds(1.0);
        ASSERT_TRUE(rackterm.running()) << "rackterm survives the server: " << test::readText(dir + "/err");
        auto st = test::run({test::binary(), "ctl", "--session", "restart", "status"}, env, 20);
        EXPECT_EQ(st.exitCode, 0) << st.err;
        EXPECT_NE(st.out.find("JACK server lost - waiting for it"), std::string::npos) << st.out;
        ASSERT_TRUE(server.start(48000, 256)) << server.error();
        // A new client of the same name: rackterm connects it when its ports appear.
        const auto got = test::captureInProcess(server.name(), "recorder", frames, 2, dir + "/capture.wav");
        ASSERT_EQ(got.exitCode, 0) << got.log << test::readText(dir + "/err");
        std::string seen;
        EXPECT_TRUE(waitForConnections(server,
                                       {"system:capture_1 -> restart:in_1", "system:capture_2 -> restart:in_2",
                                        "restart:out_1 -> system:playback_1", "restart:out_2 -> system:playback_2"},
                                       10, &seen))
            << seen << test::readText(dir + "/err");
        // The capture equals the offline render of the same session.
        const size_t loop = test::loopingFrames();
        std::string error;
        if (offline.samples.empty()) offline = test::renderForCapture(session, dir, frames, &error);
        ASSERT_EQ(error, "");
        // Right after a restart the non-realtime dummy server xruns on a busy
        // machine, and a period it hands on mid-xrun may hold a partly written
        // buffer: the first half second is left out, and a stray period is allowed.
        const auto l = got.sound.channel(0), r = got.sound.channel(1);
        const auto m = test::matchCapture({l.begin() + settle, l.end()}, {r.begin() + settle, r.end()}, offline, loop, 256);
        EXPECT_LE(m.mismatched, 1u + m.compared / 50) << m.failure;
        EXPECT_GT(m.compared, (frames - settle) / 256 / 2) << "most periods carry sound";
        EXPECT_LE(m.resyncs, 1 + m.compared / 10);
        // The capture client left (its connections went with it, and rackterm
        // forgets them); another program connects a recorder for the next round.
        capture = std::make_unique<test::JackCapture>(server.name(), "recorder", 256);
        ASSERT_TRUE(capture->ok());
        ASSERT_TRUE(capture->connectFrom("restart:out_1", 1) && capture->connectFrom("restart:out_2", 2));
        sleepSeconds(0.6);  // rackterm remembers the new connections before the next loss
    }
    capture.reset();
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    const std::string err = test::readText(dir + "/err");
    EXPECT_NE(err.find("JACK server lost - waiting for it"), std::string::npos) << err;
    EXPECT_NE(err.find("JACK server back after"), std::string::npos) << err;
    std::filesystem::remove_all(dir);
}

TEST(JackRestart, EditsMadeWhileTheServerIsAwayAreHeardAndANewRateRebuildsTheRack) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("restart-edit");
    const std::string session = dir + "/edit.toml";
    test::writeText(session, R"([session]
name = "awayedit"
[engine]
outputs = []
[[node]]
id = "osc"
processor = "oscillator"
params = { frequency_hz = 440.0, level_db = -12.0 }
)");
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                          "XDG_RUNTIME_DIR=" + dir};
    test::Child rackterm(test::spawn({test::binary(), "--headless", session}, env, dir + "/out", dir + "/err"));
    ASSERT_GT(rackterm.pid(), 0);
    auto first = std::make_unique<test::JackCapture>(server.name(), "recorder", 24000, 1);
    ASSERT_TRUE(first->ok());
    ASSERT_TRUE(first->connectFrom("awayedit:out_1", 1)) << test::readText(dir + "/err");
    sleepSeconds(0.6);
    ASSERT_TRUE(first->record());
    EXPECT_NEAR(test::rmsDb(first->channel(0)), -15.05, 0.3) << "a -12 dBFS sine";
    server.kill(SIGKILL);
    first.reset();
    // The server is away: the socket answers and edits go on.
    for (const char* cmd : {"set osc.level_db -30", "set osc.frequency_hz 1000"}) {
        auto r = test::run({test::binary(), "ctl", "--session", "awayedit", cmd}, env, 20);
        EXPECT_EQ(r.exitCode, 0) << cmd << ": " << r.out << r.err;
    }
    // Back at another rate and buffer size: the rack is rebuilt for them.
    ASSERT_TRUE(server.start(44100, 512)) << server.error();
    const auto got = test::captureInProcess(server.name(), "recorder", 44100, 1, dir + "/capture.wav");
    ASSERT_EQ(got.exitCode, 0) << got.log << test::readText(dir + "/err");
    const auto heard = got.sound.channel(0);
    EXPECT_NEAR(test::rmsDb(heard), -33.05, 0.3) << "the level set while the server was away";
    EXPECT_NEAR(test::zeroCrossingFrequency(heard, 44100), 1000.0, 10.0)  // a period lost to an xrun moves it a little
        << "1 kHz at the new rate (918.75 Hz if the rack still ran at 48 kHz)";
    auto st = test::run({test::binary(), "ctl", "--session", "awayedit", "status"}, env, 20);
    EXPECT_NE(st.out.find("44100 Hz, 512 frames"), std::string::npos) << st.out;
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    EXPECT_NE(test::readText(dir + "/err").find("rack rebuilt for 44100 Hz, 512 frames"), std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST(JackRestart, TenRestartsInARowGrowNeitherMemoryNorDescriptors) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("restart-ten");
    const std::string session = dir + "/ten.toml";
    test::writeText(session, R"([session]
name = "tenrestarts"
[engine]
outputs = ["system:playback_1", "system:playback_2"]
[[node]]
id = "osc"
processor = "oscillator"
[[node]]
id = "g"
processor = "gain"
)");
    // Under AddressSanitizer, freed memory waits in a quarantine (and counts
    // as resident): without one, what is resident is what is in use.
    const char* asan = std::getenv("ASAN_OPTIONS");
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                          "XDG_RUNTIME_DIR=" + dir,
                                          std::string("ASAN_OPTIONS=") + (asan && *asan ? std::string(asan) + ":" : "") + "quarantine_size_mb=0"};
    test::Child rackterm(test::spawn({test::binary(), "--headless", session}, env, dir + "/out", dir + "/err"));
    ASSERT_GT(rackterm.pid(), 0);
    auto capture = std::make_unique<test::JackCapture>(server.name(), "recorder", 256, 1);
    ASSERT_TRUE(capture->ok());
    ASSERT_TRUE(capture->connectFrom("tenrestarts:out_1", 1)) << test::readText(dir + "/err");
    sleepSeconds(0.6);
    std::vector<double> ms;
    size_t fdsAfterFirst = 0;
    long kbAfterFirst = 0;
    for (int round = 0; round < 10; ++round) {
        SCOPED_TRACE(round);
        server.kill(round % 2 ? SIGTERM : SIGKILL);
        capture.reset();
        sleepSeconds(0.3);
        ASSERT_TRUE(rackterm.running()) << test::readText(dir + "/err");
        ASSERT_TRUE(server.start(48000, 256)) << server.error();
        const auto got = test::captureInProcess(server.name(), "recorder", 256, 1, dir + "/capture.wav");
        ASSERT_EQ(got.exitCode, 0) << "sound after restart " << round << ": " << got.log << test::readText(dir + "/err")
                                   << "jackd: " << server.log();
        ms.push_back((got.firstSound - server.readyAt()) * 1000.0);
        capture = std::make_unique<test::JackCapture>(server.name(), "recorder", 256, 1);
        ASSERT_TRUE(capture->ok());
        ASSERT_TRUE(capture->connectFrom("tenrestarts:out_1", 1));
        sleepSeconds(0.4);  // rackterm remembers the connection (250 ms) before the next loss
        if (round == 1) {  // the first restart may set up what later ones reuse
            fdsAfterFirst = openDescriptors(rackterm.pid());
            kbAfterFirst = residentKb(rackterm.pid());
        }
    }
    capture.reset();
    const size_t fds = openDescriptors(rackterm.pid());
    const long kb = residentKb(rackterm.pid());
    EXPECT_LE(fds, fdsAfterFirst) << "open descriptors after the 2nd and the 10th restart";
#if RACKTERM_TEST_ASAN
    // AddressSanitizer's allocator keeps freed chunks per size class: its
    // resident memory is no measure of a leak. LeakSanitizer checks at exit.
    (void)kb;
#else
    EXPECT_LT(kb - kbAfterFirst, 2048) << "resident memory grew from " << kbAfterFirst << " kB to " << kb << " kB";
#endif
    std::sort(ms.begin(), ms.end());
    std::printf("[ figure ] server accepts clients -> sound, 10 restarts: median %.0f ms, min %.0f, max %.0f; "
                "descriptors %zu -> %zu, resident anonymous memory %ld -> %ld kB (2nd -> 10th restart)\n",
                (ms[4] + ms[5]) / 2, ms.front(), ms.back(), fdsAfterFirst, fds, kbAfterFirst, kb);
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    std::filesystem::remove_all(dir);
}

TEST(JackRestart, ExitOnServerLossKeepsTheOldBehaviour) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("restart-exit");
    const std::string session = dir + "/exit.toml";
    test::writeText(session, "[session]\nname = \"exitonloss\"\n[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
    test::Child rackterm(test::spawn({test::binary(), "--exit-on-server-loss", "--headless", session},
                                     {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(),
                                      "XDG_RUNTIME_DIR=" + dir},
                                     dir + "/out", dir + "/err"));
    ASSERT_GT(rackterm.pid(), 0);
    for (int i = 0; i < 200 && test::readText(dir + "/err").find("live on JACK") == std::string::npos; ++i) sleepSeconds(0.05);
    server.kill(SIGKILL);
    int status = 0;
    for (int i = 0; i < 200 && rackterm.running(&status); ++i) sleepSeconds(0.05);
    ASSERT_FALSE(rackterm.running()) << test::readText(dir + "/err");
    ASSERT_TRUE(WIFEXITED(status)) << test::readText(dir + "/err");
    EXPECT_EQ(WEXITSTATUS(status), 3);
    EXPECT_NE(test::readText(dir + "/err").find("--exit-on-server-loss"), std::string::npos);
    std::filesystem::remove_all(dir);
}
