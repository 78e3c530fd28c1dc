#include "Support.hpp"

#include <rackterm/engine/JackRegistry.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <jack/jack.h>
#include <signal.h>
#include <sndfile.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace rackterm::test {

namespace fs = std::filesystem;

std::string binary() { return RACKTERM_TEST_BINARY; }
std::string moduleDir() { return RACKTERM_TEST_MODULE_DIR; }
std::string fixtureDir() { return RACKTERM_TEST_FIXTURE_DIR; }
std::string sourceDir() { return RACKTERM_TEST_SOURCE_DIR; }

std::string tempDir(const std::string& tag) {
    std::string t = (fs::temp_directory_path() / ("rackterm-test-" + tag + "-XXXXXX")).string();
    if (!mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    return t;
}

void writeText(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
}

std::string readText(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {
/// A private XDG_STATE_HOME for every child, so tests never write logs or
/// history into the user's home; removed when the test binary exits. (The
/// string is never destroyed: the exit handler that removes the folder runs
/// after function-local statics are gone.)
const std::string& privateStateHome() {
    static const std::string* dir = [] {
        auto* d = new std::string(tempDir("state"));
        std::atexit([] { std::error_code ec; fs::remove_all(privateStateHome(), ec); });
        return d;
    }();
    return *dir;
}

/// A private XDG_RUNTIME_DIR (0700) for control sockets and module copies.
const std::string& privateRuntimeDir() {
    static const std::string* dir = [] {
        auto* d = new std::string(tempDir("runtime"));
        ::chmod(d->c_str(), 0700);
        std::atexit([] { std::error_code ec; fs::remove_all(privateRuntimeDir(), ec); });
        return d;
    }();
    return *dir;
}

std::vector<char*> makeEnv(std::vector<std::string> extra, std::vector<std::string>& storage) {
    bool hasState = false, hasRuntime = false;
    for (const auto& x : extra) {
        hasState = hasState || x.rfind("XDG_STATE_HOME=", 0) == 0;
        hasRuntime = hasRuntime || x.rfind("XDG_RUNTIME_DIR=", 0) == 0;
    }
    if (!hasState) extra.push_back("XDG_STATE_HOME=" + privateStateHome());
    if (!hasRuntime) extra.push_back("XDG_RUNTIME_DIR=" + privateRuntimeDir());
    storage.clear();
    for (char** e = environ; *e; ++e) {
        std::string kv = *e;
        bool overridden = false;
        for (const auto& x : extra)
            if (kv.substr(0, kv.find('=') + 1) == x.substr(0, x.find('=') + 1)) overridden = true;
        if (!overridden) storage.push_back(kv);
    }
    for (const auto& x : extra) storage.push_back(x);
    std::vector<char*> out;
    for (auto& s : storage) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}
}  // namespace

pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& outFile,
            const std::string& errFile, int* stdinWrite) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int pipefd[2] = {-1, -1};
    if (stdinWrite && ::pipe2(pipefd, O_CLOEXEC) == 0) {
        posix_spawn_file_actions_adddup2(&fa, pipefd[0], 0);
        *stdinWrite = pipefd[1];
    } else {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 1, outFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, errFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> args = argv, storage;
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    auto cenv = makeEnv(env, storage);
    pid_t pid = -1;
    if (posix_spawnp(&pid, cargs[0], &fa, nullptr, cargs.data(), cenv.data()) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    if (pipefd[0] >= 0) ::close(pipefd[0]);
    return pid;
}

int stop(pid_t pid, int sig, double timeoutSeconds) {
    if (pid <= 0) return -1;
    if (sig) ::kill(pid, sig);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeoutSeconds);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -2;
}

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env, double timeoutSeconds) {
    const std::string dir = tempDir("run");
    const std::string out = dir + "/out", err = dir + "/err";
    RunResult r;
    pid_t pid = spawn(argv, env, out, err);
    if (pid < 0) return r;
    r.exitCode = stop(pid, 0, timeoutSeconds);
    r.out = readText(out);
    r.err = readText(err);
    fs::remove_all(dir);
    return r;
}

int bindUnixSocket(const std::string& path, int backlog) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return -1;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || (backlog >= 0 && ::listen(fd, backlog) != 0)) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool makeMemoryDevice(const std::string& path, unsigned minor) {
    return ::geteuid() == 0 && ::mknod(path.c_str(), S_IFCHR | 0600, makedev(1, minor)) == 0;
}

pid_t deadPid() {
    const pid_t p = ::fork();
    if (p == 0) ::_exit(0);
    ::waitpid(p, nullptr, 0);
    return p;
}

namespace {

bool writeFile(const char* path, const std::string& text) {
    const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

/// Before main(), while the process has one thread: a mount namespace of its
/// own with a fresh tmpfs on /dev/shm. Children (jackd, rackterm, tmux)
/// inherit it.
struct Isolation {
    bool isolated = false;
    std::string why;
    Isolation() {
        if (std::getenv("RACKTERM_TEST_SHARED_SHM")) {
            why = "RACKTERM_TEST_SHARED_SHM is set";
            return;
        }
        const uid_t uid = ::geteuid();
        const gid_t gid = ::getegid();
        const int flags = CLONE_NEWNS | (uid == 0 ? 0 : CLONE_NEWUSER);
        if (::unshare(flags) != 0) {
            why = std::string("unshare(") + (uid == 0 ? "CLONE_NEWNS" : "CLONE_NEWUSER|CLONE_NEWNS") +
                  ") failed: " + std::strerror(errno);
            return;
        }
        if (uid != 0) {  // map ourselves to ourselves in the new user namespace
            writeFile("/proc/self/setgroups", "deny");
            writeFile("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1");
            writeFile("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1");
        }
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
            why = std::string("mount of a private /dev/shm failed: ") + std::strerror(errno);
            return;
        }
        isolated = true;
    }
};
const Isolation gIsolation;

/// The first line of jackd's output that says what went wrong.
std::string jackdReason(const std::string& dir) {
    const std::string text = readText(dir + "/err") + "\n" + readText(dir + "/out");
    std::istringstream lines(text);
    std::string line, first;
    while (std::getline(lines, line)) {
        if (line.find("Too many servers") != std::string::npos) return line;
        if (first.empty() && (line.find("annot") != std::string::npos || line.find("ailed") != std::string::npos ||
                              line.find("rror") != std::string::npos))
            first = line;
    }
    return first.empty() ? "no message from jackd" : first;
}

}  // namespace

bool privateJackRegistry(std::string* why) {
    if (why) *why = gIsolation.why;
    return gIsolation.isolated;
}

std::string JackServer::log(size_t bytes) const {
    const std::string text = dir_.empty() ? "" : readText(dir_ + "/out") + readText(dir_ + "/err");
    // Repeated lines (one per cycle while the graph is stuck) once each, with their count.
    std::string out, previous;
    size_t repeats = 0;
    auto flush = [&] {
        if (repeats > 1) out += "  (" + std::to_string(repeats) + " times)";
        if (repeats) out += "\n";
    };
    for (size_t at = 0; at < text.size();) {
        const size_t end = std::min(text.find('\n', at), text.size());
        const std::string line = text.substr(at, end - at);
        at = end + 1;
        if (line == previous) {
            ++repeats;
            continue;
        }
        flush();
        out += line;
        previous = line;
        repeats = 1;
    }
    flush();
    return out.size() > bytes ? out.substr(out.size() - bytes) : out;
}

bool Child::running(int* status) {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == 0) return true;
    if (status) *status = st;
    pid_ = -1;
    return false;
}

JackServer::JackServer(uint32_t rate, uint32_t period, const std::string& name) {
    static std::atomic<int> counter{0};
    name_ = name.empty() ? "rackterm_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) : name;
    start(rate, period);
}

bool JackServer::start(uint32_t rate, uint32_t period) {
    ready_ = false;
    error_.clear();
    // Up front: on the machine's shared registry, a full one means jackd cannot start; say so now.
    if (!gIsolation.isolated)
        if (auto reg = engine::readJackRegistry(); reg && !reg->problem().empty()) {
            error_ = "jackd cannot start: " + reg->problem() + " (tests use a private /dev/shm where they can: " +
                     gIsolation.why + ")";
            return false;
        }
    // The readiness probe below fails until jackd listens; libjack would print each failure.
    jack_set_error_function([](const char*) {});
    jack_set_info_function([](const char*) {});
    if (dir_.empty()) dir_ = tempDir("jackd");
    pid_ = spawn({"jackd", "--no-realtime", "-d", "dummy", "-r", std::to_string(rate), "-p", std::to_string(period)},
                 {"JACK_DEFAULT_SERVER=" + name_, "JACK_NO_AUDIO_RESERVATION=1"}, dir_ + "/out", dir_ + "/err");
    if (pid_ <= 0) {
        error_ = "jackd could not be started (is jackd2 installed?)";
        return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it gave up: tell why
            pid_ = -1;
            error_ = "jackd (server " + name_ + ") exited at start: " + jackdReason(dir_);
            if (auto reg = engine::readJackRegistry(); reg && !reg->problem().empty()) error_ += "; " + reg->problem();
            return false;
        }
        jack_status_t st{};
        jack_client_t* c = jack_client_open("probe", static_cast<jack_options_t>(JackNoStartServer | JackServerName), &st,
                                            name_.c_str());
        if (c) {
            readyAt_ = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
            // The probe stays open while the server runs. Closed now, it would
            // leave at the moment other clients open, and libjack (jackd2 1.9.21)
            // may miss that removal in a client opening at the same time: when a
            // new client later takes the freed client number downstream of it,
            // it is never woken (`client = X was not finished`).
            probe_ = c;
            ready_ = true;
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    error_ = "jackd (server " + name_ + ") accepted no client within 15 s: " + jackdReason(dir_);
    return false;
}

JackServer::~JackServer() {
    stop(pid_, SIGTERM);
    if (probe_) jack_client_close(probe_);
    if (!dir_.empty()) {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
}

void JackServer::kill(int sig) {
    stop(pid_, sig);
    if (probe_) jack_client_close(probe_);  // its server is gone
    probe_ = nullptr;
    pid_ = -1;
    ready_ = false;
}

std::vector<float> Sound::channel(int c) const {
    std::vector<float> out(frames());
    for (size_t i = 0; i < out.size(); ++i) out[i] = samples[i * static_cast<size_t>(channels) + static_cast<size_t>(c)];
    return out;
}

Sound readSound(const std::string& path) {
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    if (!f) throw std::runtime_error("cannot read " + path);
    Sound s;
    s.rate = info.samplerate;
    s.channels = info.channels;
    s.samples.resize(static_cast<size_t>(info.frames) * static_cast<size_t>(info.channels));
    sf_readf_float(f, s.samples.data(), info.frames);
    sf_close(f);
    return s;
}

void writeSound(const std::string& path, const Sound& s, int format) {
    SF_INFO info{};
    info.samplerate = s.rate;
    info.channels = s.channels;
    info.format = format ? format : (SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
    if (!f) throw std::runtime_error("cannot write " + path);
    sf_writef_float(f, s.samples.data(), static_cast<sf_count_t>(s.frames()));
    sf_close(f);
}

double rmsDb(const std::vector<float>& x) {
    double sum = 0;
    for (float v : x) sum += static_cast<double>(v) * v;
    return 10.0 * std::log10(sum / static_cast<double>(x.size()) + 1e-30);
}

namespace {
void fft(std::vector<std::complex<double>>& a) {
    const size_t n = a.size();
    for (size_t i = 1, j = 0; i < n; ++i) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) std::swap(a[i], a[j]);
    }
    for (size_t len = 2; len <= n; len <<= 1) {
        const double ang = -2 * M_PI / static_cast<double>(len);
        const std::complex<double> wl(std::cos(ang), std::sin(ang));
        for (size_t i = 0; i < n; i += len) {
            std::complex<double> w(1);
            for (size_t k = 0; k < len / 2; ++k) {
                auto u = a[i + k], v = a[i + k + len / 2] * w;
                a[i + k] = u + v;
                a[i + k + len / 2] = u - v;
                w *= wl;
            }
        }
    }
}
}  // namespace

double bandEnergyDb(const std::vector<float>& x, int rate, double loHz, double hiHz) {
    const size_t n = 4096;
    double energy = 0;
    for (size_t start = 0; start + n <= x.size(); start += n / 2) {
        std::vector<std::complex<double>> a(n);
        for (size_t i = 0; i < n; ++i)
            a[i] = x[start + i] * (0.5 - 0.5 * std::cos(2 * M_PI * static_cast<double>(i) / static_cast<double>(n)));
        fft(a);
        for (size_t k = 0; k <= n / 2; ++k) {
            const double f = static_cast<double>(k) * rate / static_cast<double>(n);
            if (f >= loHz && f <= hiHz) energy += std::norm(a[k]);
        }
    }
    return 10.0 * std::log10(energy + 1e-30);
}

double zeroCrossingFrequency(const std::vector<float>& x, int rate) {
    double first = -1, last = -1;
    long count = 0;
    for (size_t i = 1; i < x.size(); ++i) {
        if (x[i - 1] < 0.0f && x[i] >= 0.0f) {
            const double t = static_cast<double>(i - 1) + x[i - 1] / (x[i - 1] - x[i]);
            if (first < 0) first = t;
            else ++count;
            last = t;
        }
    }
    return count > 0 ? count * rate / (last - first) : 0.0;
}

}  // namespace rackterm::test
