#include "support/JackCapture.hpp"

#include <jack/jack.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

namespace rackterm::test {

double steadySeconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

JackCapture::JackCapture(const std::string& server, const std::string& name, size_t frames, int channels)
    : name_(name), data_(static_cast<size_t>(channels), std::vector<float>(frames, 0.0f)) {
    jack_status_t st{};
    client_ = jack_client_open(name.c_str(), static_cast<jack_options_t>(JackNoStartServer | JackServerName |
                                                                         JackUseExactName),
                               &st, server.c_str());
    if (!client_) return;
    for (int c = 1; c <= channels; ++c)
        in_.push_back(jack_port_register(client_, ("in_" + std::to_string(c)).c_str(), JACK_DEFAULT_AUDIO_TYPE,
                                         JackPortIsInput, 0));
    jack_set_process_callback(client_, &JackCapture::process, this);
    if (jack_activate(client_) != 0) {
        jack_client_close(client_);
        client_ = nullptr;
    }
}

JackCapture::~JackCapture() {
    if (client_) jack_client_close(client_);
}

int JackCapture::process(uint32_t n, void* arg) {
    auto* r = static_cast<JackCapture*>(arg);
    r->cycles_.fetch_add(1);
    if (r->firstSound_.load() < 0) {
        bool sound = false;
        for (auto* p : r->in_) {
            auto* buf = static_cast<const float*>(jack_port_get_buffer(p, n));
            for (uint32_t i = 0; i < n && !sound; ++i) sound = std::fabs(buf[i]) > 1e-4f;
        }
        if (sound) r->firstSound_.store(steadySeconds());
    }
    if (!r->armed_.load()) return 0;
    const size_t w = r->written_.load();
    const size_t k = std::min<size_t>(n, r->data_[0].size() - w);
    for (size_t c = 0; c < r->in_.size(); ++c) {
        auto* buf = static_cast<const float*>(jack_port_get_buffer(r->in_[c], n));
        std::copy(buf, buf + k, r->data_[c].begin() + static_cast<long>(w));
    }
    r->written_.store(w + k);
    return 0;
}

bool JackCapture::connectFrom(const std::string& port, int channel, double seconds) {
    const std::string mine = name_ + ":in_" + std::to_string(channel);
    const double end = steadySeconds() + seconds;
    while (steadySeconds() < end) {
        const int r = jack_connect(client_, port.c_str(), mine.c_str());
        if (r == 0 || r == EEXIST) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

bool JackCapture::record(double seconds) {
    written_ = 0;
    armed_ = true;
    const size_t want = data_[0].size();
    const double end = steadySeconds() + seconds;
    while (written_.load() < want && steadySeconds() < end) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    armed_ = false;
    return written_.load() == want;
}

ProcessCapture captureInProcess(const std::string& server, const std::string& name, size_t frames, int channels,
                                const std::string& wavPath, double timeoutSeconds, const std::vector<std::string>& sources) {
    ProcessCapture c;
    std::vector<std::string> argv = {fixtureDir() + "/rackterm_test_capture", server, name, std::to_string(frames),
                                     std::to_string(channels), wavPath, std::to_string(timeoutSeconds)};
    argv.insert(argv.end(), sources.begin(), sources.end());
    auto r = run(argv, {}, timeoutSeconds + 20);
    c.exitCode = r.exitCode;
    c.log = r.out + r.err;
    std::sscanf(r.out.c_str(), "first_sound %lf\ncycles %zu", &c.firstSound, &c.cycles);
    if (c.exitCode == 0 || c.exitCode == 1) c.sound = readSound(wavPath);
    return c;
}

const char* const kLoopingNodes = R"([[node]]
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
)";

size_t loopingFrames() { return readSound("/usr/share/sounds/alsa/Front_Center.wav").frames(); }

Sound renderForCapture(const std::string& session, const std::string& dir, size_t captureFrames, std::string* error,
                       size_t loopsPerPeriod) {
    Sound silence;
    silence.rate = 48000;
    silence.channels = 1;
    silence.samples.assign(2 * loopsPerPeriod * loopingFrames() + captureFrames + 1024, 0.0f);
    writeSound(dir + "/silence.wav", silence);
    auto r = run({binary(), "render", session, "-i", dir + "/silence.wav", "-o", dir + "/offline.wav", "--block", "256"},
                 {"RACKTERM_PROCESSOR_PATH=" + moduleDir()});
    if (r.exitCode != 0) {
        if (error) *error = r.err;
        return {};
    }
    return readSound(dir + "/offline.wav");
}

CaptureMatch matchCapture(const std::vector<float>& left, const std::vector<float>& right, const Sound& offline,
                          size_t loop, size_t block) {
    const auto offL = offline.channel(0), offR = offline.channel(1);
    const size_t frames = std::min(left.size(), right.size());
    auto matches = [&](size_t captureAt, size_t offlineAt) {
        for (size_t i = 0; i < block; ++i) {
            if (std::fabs(left[captureAt + i] - offL[offlineAt + i]) > 1e-4f) return false;
            if (std::fabs(right[captureAt + i] - offR[offlineAt + i]) > 1e-4f) return false;
        }
        return true;
    };
    auto search = [&](size_t captureAt) -> size_t {  // offset in [loop, 2 loop), or 0
        for (size_t lag = loop; lag < 2 * loop; ++lag)
            if (matches(captureAt, lag)) return lag;
        return 0;
    };
    CaptureMatch m;
    size_t lag = 0;
    for (size_t at = 0; at + block <= frames; at += block) {
        double e = 0;
        for (size_t i = 0; i < block; ++i) e += static_cast<double>(left[at + i]) * left[at + i];
        if (e < 1e-9) {  // silence matches anywhere; keep the running offset
            if (lag) lag = (lag - loop + block) % loop + loop;
            continue;
        }
        if (!(lag && matches(at, lag))) {
            lag = search(at);
            if (lag == 0) {
                if (m.failure.empty())
                    m.failure = "capture period at frame " + std::to_string(at) + " matches no part of the offline render";
                ++m.mismatched;
                continue;
            }
            ++m.resyncs;
        }
        ++m.compared;
        lag = (lag - loop + block) % loop + loop;
    }
    return m;
}

}  // namespace rackterm::test
