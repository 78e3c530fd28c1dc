// Live: a private jackd (dummy driver) started by this test, `rackterm
// --headless` on it, and a second JACK client of the test's own capturing
// rackterm's outputs. The capture is not silent and equals the offline
// render of the same session after alignment. The test stops its server.
#include "support/Support.hpp"

#include <jack/jack.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>

using namespace rackterm;

namespace {

/// A JACK client that records its two inputs into pre-allocated memory.
struct Recorder {
    jack_client_t* client = nullptr;
    jack_port_t* in[2] = {nullptr, nullptr};
    std::vector<float> data[2];
    std::atomic<size_t> written{0};
    std::atomic<bool> armed{false};

    static int process(jack_nframes_t n, void* arg) {
        auto* r = static_cast<Recorder*>(arg);
        if (!r->armed.load()) return 0;
        const size_t w = r->written.load();
        const size_t k = std::min<size_t>(n, r->data[0].size() - w);
        for (int c = 0; c < 2; ++c) {
            auto* buf = static_cast<const float*>(jack_port_get_buffer(r->in[c], n));
            std::copy(buf, buf + k, r->data[c].begin() + static_cast<long>(w));
        }
        r->written.store(w + k);
        return 0;
    }
};

}  // namespace

TEST(Live, HeadlessOnJackMatchesOfflineRender) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("live");
    const std::string session = dir + "/live.toml";
    test::writeText(session, R"([session]
name = "livetest"
[engine]
outputs = []
[[node]]
id = "src"
processor = "player"
file = "/usr/share/sounds/alsa/Front_Center.wav"
[[node]]
id = "lp"
processor = "biquad"
params = { type = 0, frequency_hz = 3000.0, q = 0.9 }
[[node]]
id = "g"
processor = "gain"
params = { gain_db = -3.0 }
)");
    const std::vector<std::string> env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()};
    pid_t pid = test::spawn({test::binary(), "--headless", session}, env, dir + "/out", dir + "/err");
    ASSERT_GT(pid, 0);

    Recorder rec;
    const size_t frames = 48000 * 2;
    rec.data[0].assign(frames, 0.0f);
    rec.data[1].assign(frames, 0.0f);
    jack_status_t st{};
    rec.client = jack_client_open("recorder", static_cast<jack_options_t>(JackNoStartServer | JackServerName), &st,
                                  server.name().c_str());
    ASSERT_TRUE(rec.client);
    rec.in[0] = jack_port_register(rec.client, "in_1", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
    rec.in[1] = jack_port_register(rec.client, "in_2", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
    jack_set_process_callback(rec.client, &Recorder::process, &rec);
    ASSERT_EQ(jack_activate(rec.client), 0);
    bool connected = false;
    for (int i = 0; i < 100 && !connected; ++i) {  // wait for rackterm's ports
        connected = jack_connect(rec.client, "livetest:out_1", "recorder:in_1") == 0 &&
                    jack_connect(rec.client, "livetest:out_2", "recorder:in_2") == 0;
        if (!connected) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(connected) << test::readText(dir + "/err");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    rec.armed = true;
    for (int i = 0; i < 200 && rec.written.load() < frames; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    jack_client_close(rec.client);
    EXPECT_EQ(test::stop(pid, SIGTERM), 0) << test::readText(dir + "/err");
    ASSERT_EQ(rec.written.load(), frames) << "captured the whole window";

    double energy = 0;
    for (float v : rec.data[0]) energy += static_cast<double>(v) * v;
    ASSERT_GT(energy, 1.0) << "the capture is not silent";

    // The same session offline, long enough for any alignment in one loop of the file.
    const auto file = test::readSound("/usr/share/sounds/alsa/Front_Center.wav");
    const size_t period = file.frames();
    test::Sound silence;
    silence.rate = 48000;
    silence.channels = 1;
    silence.samples.assign(2 * period + frames + 1024, 0.0f);
    test::writeSound(dir + "/silence.wav", silence);
    auto r = test::run({test::binary(), "render", session, "-i", dir + "/silence.wav", "-o", dir + "/offline.wav",
                        "--block", "256"},
                       {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto offline = test::readSound(dir + "/offline.wav");
    const auto off = offline.channel(0);

    // Compare period by period (JACK moves whole periods). Each period must
    // equal the offline render exactly at its offset within the file's loop;
    // consecutive periods follow on, except where a cycle was dropped under
    // load (a resync, counted and bounded).
    const auto offL = offline.channel(0), offR = offline.channel(1);
    const size_t block = 256;
    auto matches = [&](size_t captureAt, size_t offlineAt) {
        for (size_t i = 0; i < block; ++i) {
            if (std::fabs(rec.data[0][captureAt + i] - offL[offlineAt + i]) > 1e-4f) return false;
            if (std::fabs(rec.data[1][captureAt + i] - offR[offlineAt + i]) > 1e-4f) return false;
        }
        return true;
    };
    auto search = [&](size_t captureAt) -> size_t {  // offset in [period, 2 period), or 0
        for (size_t lag = period; lag < 2 * period; ++lag)
            if (matches(captureAt, lag)) return lag;
        return 0;
    };
    size_t lag = 0, resyncs = 0, compared = 0, silentPeriods = 0;
    for (size_t at = 0; at + block <= frames; at += block) {
        double e = 0;
        for (size_t i = 0; i < block; ++i) e += static_cast<double>(rec.data[0][at + i]) * rec.data[0][at + i];
        if (e < 1e-9) {  // silence matches anywhere; keep the running offset
            ++silentPeriods;
            if (lag) lag = (lag - period + block) % period + period;
            continue;
        }
        if (lag && matches(at, lag)) {
        } else {
            lag = search(at);
            ASSERT_NE(lag, 0u) << "capture period at frame " << at << " matches no part of the offline render";
            ++resyncs;
        }
        ++compared;
        lag = (lag - period + block) % period + period;
    }
    EXPECT_GT(compared, frames / block / 2) << "most periods carry sound";
    EXPECT_LE(resyncs, 1 + compared / 10) << "too many discontinuities: " << resyncs << " in " << compared;
    std::filesystem::remove_all(dir);
}
