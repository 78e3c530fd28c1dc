// jackd2's server registry (8 slots; a server killed with SIGKILL keeps its
// slot): read from a real jackd, parsed from a hand-made segment, and filled
// with dead servers in this test's private /dev/shm, where both the test
// harness and rackterm must say what is wrong instead of timing out.
#include "support/Support.hpp"

#include <rackterm/engine/JackRegistry.hpp>

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

/// A registry segment laid out as jackd2 1.9.21 writes it, with `servers` (pid, name).
std::string segment(const std::vector<std::pair<int32_t, std::string>>& servers) {
    const uint32_t stride = 264, header = 24 + 8 * stride;
    std::string b(70744, '\0');
    const uint32_t fields[] = {0x4a41434b, 0, 1, static_cast<uint32_t>(b.size()), header, 268};
    std::memcpy(b.data(), &fields[0], 4);
    std::memcpy(b.data() + 8, &fields[2], 4);
    std::memcpy(b.data() + 12, &fields[3], 12);
    for (size_t i = 0; i < servers.size(); ++i) {
        std::memcpy(b.data() + 24 + i * stride, &servers[i].first, 4);
        std::memcpy(b.data() + 28 + i * stride, servers[i].second.data(), servers[i].second.size());
    }
    return b;
}

}  // namespace

TEST(JackRegistry, ReadsTheRegistryOfARealServer) {
    test::JackServer server;
    ASSERT_TRUE(server.ready()) << server.error();
    auto reg = engine::readJackRegistry();
    ASSERT_TRUE(reg) << "jackd2's registry was not found or not understood at " << engine::kJackRegistryPath;
    EXPECT_EQ(reg->slots, 8u);
    bool found = false;
    for (const auto& s : reg->servers)
        if (s.name == server.name()) {
            found = true;
            EXPECT_EQ(s.pid, server.pid());
            EXPECT_TRUE(s.running);
            EXPECT_EQ(s.uid, static_cast<int>(::geteuid()));
        }
    EXPECT_TRUE(found) << "server " << server.name() << " not in the registry";
}

TEST(JackRegistry, AFullRegistryNamesItsDeadServersAndTheRemedy) {
    const std::string dir = test::tempDir("registry");
    const int32_t dead = test::deadPid();
    std::vector<std::pair<int32_t, std::string>> slots = {{::getpid(), "jack-0:mine:"}};
    for (int i = 1; i < 8; ++i) slots.push_back({dead, "jack-0:gone" + std::to_string(i) + ":"});
    test::writeText(dir + "/full", segment(slots));
    auto full = engine::readJackRegistry(dir + "/full");
    ASSERT_TRUE(full);
    EXPECT_EQ(full->servers.size(), 8u);
    EXPECT_EQ(full->dead(), 7u);
    const std::string problem = full->problem();
    EXPECT_NE(problem.find("is full (8 of 8 slots; running: mine (pid " + std::to_string(::getpid()) + "); 7 held by servers"),
              std::string::npos)
        << problem;
    EXPECT_NE(problem.find("gone1 (pid " + std::to_string(dead) + ")"), std::string::npos) << problem;
    EXPECT_NE(problem.find("jackd -n NAME -d dummy"), std::string::npos) << problem;
    EXPECT_EQ(problem.find('\n'), std::string::npos);
    slots.pop_back();
    test::writeText(dir + "/room", segment(slots));
    auto room = engine::readJackRegistry(dir + "/room");
    ASSERT_TRUE(room);
    EXPECT_EQ(room->free(), 1u);
    EXPECT_EQ(room->problem(), "") << "a free slot is no problem";
    test::writeText(dir + "/junk", std::string(5000, 'j'));
    EXPECT_FALSE(engine::readJackRegistry(dir + "/junk")) << "not jackd2's layout: not read";
    EXPECT_FALSE(engine::readJackRegistry(dir + "/missing"));
    fs::remove_all(dir);
}

TEST(JackRegistry, ServersKilledWithSigkillFillItAndBothHarnessAndRacktermSaySo) {
    std::string why;
    if (!test::privateJackRegistry(&why))
        GTEST_SKIP() << "filling JACK's registry is done only in a private /dev/shm, and this kernel gave none: " << why;
    for (int i = 0; i < 8; ++i) {  // eight servers die without unregistering
        test::JackServer victim(48000, 256, "victim_" + std::to_string(i));
        ASSERT_TRUE(victim.ready()) << victim.error();
        victim.kill(SIGKILL);
    }
    auto reg = engine::readJackRegistry();
    ASSERT_TRUE(reg);
    EXPECT_EQ(reg->dead(), 8u);
    // The harness: jackd's own reason and the registry's state, in one line, at once.
    test::JackServer server;
    EXPECT_FALSE(server.ready());
    EXPECT_NE(server.error().find("Too many servers already active"), std::string::npos) << server.error();
    EXPECT_NE(server.error().find("is full (8 of 8 slots"), std::string::npos) << server.error();
    EXPECT_EQ(server.error().find('\n'), std::string::npos) << server.error();
    std::printf("harness: %s\n", server.error().c_str());
    // rackterm: not only "no JACK server is running".
    auto r = test::run({test::binary(), "--headless", test::sourceDir() + "/examples/demo.toml"},
                       {"JACK_DEFAULT_SERVER=rackterm_none", "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, 20);
    EXPECT_EQ(r.exitCode, 3) << r.err;
    EXPECT_NE(r.err.find("no JACK server is running (server 'rackterm_none'), and none can start: JACK's server registry"),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("victim_3"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    std::printf("rackterm: %s", r.err.c_str());
    // Leave this process's private /dev/shm empty for whatever runs next in it.
    for (const auto& e : fs::directory_iterator("/dev/shm")) fs::remove_all(e.path());
}
