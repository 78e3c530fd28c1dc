// Test helpers: run the real rackterm binary, start a private JACK server,
// read and analyse sound files. Used only by tests.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

typedef struct _jack_client jack_client_t;

namespace rackterm::test {

/// Paths baked in by CMake.
std::string binary();       ///< the rackterm executable
std::string moduleDir();    ///< built-in processor modules
std::string fixtureDir();   ///< test fixture modules
std::string sourceDir();    ///< the source tree

/// A fresh empty folder under the system temp folder (removed by the caller or left for inspection).
std::string tempDir(const std::string& tag);
/// Write `text` to `path`.
void writeText(const std::string& path, const std::string& text);
std::string readText(const std::string& path);

struct RunResult {
    int exitCode = -1;  ///< -1 when killed by a signal, -2 on time-out
    std::string out, err;
};
/// Run argv with extra "NAME=value" environment entries, wait at most `timeoutSeconds`.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              double timeoutSeconds = 60);
/// Start argv in the background (stdout/stderr to files); returns its pid.
/// With `stdinWrite`, its standard input is a pipe whose write end is stored there.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& outFile,
            const std::string& errFile, int* stdinWrite = nullptr);
/// Send `sig` to `pid` (one we started) and wait for it; returns its exit status or -1.
int stop(pid_t pid, int sig, double timeoutSeconds = 10);

/// A process started by spawn(), killed (SIGKILL) and reaped when it goes
/// out of scope still running: a failing assertion never leaves it behind.
class Child {
public:
    explicit Child(pid_t pid) : pid_(pid) {}
    ~Child() {
        if (pid_ > 0) test::stop(pid_, 9, 5);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    pid_t pid() const { return pid_; }
    /// Stop it with `sig` and wait: its exit status, or -1.
    int stop(int sig, double timeoutSeconds = 10) {
        const int status = test::stop(pid_, sig, timeoutSeconds);
        pid_ = -1;
        return status;
    }
    /// True while it runs (not yet exited); once it has exited, `status` gets its wait status.
    bool running(int* status = nullptr);

private:
    pid_t pid_;
};

/// A Unix stream socket bound at `path`, listening when `backlog` >= 0;
/// its descriptor (the caller closes it), or -1.
int bindUnixSocket(const std::string& path, int backlog = -1);
/// A character device node at `path` like the memory device (1, `minor`):
/// 3 null, 5 zero, 7 full. Only root may make one: false otherwise.
bool makeMemoryDevice(const std::string& path, unsigned minor);
/// A PID that is certainly not running: a child started and reaped.
pid_t deadPid();

/// Whether this test process runs in a private mount namespace with its own
/// /dev/shm (set up before main(): as root with unshare(CLONE_NEWNS), else
/// in a user namespace where the kernel allows one). There, JACK servers
/// register in a registry of their own and never meet the machine's, whose
/// 8 slots may be taken by servers that died. `why` says why not, if not.
bool privateJackRegistry(std::string* why = nullptr);

/// A private JACK server: `jackd --no-realtime -d dummy`, named uniquely, stopped by the destructor.
class JackServer {
public:
    /// Starts jackd and waits (at most 15 s) until it accepts clients. When it
    /// does not come up, error() has one line: jackd's own message and the
    /// remedy (e.g. a full server registry, named slot by slot).
    JackServer(uint32_t rate = 48000, uint32_t period = 256, const std::string& name = "");
    ~JackServer();
    JackServer(const JackServer&) = delete;
    JackServer& operator=(const JackServer&) = delete;
    bool ready() const { return ready_; }
    /// Why the server is not ready ("" when it is).
    const std::string& error() const { return error_; }
    const std::string& name() const { return name_; }
    pid_t pid() const { return pid_; }
    /// "JACK_DEFAULT_SERVER=name" for child processes.
    std::string envEntry() const { return "JACK_DEFAULT_SERVER=" + name_; }
    /// Kill the server with `sig` (it is ours) and wait for it.
    void kill(int sig);
    /// Start it again under the same name (after kill()); as the constructor.
    bool start(uint32_t rate = 48000, uint32_t period = 256);
    /// The tail (at most `bytes`) of what jackd printed since it last started.
    std::string log(size_t bytes = 6000) const;
    /// When a client could first open on it, seconds on the steady clock.
    double readyAt() const { return readyAt_; }

private:
    std::string name_, dir_;
    pid_t pid_ = -1;
    bool ready_ = false;
    std::string error_;
    double readyAt_ = 0;
    jack_client_t* probe_ = nullptr;  // open while the server runs (see start())
};

/// A sound file's frames, interleaved.
struct Sound {
    int rate = 0;
    int channels = 0;
    std::vector<float> samples;  ///< frames x channels, interleaved
    size_t frames() const { return channels ? samples.size() / static_cast<size_t>(channels) : 0; }
    std::vector<float> channel(int c) const;
};
Sound readSound(const std::string& path);
/// Write float WAV (format 0 = float, else a libsndfile SF_FORMAT_* value).
void writeSound(const std::string& path, const Sound& s, int format = 0);

double rmsDb(const std::vector<float>& x);
/// Energy (dB) of `x` between `loHz` and `hiHz` by FFT (Hann window, averaged frames of 4096).
double bandEnergyDb(const std::vector<float>& x, int rate, double loHz, double hiHz);
/// Frequency of a periodic signal by interpolated rising zero crossings, Hz.
double zeroCrossingFrequency(const std::vector<float>& x, int rate);

}  // namespace rackterm::test
