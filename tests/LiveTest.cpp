// Live: a private jackd (dummy driver) started by this test, `rackterm
// --headless` on it, and a second JACK client of the test's own capturing
// rackterm's outputs. The capture is not silent and equals the offline
// render of the same session after alignment. The test stops its server.
#include "support/JackCapture.hpp"
#include "support/Support.hpp"

#include <jack/jack.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

using namespace rackterm;

TEST(Live, HeadlessOnJackMatchesOfflineRender) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("live");
    const std::string session = dir + "/live.toml";
    test::writeText(session, std::string("[session]\nname = \"livetest\"\n[engine]\noutputs = []\n") + test::kLoopingNodes);
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()};
    pid_t pid = test::spawn({test::binary(), "--headless", session}, env, dir + "/out", dir + "/err");
    ASSERT_GT(pid, 0);

    const size_t frames = 48000 * 2;
    test::JackCapture rec(server.name(), "recorder", frames);
    ASSERT_TRUE(rec.ok());
    ASSERT_TRUE(rec.connectFrom("livetest:out_1", 1) && rec.connectFrom("livetest:out_2", 2)) << test::readText(dir + "/err");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE(rec.record()) << "captured the whole window";
    EXPECT_EQ(test::stop(pid, SIGTERM), 0) << test::readText(dir + "/err");

    double energy = 0;
    for (float v : rec.channel(0)) energy += static_cast<double>(v) * v;
    ASSERT_GT(energy, 1.0) << "the capture is not silent";

    // The same session offline, long enough for any alignment in one loop of the file.
    const size_t period = test::loopingFrames();
    std::string error;
    const auto offline = test::renderForCapture(session, dir, frames, &error);
    ASSERT_EQ(error, "");
    // Compare period by period (JACK moves whole periods). Each period must
    // equal the offline render exactly at its offset within the file's loop;
    // consecutive periods follow on, except where a cycle was dropped under
    // load (a resync, counted and bounded).
    const auto m = test::matchCapture(rec.channel(0), rec.channel(1), offline, period, 256);
    ASSERT_EQ(m.failure, "");
    EXPECT_GT(m.compared, frames / 256 / 2) << "most periods carry sound";
    EXPECT_LE(m.resyncs, 1 + m.compared / 10) << "too many discontinuities: " << m.resyncs << " in " << m.compared;
    std::filesystem::remove_all(dir);
}

namespace {

/// A JACK client with `channels` outputs (a constant k + 1 on out_k+1) and
/// as many inputs, keeping the last value each input received.
struct Prober {
    jack_client_t* client = nullptr;
    std::vector<jack_port_t*> in, out;
    std::vector<std::atomic<float>> last;
    explicit Prober(size_t channels) : last(channels) {}
    static int process(jack_nframes_t n, void* arg) {
        auto* p = static_cast<Prober*>(arg);
        for (size_t c = 0; c < p->out.size(); ++c) {
            auto* o = static_cast<float*>(jack_port_get_buffer(p->out[c], n));
            std::fill(o, o + n, static_cast<float>(c + 1) * 0.1f);
            p->last[c].store(static_cast<const float*>(jack_port_get_buffer(p->in[c], n))[n - 1]);
        }
        return 0;
    }
};

}  // namespace

TEST(Live, TheJackPortsFollowTheSessionForOneTwoAndSixChannelsAndCarryTheGraphsLatency) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("ports");
    for (const uint32_t channels : {1u, 2u, 6u}) {
        SCOPED_TRACE(channels);
        const std::string name = "ports" + std::to_string(channels);
        const std::string session = dir + "/" + name + ".toml";
        // input -> late (a 100-frame delay reporting 100, on channels 1 and 2) -> output, the rest straight through.
        std::string text = "[session]\nname = \"" + name + "\"\n[engine]\ninput_ports = " + std::to_string(channels) +
                           "\noutput_ports = " + std::to_string(channels) + "\n[[node]]\nid = \"late\"\npath = \"" +
                           test::fixtureDir() + "/libfixture_latency100.so\"\n";
        text += "[[connection]]\nfrom = \"input:in_1\"\nto = \"late:in_1\"\n";
        text += "[[connection]]\nfrom = \"late:out_1\"\nto = \"output:out_1\"\n";
        for (uint32_t c = 2; c <= channels; ++c)
            text += "[[connection]]\nfrom = \"input:in_" + std::to_string(c) + "\"\nto = \"output:out_" + std::to_string(c) + "\"\n";
        test::writeText(session, text);
        pid_t pid = test::spawn({test::binary(), "--headless", session},
                                {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, dir + "/out",
                                dir + "/err");
        ASSERT_GT(pid, 0);
        Prober probe(channels);
        jack_status_t st{};
        probe.client = jack_client_open("prober", static_cast<jack_options_t>(JackNoStartServer | JackServerName), &st,
                                        server.name().c_str());
        ASSERT_TRUE(probe.client);
        for (uint32_t c = 1; c <= channels; ++c) {
            probe.out.push_back(jack_port_register(probe.client, ("out_" + std::to_string(c)).c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0));
            probe.in.push_back(jack_port_register(probe.client, ("in_" + std::to_string(c)).c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0));
        }
        jack_set_process_callback(probe.client, &Prober::process, &probe);
        ASSERT_EQ(jack_activate(probe.client), 0);
        std::vector<std::string> ports;
        for (int i = 0; i < 100; ++i) {  // wait for rackterm's ports
            ports.clear();
            if (const char** p = jack_get_ports(probe.client, (name + ":").c_str(), JACK_DEFAULT_AUDIO_TYPE, 0)) {
                for (const char** q = p; *q; ++q) ports.emplace_back(*q);
                jack_free(p);
            }
            if (ports.size() == 2 * channels) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::vector<std::string> expected;
        for (uint32_t c = 1; c <= channels; ++c) expected.push_back(name + ":in_" + std::to_string(c));
        for (uint32_t c = 1; c <= channels; ++c) expected.push_back(name + ":out_" + std::to_string(c));
        std::sort(ports.begin(), ports.end());
        std::sort(expected.begin(), expected.end());
        ASSERT_EQ(ports, expected) << test::readText(dir + "/err");
        // rackterm registers its ports before it activates: connecting waits for that.
        auto connectRetrying = [&](const std::string& from, const std::string& to) {
            for (int i = 0; i < 200; ++i) {
                const int r = jack_connect(probe.client, from.c_str(), to.c_str());
                if (r == 0 || r == EEXIST) return true;
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            return false;
        };
        for (uint32_t c = 1; c <= channels; ++c)
            ASSERT_TRUE(connectRetrying("prober:out_" + std::to_string(c), name + ":in_" + std::to_string(c))) << test::readText(dir + "/err");
        // The graph's 100 frames are on rackterm's outputs, seen from the capture side
        // (measured before the outputs come back to the prober, which would make a loop of clients).
        jack_latency_range_t range{}, probeSide{};
        for (int i = 0; i < 200; ++i) {
            jack_port_get_latency_range(jack_port_by_name(probe.client, (name + ":out_1").c_str()), JackCaptureLatency, &range);
            jack_port_get_latency_range(jack_port_by_name(probe.client, "prober:out_1"), JackCaptureLatency, &probeSide);
            if (range.min == probeSide.min + 100) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        EXPECT_EQ(range.min, probeSide.min + 100u) << "the capture latency that comes in, plus the graph's";
        EXPECT_EQ(range.max, probeSide.max + 100u);
        for (uint32_t c = 1; c <= channels; ++c)
            ASSERT_TRUE(connectRetrying(name + ":out_" + std::to_string(c), "prober:in_" + std::to_string(c)));
        // Every channel arrives at its own output.
        bool arrived = false;
        for (int i = 0; i < 100 && !arrived; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            arrived = true;
            for (uint32_t c = 0; c < channels; ++c)
                arrived = arrived && std::fabs(probe.last[c].load() - static_cast<float>(c + 1) * 0.1f) < 1e-6f;
        }
        EXPECT_TRUE(arrived) << "each input reaches its output";
        jack_client_close(probe.client);
        EXPECT_EQ(test::stop(pid, SIGTERM), 0) << test::readText(dir + "/err");
    }
    std::filesystem::remove_all(dir);
}
