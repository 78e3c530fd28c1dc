// JackBackend: runs an Engine as a JACK client with N capture ports in_1..in_N
// and M playback ports out_1..out_M (1..32 each; the session's `input` and
// `output` nodes), and reports the graph's latency on them. Never starts a server (JackNoStartServer),
// so it fails at once, never hangs, when none runs. The JACK server name is
// libjack's: $JACK_DEFAULT_SERVER or "default".
//
// All member functions are [control]. The process callback runs the engine
// on JACK's thread; xruns arrive as EngineEvents atomics. When the server goes
// away, JACK's shutdown callback only sets a flag (lost()); the control thread
// then closes this client and opens a new one (JACK's rule: never from JACK's
// own threads). Connection changes and port registrations on the server set
// flags too, so the control thread can keep a list of this client's
// connections to restore after a restart.
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

typedef struct _jack_client jack_client_t;
typedef struct _jack_port jack_port_t;

namespace rackterm::engine {

class JackBackend {
public:
    /// Open client `name` and register `inputs` and `outputs` ports (1..32
    /// each); not yet active. Error when
    /// no server is reachable: one line naming the server and the command
    /// that starts one (`jackd -d alsa` with a sound card, `jackd -d dummy` without).
    static Result<std::unique_ptr<JackBackend>> open(const std::string& name, uint32_t inputs = 2, uint32_t outputs = 2);
    /// close().
    ~JackBackend();
    JackBackend(const JackBackend&) = delete;
    JackBackend& operator=(const JackBackend&) = delete;

    /// Stop and close the client: outputs go silent, a running process
    /// callback is let return (at most 1 s), then jack_deactivate() and
    /// jack_client_close(). Safe under a busy callback: the callback holds
    /// off thread cancellation while it runs, so stopping never aborts the
    /// program. After the server went away (lost()), only
    /// jack_client_close(), which frees libjack's side. Idempotent.
    void close();

    /// [any] True once the server has gone away (JACK's shutdown callback ran):
    /// nothing more will be processed; close() and open a new client.
    bool lost() const noexcept { return lost_.load(std::memory_order_acquire); }
    /// Connections of this client's ports as (source, destination) full port
    /// names, e.g. ("system:capture_1", "demo:in_1") and ("demo:out_1", "recorder:in_1").
    std::vector<std::pair<std::string, std::string>> connections() const;
    /// Make the connection `source` -> `destination` (full port names).
    /// False when a port does not exist (yet) or JACK refused; an existing connection counts as made.
    bool connectPorts(const std::string& source, const std::string& destination);
    /// True when a connection to or from any port changed on the server since the last call.
    bool takeConnectionsChanged() noexcept { return connectionsChanged_.exchange(false); }
    /// True when a port was registered on the server since the last call.
    bool takePortsRegistered() noexcept { return portsRegistered_.exchange(false); }

    /// Start processing: `engine`'s process() runs on JACK's thread from now
    /// on. `engine` must outlive this backend.
    Result<void> activate(Engine& engine);
    /// Connect system ports to our inputs / our outputs to system ports
    /// (entry k to in_k+1 / out_k+1; "" leaves a port unconnected). Returns
    /// one message per connection that failed, with a near port name.
    std::vector<std::string> connect(const std::vector<std::string>& inputs,
                                     const std::vector<std::string>& outputs);

    uint32_t sampleRate() const noexcept;
    uint32_t bufferSize() const noexcept;
    /// [control] The SCHED_FIFO priority of JACK's process thread for this
    /// client (jack_client_real_time_priority), 0 when JACK runs without
    /// real-time scheduling. Isolated nodes' children take it too.
    int realtimePriority() const noexcept;
    /// [control] The graph's latency, frames: from now on the latency
    /// callback adds it between our capture and playback ports (JACK's
    /// jack_port_set_latency_range), and JACK recomputes its totals.
    void setLatency(uint32_t frames);
    /// JACK's DSP load estimate, percent.
    float cpuLoad() const noexcept;
    /// The name JACK gave the client (may differ from the one asked for).
    std::string clientName() const;
    /// Every port JACK knows, "client:port".
    std::vector<std::string> ports() const;

    /// [any] Where libjack's own error and info lines go (default: dropped).
    static void setMessageHandler(void (*handler)(const char* line));

private:
    explicit JackBackend(jack_client_t* c) : client_(c) {}
    /// [audio] JACK's process callback: runBlock() with cancellation held off.
    static int onProcess(uint32_t frames, void* arg);
    /// [audio] One block: ports -> engine -> ports (silence once stopping).
    void runBlock(uint32_t frames) noexcept;
    static int onXrun(void* arg) noexcept;
    static void onShutdown(void* arg) noexcept;
    static void onLatency(int mode, void* arg) noexcept;
    static void onPortConnect(uint32_t a, uint32_t b, int connect, void* arg) noexcept;
    static void onPortRegistration(uint32_t port, int registered, void* arg) noexcept;

    jack_client_t* client_;
    Engine* engine_ = nullptr;
    std::vector<jack_port_t*> in_, out_;
    std::atomic<uint32_t> latency_{0};
    bool active_ = false;
    std::atomic<bool> stopping_{false};    // control -> audio: output silence
    std::atomic<bool> inCallback_{false};  // audio -> control: a block is running
    std::atomic<bool> lost_{false};        // JACK's thread -> control: the server went away
    std::atomic<bool> connectionsChanged_{false}, portsRegistered_{false};  // JACK's thread -> control
};

/// [control] The name of the JACK server libjack will use.
std::string jackServerName();

}  // namespace rackterm::engine
