// The control socket of a live rackterm (private jackd, private
// XDG_RUNTIME_DIR): permissions, `rackterm ctl`, two clients at once, and a
// client sending 1 MiB of garbage without reading, which must not stall the
// other client, the console loop or the audio.
#include "support/Support.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

int connectTo(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// Read one reply line within `seconds`; "" on time-out.
std::string readLine(int fd, double seconds = 5) {
    std::string line;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        char c;
        if (::recv(fd, &c, 1, 0) != 1) break;
        if (c == '\n') return line;
        line += c;
    }
    return {};
}

class Socket : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(server.ready()) << server.error();
        dir = test::tempDir("sock");
        runtime = dir + "/run";
        fs::create_directories(runtime);
        ::chmod(runtime.c_str(), 0700);
        test::writeText(dir + "/s.toml", "[session]\nname = \"socktest\"\n[engine]\noutputs = []\n[[node]]\nid = \"osc\"\n"
                                         "processor = \"oscillator\"\n[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
        env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(), "XDG_RUNTIME_DIR=" + runtime};
        pid = test::spawn({test::binary(), "--headless", dir + "/s.toml"}, env, dir + "/out", dir + "/err");
        path = runtime + "/rackterm/socktest.sock";
        for (int i = 0; i < 100 && !fs::exists(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ASSERT_TRUE(fs::exists(path)) << test::readText(dir + "/err");
    }
    void TearDown() override {
        EXPECT_EQ(test::stop(pid, SIGTERM), 0) << test::readText(dir + "/err");
        EXPECT_FALSE(fs::exists(path)) << "the socket is removed at exit";
        fs::remove_all(dir);
    }
    test::RunResult ctl(std::vector<std::string> args) {
        args.insert(args.begin(), {test::binary(), "ctl"});
        return test::run(args, env, 20);
    }
    test::JackServer server;
    std::string dir, runtime, path;
    std::vector<std::string> env;
    pid_t pid = -1;
};

}  // namespace

TEST_F(Socket, PermissionsAreOwnerOnly) {
    struct stat d {}, s {};
    ASSERT_EQ(::stat((runtime + "/rackterm").c_str(), &d), 0);
    ASSERT_EQ(::stat(path.c_str(), &s), 0);
    EXPECT_EQ(d.st_mode & 0777, 0700u);
    EXPECT_EQ(s.st_mode & 0777, 0600u);
    EXPECT_TRUE(S_ISSOCK(s.st_mode));
}

TEST_F(Socket, CtlSendsOneCommandAndPrintsTheReply) {
    auto ok = ctl({"--session", "socktest", "set g.gain_db -6"});
    EXPECT_EQ(ok.exitCode, 0) << ok.err;
    EXPECT_EQ(ok.out, "ok g.gain_db = -6.0 dB\n");
    auto only = ctl({"get g.gain_db"});  // the only running session is picked
    EXPECT_EQ(only.exitCode, 0) << only.err;
    EXPECT_EQ(only.out, "ok g.gain_db = -6.0 dB\n");
    auto bad = ctl({"--session", "socktest", "sett g.gain_db 1"});
    EXPECT_EQ(bad.exitCode, 1);
    EXPECT_EQ(bad.out, "error: unknown command 'sett' (did you mean 'set'?); `help` lists them\n");
    auto none = ctl({"--session", "nosuch", "status"});
    EXPECT_EQ(none.exitCode, 3);
    EXPECT_NE(none.err.find("no rackterm answers"), std::string::npos) << none.err;
}

TEST_F(Socket, TwoClientsAtOnce) {
    const int a = connectTo(path), b = connectTo(path);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    const std::string qa = "set g.gain_db -3\nget g.gain_db\n", qb = "list nodes\nstatus\n";
    ASSERT_EQ(::send(a, qa.data(), qa.size(), 0), static_cast<ssize_t>(qa.size()));
    ASSERT_EQ(::send(b, qb.data(), qb.size(), 0), static_cast<ssize_t>(qb.size()));
    EXPECT_EQ(readLine(b), "ok osc=oscillator(active) g=gain(active)");
    EXPECT_EQ(readLine(a), "ok g.gain_db = -3.0 dB");
    EXPECT_EQ(readLine(a), "ok g.gain_db = -3.0 dB");
    EXPECT_EQ(readLine(b).rfind("ok session socktest: 2 nodes", 0), 0u);
    ::close(a);
    ::close(b);
}

TEST_F(Socket, GarbageAndAStalledClientStallNothing) {
    const int junk = connectTo(path);
    ASSERT_GE(junk, 0);
    std::mt19937 rng(7);
    std::string garbage(1 << 20, '\0');
    for (auto& c : garbage) c = static_cast<char>(rng() % 7 == 0 ? '\n' : rng() % 256);
    garbage.replace(1000, 20000, std::string(20000, 'x'));  // and one over-long line
    std::thread sender([&] {  // it sends everything and never reads a reply
        size_t sent = 0;
        while (sent < garbage.size()) {
            const ssize_t n = ::send(junk, garbage.data() + sent, garbage.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) break;  // dropped by rackterm: fine
            sent += static_cast<size_t>(n);
        }
    });
    const int good = connectTo(path);
    ASSERT_GE(good, 0);
    for (int i = 0; i < 20; ++i) {
        const std::string q = "set g.gain_db " + std::to_string(-i) + "\nwait applied\n";
        ASSERT_EQ(::send(good, q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
        EXPECT_EQ(readLine(good), "ok g.gain_db = " + std::to_string(-i) + ".0 dB");
        EXPECT_EQ(readLine(good).rfind("ok applied", 0), 0u) << "the audio thread kept applying changes";
    }
    ::shutdown(junk, SHUT_RDWR);
    sender.join();
    ::close(junk);
    ::close(good);
    auto status = ctl({"status"});
    EXPECT_EQ(status.exitCode, 0) << status.err;
}

TEST_F(Socket, DeadSocketsAreSkippedAndRemoved) {
    // Sockets left by rackterms that were killed: bound, never listening now.
    for (const std::string name : {"ghost", "other_ghost"}) {
        const int fd = test::bindUnixSocket(runtime + "/rackterm/" + name + ".sock");
        ASSERT_GE(fd, 0);
        ::close(fd);
    }
    auto only = ctl({"get g.gain_db"});  // 0.1: "several sessions run: ghost other_ghost socktest"
    EXPECT_EQ(only.exitCode, 0) << only.err;
    EXPECT_EQ(only.out, "ok g.gain_db = 0.0 dB\n");
    EXPECT_FALSE(fs::exists(runtime + "/rackterm/ghost.sock")) << "a dead socket is removed";
    EXPECT_FALSE(fs::exists(runtime + "/rackterm/other_ghost.sock"));
    EXPECT_TRUE(fs::exists(path)) << "the live one stays";
}

TEST_F(Socket, RepliesAreOneLineWhateverTheClientSends) {
    const int fd = connectTo(path);
    ASSERT_GE(fd, 0);
    static const char kRaw[] = "se\0t\x7f g.gain_db 1\nlist nodes\n";
    const std::string q(kRaw, sizeof kRaw - 1);
    ASSERT_EQ(::send(fd, q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
    const std::string reply = readLine(fd);
    EXPECT_EQ(reply.rfind("error: unknown command 'se\\x00t\\x7f'", 0), 0u) << reply;
    EXPECT_EQ(reply.find('\0'), std::string::npos) << "no raw NUL in a reply";
    EXPECT_EQ(readLine(fd), "ok osc=oscillator(active) g=gain(active)") << "the next line is the next reply";
    ::close(fd);
}
