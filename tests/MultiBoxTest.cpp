// MultiBox: two JACK servers on this machine joined by netjack2 (JACK's own
// network engine): a master (`jackd -d dummy` + `jack_load netmanager`) and
// a slave (`jackd -d net -a 127.0.0.1`, since netjack2's multicast discovery
// does not loop back). rackterm runs headless on the slave; a capture client
// on the master records its output through the slave's `from_slave` ports.
// The recording is not silent and equals the offline render of the session.
#include "support/JackCapture.hpp"
#include "support/Support.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace rackterm;

namespace {

void sleepSeconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

/// A UDP port nothing listens on now (the kernel picks it).
int freeUdpPort() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

}  // namespace

TEST(MultiBox, RacktermOnANetjack2SlaveIsHeardOnTheMaster) {
    test::JackServer master(48000, 256);
    ASSERT_TRUE(master.ready()) << master.error();
    const std::string dir = test::tempDir("multibox");
    const int port = freeUdpPort();
    ASSERT_GT(port, 0);
    auto load = test::run({"jack_load", "netmanager", "netmanager", "-i", "-p " + std::to_string(port)},
                          {master.envEntry()}, 20);
    ASSERT_EQ(load.exitCode, 0) << "jack_load netmanager: " << load.out << load.err << master.log();
    const std::string slaveServer = master.name() + "_slave", slaveClient = "box2";
    test::Child slave(test::spawn({"jackd", "--no-realtime", "-n", slaveServer, "-d", "net", "-a", "127.0.0.1", "-p",
                                   std::to_string(port), "-n", slaveClient, "-C", "2", "-P", "2", "-l", "2"},
                                  {"JACK_NO_AUDIO_RESERVATION=1"}, dir + "/slave.out", dir + "/slave.err"));
    bool joined = false;
    for (int i = 0; i < 200 && !joined; ++i) {
        joined = test::run({"jack_lsp"}, {master.envEntry()}, 10).out.find(slaveClient + ":from_slave_1") != std::string::npos;
        if (!joined) sleepSeconds(0.05);
    }
    ASSERT_TRUE(joined) << "the slave never joined: " << test::readText(dir + "/slave.err") << master.log();

    const std::string session = dir + "/box2.toml";
    test::writeText(session, std::string("[session]\nname = \"onbox2\"\n[engine]\n"
                                         "outputs = [\"system:playback_1\", \"system:playback_2\"]\n") +
                                 test::kLoopingNodes);
    const std::vector<std::string> env = {"JACK_DEFAULT_SERVER=" + slaveServer,
                                          "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(), "XDG_RUNTIME_DIR=" + dir};
    test::Child rackterm(test::spawn({test::binary(), "--headless", session}, env, dir + "/out", dir + "/err"));
    for (int i = 0; i < 200 && test::readText(dir + "/err").find("live on JACK") == std::string::npos; ++i) sleepSeconds(0.05);
    ASSERT_NE(test::readText(dir + "/err").find("live on JACK"), std::string::npos) << test::readText(dir + "/err");

    // On the master: what the slave box plays, through its from_slave ports.
    const size_t frames = 72000, settle = 24000;
    const auto got = test::captureInProcess(master.name(), "cap", frames, 2, dir + "/capture.wav", 20,
                                            {slaveClient + ":from_slave_1", slaveClient + ":from_slave_2"});
    ASSERT_EQ(got.exitCode, 0) << got.log << test::readText(dir + "/err") << test::readText(dir + "/slave.err");
    const auto l = got.sound.channel(0), r = got.sound.channel(1);
    EXPECT_GT(test::rmsDb({l.begin() + settle, l.end()}), -60.0) << "not silent";

    std::string error;
    const auto offline = test::renderForCapture(session, dir, frames, &error);
    ASSERT_EQ(error, "");
    const size_t loop = test::loopingFrames();
    const auto m = test::matchCapture({l.begin() + settle, l.end()}, {r.begin() + settle, r.end()}, offline, loop, 256);
    // netjack2 drops a period whose UDP packets come after its deadline (a
    // loaded machine): such periods are counted, the rest must be exact.
    EXPECT_LE(m.mismatched, 1u + m.compared / 10) << m.failure;
    EXPECT_GT(m.compared, (frames - settle) / 256 / 2) << "most periods carry sound";
    std::string latency = test::run({"jack_lsp", "-l", slaveClient + ":from_slave_1"}, {master.envEntry()}, 10).out;
    const size_t at = latency.find("capture latency");
    latency = at == std::string::npos ? "?" : latency.substr(at, latency.find('\n', at) - at);
    std::printf("[ figure ] netjack2 with -l 2 at 256 frames, the master's from_slave_1: %s\n", latency.c_str());
    EXPECT_NE(latency.find("[ 512 512 ]"), std::string::npos) << "two periods of network latency: " << latency;

    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    slave.stop(SIGTERM);
    // Unloaded first, a netmanager lets its server stop at once (with a slave attached, SIGTERM takes seconds).
    test::run({"jack_unload", "netmanager"}, {master.envEntry()}, 10);
    std::filesystem::remove_all(dir);
}
