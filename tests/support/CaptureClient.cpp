// rackterm_test_capture SERVER NAME FRAMES CHANNELS OUT.wav TIMEOUT_SECONDS [PORT ...]
//
// A JACK client of the tests, in a process of its own (a fresh libjack for
// every JACK server the tests start and kill): client NAME with inputs
// in_1..in_CHANNELS waits for the first period that carries sound, then
// records FRAMES frames from the period after it into OUT.wav (float).
// Prints "first_sound SECONDS" (CLOCK_MONOTONIC, comparable with the test's
// steady clock) and "cycles N"; exit 0 when the recording is complete, 1 when
// TIMEOUT_SECONDS passed first (what was recorded is written), 2 when no client opened.
// Each PORT given is connected to in_1, in_2, ... (else another program connects them);
// with PORTs, sound is looked for only from the second period after the last
// connection was made, so no period is recorded with a channel not yet connected.
#include <jack/jack.h>
#include <sndfile.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

struct State {
    std::vector<jack_port_t*> in;
    std::vector<std::vector<float>> data;
    std::atomic<size_t> written{0};
    std::atomic<double> firstSound{-1};
    std::atomic<size_t> cycles{0};
    std::atomic<bool> connected{false};  // every PORT given is connected
    size_t cyclesConnected = 0;          // process thread only
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

int process(jack_nframes_t n, void* arg) {
    auto* s = static_cast<State*>(arg);
    s->cycles.fetch_add(1);
    if (!s->connected.load()) return 0;
    if (++s->cyclesConnected < 2) return 0;  // the period the connections were made in may predate them
    if (s->firstSound.load() < 0) {
        for (auto* p : s->in) {
            auto* buf = static_cast<const float*>(jack_port_get_buffer(p, n));
            for (jack_nframes_t i = 0; i < n; ++i)
                if (std::fabs(buf[i]) > 1e-4f) {
                    s->firstSound.store(now());
                    return 0;  // record from the next period on
                }
        }
        return 0;
    }
    const size_t w = s->written.load();
    const size_t k = std::min<size_t>(n, s->data[0].size() - w);
    for (size_t c = 0; c < s->in.size(); ++c) {
        auto* buf = static_cast<const float*>(jack_port_get_buffer(s->in[c], n));
        std::copy(buf, buf + k, s->data[c].begin() + static_cast<long>(w));
    }
    s->written.store(w + k);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 7) {
        std::fprintf(stderr, "usage: %s SERVER NAME FRAMES CHANNELS OUT.wav TIMEOUT_SECONDS [PORT ...]\n", argv[0]);
        return 2;
    }
    const size_t frames = std::strtoul(argv[3], nullptr, 10);
    const int channels = std::atoi(argv[4]);
    const double timeout = std::atof(argv[6]);
    State s;
    s.data.assign(static_cast<size_t>(channels), std::vector<float>(frames, 0.0f));
    jack_set_error_function([](const char*) {});
    jack_set_info_function([](const char*) {});
    jack_status_t st{};
    jack_client_t* c = jack_client_open(
        argv[2], static_cast<jack_options_t>(JackNoStartServer | JackServerName | JackUseExactName), &st, argv[1]);
    if (!c) return 2;
    for (int k = 1; k <= channels; ++k)
        s.in.push_back(jack_port_register(c, ("in_" + std::to_string(k)).c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0));
    jack_set_process_callback(c, &process, &s);
    if (jack_activate(c) != 0) return 2;
    for (int k = 7; k < argc && k - 7 < channels; ++k)
        if (jack_connect(c, argv[k], (std::string(argv[2]) + ":in_" + std::to_string(k - 6)).c_str()) != 0) return 2;
    s.connected.store(true);
    const int rate = static_cast<int>(jack_get_sample_rate(c));
    const double end = now() + timeout;
    while (s.written.load() < frames && now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    jack_client_close(c);
    std::printf("first_sound %.6f\ncycles %zu\n", s.firstSound.load(), s.cycles.load());
    SF_INFO info{};
    info.samplerate = rate;
    info.channels = channels;
    info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE* f = sf_open(argv[5], SFM_WRITE, &info);
    if (!f) return 2;
    const size_t got = s.written.load();
    std::vector<float> frame(static_cast<size_t>(channels) * got);
    for (size_t i = 0; i < got; ++i)
        for (size_t k = 0; k < static_cast<size_t>(channels); ++k) frame[i * static_cast<size_t>(channels) + k] = s.data[k][i];
    sf_writef_float(f, frame.data(), static_cast<sf_count_t>(got));
    sf_close(f);
    return got == frames ? 0 : 1;
}
