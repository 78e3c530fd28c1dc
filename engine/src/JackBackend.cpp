#include <rackterm/engine/JackBackend.hpp>

#include <rackterm/engine/Graph.hpp>
#include <rackterm/engine/JackRegistry.hpp>

#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>

#include <jack/jack.h>
#include <jack/thread.h>

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace rackterm::engine {

namespace {
std::atomic<void (*)(const char*)> messageHandler{nullptr};

void forward(const char* line) {
    if (auto h = messageHandler.load()) h(line);
}

bool hasSoundCard() {
    std::ifstream cards("/proc/asound/cards");
    std::string line;
    while (std::getline(cards, line))
        if (line.find("no soundcards") == std::string::npos && !line.empty() && line[0] != ' ') return true;
    return false;
}
}  // namespace

std::string jackServerName() {
    const char* s = std::getenv("JACK_DEFAULT_SERVER");
    return (s && *s) ? s : "default";
}

void JackBackend::setMessageHandler(void (*handler)(const char*)) {
    messageHandler.store(handler);
    jack_set_error_function(&forward);
    jack_set_info_function(&forward);
}

Result<std::unique_ptr<JackBackend>> JackBackend::open(const std::string& name, uint32_t inputs, uint32_t outputs) {
    inputs = std::clamp<uint32_t>(inputs, 1, kMaxIoPorts);
    outputs = std::clamp<uint32_t>(outputs, 1, kMaxIoPorts);
    if (!messageHandler.load()) setMessageHandler(nullptr);  // keep libjack quiet on the terminal
    jack_status_t status{};
    jack_client_t* c = jack_client_open(name.c_str(), JackNoStartServer, &status);
    if (!c) {
        const std::string server = jackServerName();
        const std::string start = hasSoundCard() ? "jackd -d alsa" : "jackd -d dummy";
        std::string prefix = server == "default" ? "" : "JACK_DEFAULT_SERVER=" + server + " ";
        if (status & JackServerFailed || status & JackServerError) {
            // Say why a new server would not start either, when jackd2's registry is full.
            if (auto registry = readJackRegistry(); registry && !registry->problem().empty())
                return Error{"no JACK server is running (server '" + server + "'), and none can start: " +
                             registry->problem() + "; then start one with `" + prefix + start + " &`"};
            return Error{"no JACK server is running (server '" + server + "'); start one with `" + prefix + start +
                         " &` and try again"};
        }
        return Error{"JACK refused client '" + name + "' (status 0x" + std::to_string(status) +
                     "); check that the name is free and the server is healthy"};
    }
    std::unique_ptr<JackBackend> b(new JackBackend(c));
    for (uint32_t i = 0; i < inputs; ++i) {
        b->in_.push_back(jack_port_register(c, ("in_" + std::to_string(i + 1)).c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0));
        if (!b->in_.back()) return Error{"JACK could not register the ports of client '" + name + "'"};
    }
    for (uint32_t i = 0; i < outputs; ++i) {
        b->out_.push_back(jack_port_register(c, ("out_" + std::to_string(i + 1)).c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0));
        if (!b->out_.back()) return Error{"JACK could not register the ports of client '" + name + "'"};
    }
    jack_set_process_callback(c, &JackBackend::onProcess, b.get());
    jack_set_latency_callback(
        c, [](jack_latency_callback_mode_t mode, void* arg) { JackBackend::onLatency(static_cast<int>(mode), arg); },
        b.get());
    jack_set_xrun_callback(c, &JackBackend::onXrun, b.get());
    jack_on_shutdown(c, &JackBackend::onShutdown, b.get());
    jack_set_port_connect_callback(
        c, [](jack_port_id_t a, jack_port_id_t p, int on, void* arg) { JackBackend::onPortConnect(a, p, on, arg); },
        b.get());
    jack_set_port_registration_callback(
        c, [](jack_port_id_t p, int on, void* arg) { JackBackend::onPortRegistration(p, on, arg); }, b.get());
    return b;
}

JackBackend::~JackBackend() { close(); }

void JackBackend::close() {
    if (!client_) return;
    if (active_ && !lost_.load()) {
        // Silence first and let a running callback return; jack_deactivate
        // then stops JACK's thread while it waits in JACK's own code.
        // seq_cst on both sides: either the callback sees stopping_, or this sees inCallback_.
        stopping_.store(true);
        for (int i = 0; i < 2000 && inCallback_.load(); ++i) ::usleep(500);
        jack_deactivate(client_);
    }
    active_ = false;
    jack_client_close(client_);
    client_ = nullptr;
}

Result<void> JackBackend::activate(Engine& engine) {
    engine_ = &engine;
    if (jack_activate(client_) != 0) return Error{"JACK could not activate client '" + clientName() + "'"};
    active_ = true;
    return {};
}

std::vector<std::string> JackBackend::connect(const std::vector<std::string>& inputs,
                                              const std::vector<std::string>& outputs) {
    std::vector<std::string> errors;
    const std::vector<std::string> all = ports();
    auto one = [&](const std::string& from, const std::string& to, const std::string& theirs) {
        if (!jack_port_by_name(client_, theirs.c_str())) {
            errors.push_back("JACK port " + quote(theirs) + " does not exist" + didYouMean(theirs, all) +
                             "; list ports with `jack_lsp`");
            return;
        }
        if (!connectPorts(from, to)) errors.push_back("JACK could not connect " + quote(from) + " -> " + quote(to));
    };
    const std::string me = clientName();
    for (size_t i = 0; i < inputs.size() && i < in_.size(); ++i)
        if (!inputs[i].empty()) one(inputs[i], me + ":in_" + std::to_string(i + 1), inputs[i]);
    for (size_t i = 0; i < outputs.size() && i < out_.size(); ++i)
        if (!outputs[i].empty()) one(me + ":out_" + std::to_string(i + 1), outputs[i], outputs[i]);
    return errors;
}

uint32_t JackBackend::sampleRate() const noexcept { return jack_get_sample_rate(client_); }

int JackBackend::realtimePriority() const noexcept {
    const int p = jack_client_real_time_priority(client_);
    return p > 0 ? p : 0;
}
uint32_t JackBackend::bufferSize() const noexcept { return jack_get_buffer_size(client_); }
float JackBackend::cpuLoad() const noexcept { return jack_cpu_load(client_); }
std::string JackBackend::clientName() const { return jack_get_client_name(client_); }

std::vector<std::string> JackBackend::ports() const {
    std::vector<std::string> out;
    if (const char** p = jack_get_ports(client_, nullptr, JACK_DEFAULT_AUDIO_TYPE, 0)) {
        for (const char** q = p; *q; ++q) out.emplace_back(*q);
        jack_free(p);
    }
    return out;
}

int JackBackend::onProcess(uint32_t frames, void* arg) {
    // jack_deactivate() and jack_client_close() stop this thread with
    // pthread_cancel, which libjack makes asynchronous: arriving inside the
    // noexcept block below it would unwind through it and abort the program.
    // Cancellation is held off while the block runs and acts, if pending,
    // when it is allowed again here, in a frame that may unwind.
    // pthread_setcancelstate is a flag in the thread's own descriptor: no
    // lock, no system call.
    int previous = PTHREAD_CANCEL_ENABLE;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &previous);
    static_cast<JackBackend*>(arg)->runBlock(frames);
    pthread_setcancelstate(previous, nullptr);
    return 0;
}

void JackBackend::setLatency(uint32_t frames) {
    if (latency_.exchange(frames) != frames && client_) jack_recompute_total_latencies(client_);
}

void JackBackend::onLatency(int mode, void* arg) noexcept {
    // Signal flows from every capture port to every playback port through
    // the graph: each side sees the other's latency plus the graph's.
    auto* b = static_cast<JackBackend*>(arg);
    const uint32_t graph = b->latency_.load();
    const bool capture = mode == JackCaptureLatency;
    jack_latency_range_t range{UINT32_MAX, 0};
    for (jack_port_t* p : capture ? b->in_ : b->out_) {
        jack_latency_range_t r;
        jack_port_get_latency_range(p, static_cast<jack_latency_callback_mode_t>(mode), &r);
        range.min = std::min(range.min, r.min);
        range.max = std::max(range.max, r.max);
    }
    if (range.min == UINT32_MAX) range.min = 0;
    range.min += graph;
    range.max += graph;
    for (jack_port_t* p : capture ? b->out_ : b->in_)
        jack_port_set_latency_range(p, static_cast<jack_latency_callback_mode_t>(mode), &range);
}

void JackBackend::runBlock(uint32_t frames) noexcept {
    inCallback_.store(true);
    const float* in[kMaxIoPorts];
    float* out[kMaxIoPorts];
    const size_t inputs = in_.size(), outputs = out_.size();
    for (size_t i = 0; i < inputs; ++i) in[i] = static_cast<const float*>(jack_port_get_buffer(in_[i], frames));
    for (size_t i = 0; i < outputs; ++i) out[i] = static_cast<float*>(jack_port_get_buffer(out_[i], frames));
    if (stopping_.load()) {
        for (size_t i = 0; i < outputs; ++i) std::memset(out[i], 0, frames * sizeof(float));
    } else {
        engine_->process(in, out, frames);
    }
    inCallback_.store(false);
}

int JackBackend::onXrun(void* arg) noexcept {
    if (Engine* e = static_cast<JackBackend*>(arg)->engine_) e->events().xruns.fetch_add(1, std::memory_order_relaxed);
    return 0;
}

void JackBackend::onShutdown(void* arg) noexcept {
    auto* b = static_cast<JackBackend*>(arg);
    b->lost_.store(true, std::memory_order_release);
}

void JackBackend::onPortConnect(uint32_t, uint32_t, int, void* arg) noexcept {
    static_cast<JackBackend*>(arg)->connectionsChanged_.store(true);
}

void JackBackend::onPortRegistration(uint32_t, int registered, void* arg) noexcept {
    if (registered) static_cast<JackBackend*>(arg)->portsRegistered_.store(true);
}

std::vector<std::pair<std::string, std::string>> JackBackend::connections() const {
    std::vector<std::pair<std::string, std::string>> out;
    if (!client_ || lost()) return out;
    auto add = [&](jack_port_t* port, bool input) {
        const std::string mine = jack_port_name(port);
        if (const char** theirs = jack_port_get_all_connections(client_, port)) {
            for (const char** t = theirs; *t; ++t)
                out.emplace_back(input ? std::string(*t) : mine, input ? mine : std::string(*t));
            jack_free(theirs);
        }
    };
    for (jack_port_t* p : in_) add(p, true);
    for (jack_port_t* p : out_) add(p, false);
    return out;
}

bool JackBackend::connectPorts(const std::string& source, const std::string& destination) {
    if (!client_ || lost()) return false;
    if (!jack_port_by_name(client_, source.c_str()) || !jack_port_by_name(client_, destination.c_str())) return false;
    const int r = jack_connect(client_, source.c_str(), destination.c_str());
    return r == 0 || r == EEXIST;
}

}  // namespace rackterm::engine
