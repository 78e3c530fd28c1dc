#include <rackterm/loader/Isolation.hpp>
#include <rackterm/loader/Plugins.hpp>

#include <rackterm/common/BlockClock.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Text.hpp>

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

extern char** environ;

namespace rackterm::loader {

/// The start of the shared mapping. Fields the host writes before a
/// request's release store are read by the child after its acquire load,
/// and the other way round for a reply: each word has one writer at a time.
struct IsolatedProcessor::Shared {
    static constexpr uint32_t kMagic = 0x52544953;  // "RTIS"
    static constexpr uint32_t kVersion = 1;
    // [host, before the child starts]
    uint32_t magic = kMagic, version = kVersion;
    uint32_t inputs = 0, outputs = 0, maxBlockFrames = 0, paramCount = 0;
    double sampleRate = 0;
    int32_t realtimePriority = 0;
    uint32_t valuesOffset = 0, inOffset = 0, outOffset = 0;  // bytes from the mapping's start
    // [host -> child] one block
    alignas(64) std::atomic<uint32_t> request{0};  // futex word: the newest block posted
    uint32_t frames = 0;
    uint32_t valuesSerial = 0;  // moves when values[] holds new values
    uint32_t resetSerial = 0;   // moves when the instance must reset
    // [child -> host]
    alignas(64) std::atomic<uint32_t> reply{0};  // futex word: the newest block done
    alignas(64) std::atomic<uint32_t> ready{0};  // 0 starting, 1 serving, 2 failed (error[])
    uint32_t latency = 0;
    uint64_t blocksDone = 0;  // blocks this child has processed
    char error[512] = {};
};

namespace {

constexpr uint64_t kSpinNs = 10'000;    // the host spins this long for a reply before sleeping on the futex
constexpr uint64_t kSliceNs = 2'000'000;   // futex waits in slices: the child's pidfd is looked at between them

uint64_t nowNs() noexcept {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

double nowSeconds() noexcept { return static_cast<double>(nowNs()) * 1e-9; }

/// FUTEX_WAIT on a word of a shared mapping (not private: two processes use it).
void futexWait(std::atomic<uint32_t>* word, uint32_t expected, uint64_t timeoutNs) noexcept {
    timespec ts{static_cast<time_t>(timeoutNs / 1'000'000'000ULL), static_cast<long>(timeoutNs % 1'000'000'000ULL)};
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futexWake(std::atomic<uint32_t>* word) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

inline void cpuRelax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

/// True when a pidfd says its process ended (a zero-timeout poll).
bool ended(int pidfd) noexcept {
    if (pidfd < 0) return false;
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

size_t align64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

std::string milliseconds(double ns) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f ms", ns * 1e-6);
    return buf;
}

std::string signalName(int sig) {
    const char* name = sigabbrev_np(sig);
    return name ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

}  // namespace

Instance::Instance(std::shared_ptr<Module> module, std::shared_ptr<IsolatedProcessor> isolated) noexcept
    : module_(std::move(module)),
      instance_(isolated->instance()),
      descriptor_(&isolated->descriptor()),
      isolated_(std::move(isolated)) {}

Result<std::shared_ptr<IsolatedProcessor>> IsolatedProcessor::start(std::shared_ptr<Module> module,
                                                                    double sampleRateHz, uint32_t maxBlockFrames,
                                                                    const std::vector<float>& values,
                                                                    IsolationOptions options) {
    std::shared_ptr<IsolatedProcessor> p(new IsolatedProcessor);
    const rackterm_processor_v2& d = module->descriptor();
    const std::string who = "node '" + options.label + "' (" + d.id + ", isolated)";
    if (module->fd() < 0 && !module->plugin()) return Error{who + ": the module's bytes were not kept; load it again"};
    p->module_ = std::move(module);
    p->options_ = std::move(options);
    p->sampleRate_ = sampleRateHz;
    p->maxBlockFrames_ = maxBlockFrames;
    p->inputs_ = d.input_channels;
    p->outputs_ = d.output_channels;
    p->paramCount_ = d.param_count;
    p->offline_.store(p->options_.offline, std::memory_order_relaxed);
    p->pending_.assign(values.begin(), values.end());
    p->pending_.resize(d.param_count, 0.0f);

    // The host's descriptor: the module's names and table, our functions.
    rackterm_processor_v2& h = p->descriptor_;
    h.abi_version = RACKTERM_ABI_VERSION;
    h.struct_size = sizeof(rackterm_processor_v2);
    h.id = d.id;
    h.name = d.name;
    h.version = d.version;
    h.input_channels = d.input_channels;
    h.output_channels = d.output_channels;
    h.params = d.params;
    h.param_count = d.param_count;
    h.create = [](double, uint32_t) -> rackterm_instance* { return nullptr; };  // instances come from start()
    h.destroy = [](rackterm_instance*) {};  // the owner (shared_ptr) ends the child
    h.reset = &IsolatedProcessor::reset;
    h.apply_plain_values = &IsolatedProcessor::applyPlainValues;
    h.process = &IsolatedProcessor::process;
    h.last_error = []() -> const char* { return ""; };
    h.latency_frames = &IsolatedProcessor::latency;

    // Shared memory: the header, the values, the input and output blocks.
    const size_t valuesAt = align64(sizeof(Shared));
    const size_t inAt = align64(valuesAt + sizeof(float) * std::max<uint32_t>(1, p->paramCount_));
    const size_t outAt = align64(inAt + sizeof(float) * p->inputs_ * maxBlockFrames);
    p->mapBytes_ = align64(outAt + sizeof(float) * p->outputs_ * maxBlockFrames);
    p->memfd_ = static_cast<int>(::syscall(SYS_memfd_create, "rackterm-isolated", MFD_CLOEXEC));
    if (p->memfd_ < 0 || ::ftruncate(p->memfd_, static_cast<off_t>(p->mapBytes_)) != 0)
        return Error{who + ": cannot make shared memory (" + std::strerror(errno) + ")"};
    // Populated now: the audio thread's first block must not fault pages in.
    p->map_ = ::mmap(nullptr, p->mapBytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p->memfd_, 0);
    if (p->map_ == MAP_FAILED) {
        p->map_ = nullptr;
        return Error{who + ": cannot map shared memory (" + std::strerror(errno) + ")"};
    }
    auto* base = static_cast<char*>(p->map_);
    p->shared_ = new (base) Shared;
    p->shared_->inputs = p->inputs_;
    p->shared_->outputs = p->outputs_;
    p->shared_->maxBlockFrames = maxBlockFrames;
    p->shared_->paramCount = p->paramCount_;
    p->shared_->sampleRate = sampleRateHz;
    p->shared_->realtimePriority = p->options_.realtimePriority;
    p->shared_->valuesOffset = static_cast<uint32_t>(valuesAt);
    p->shared_->inOffset = static_cast<uint32_t>(inAt);
    p->shared_->outOffset = static_cast<uint32_t>(outAt);
    p->values_ = reinterpret_cast<float*>(base + valuesAt);
    p->in_ = reinterpret_cast<float*>(base + inAt);
    p->out_ = reinterpret_cast<float*>(base + outAt);
    std::copy(p->pending_.begin(), p->pending_.end(), p->values_);

    std::string why;
    if (!p->spawn(why)) return Error{who + ": " + why};
    for (;;) {
        const int r = p->checkStart(nowSeconds(), why);
        if (r < 0) return Error{who + ": " + why};
        if (r > 0) break;
        futexWait(&p->shared_->ready, 0, 5'000'000);
    }
    return p;
}

IsolatedProcessor::~IsolatedProcessor() {
    stopChild();
    if (map_) ::munmap(map_, mapBytes_);
    if (memfd_ >= 0) ::close(memfd_);
}

bool IsolatedProcessor::spawn(std::string& why) {
    // A fresh start: the counters from zero, the newest values for create().
    shared_->request.store(0, std::memory_order_relaxed);
    shared_->reply.store(0, std::memory_order_relaxed);
    shared_->ready.store(0, std::memory_order_relaxed);
    shared_->valuesSerial = shared_->resetSerial = 0;
    shared_->frames = 0;
    shared_->blocksDone = 0;
    shared_->error[0] = '\0';
    // The child gets the mapping as fd 3 and the module's bytes as fd 4:
    // duplicates above both, so that no dup2 overwrites the other's source.
    // A plugin (lv2:, ladspa:) is found again by its name instead: fd 4 is then /dev/null.
    const bool plugin = module_->plugin() != nullptr;
    const int memfd = ::fcntl(memfd_, F_DUPFD_CLOEXEC, 10);
    const int bytes = plugin ? ::open("/dev/null", O_RDONLY | O_CLOEXEC) : ::fcntl(module_->fd(), F_DUPFD_CLOEXEC, 10);
    if (memfd < 0 || bytes < 0) {
        why = std::string("cannot pass descriptors to the sandbox (") + std::strerror(errno) + ")";
        if (memfd >= 0) ::close(memfd);
        if (bytes >= 0) ::close(bytes);
        return false;
    }
    std::string host = std::to_string(::getpid());
    std::vector<std::string> args = {options_.sandbox, "isolate", host, options_.label};
    if (plugin) args.push_back(module_->path());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, memfd, 3);
    posix_spawn_file_actions_adddup2(&actions, bytes, 4);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 5);  // nothing else of the host's
    // The child starts with no signal blocked and default dispositions, whatever the calling thread had.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    const int r = posix_spawn(&pid, options_.sandbox.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    ::close(memfd);
    ::close(bytes);
    if (r != 0) {
        why = "cannot start " + printable(options_.sandbox, 200) + " (" + std::strerror(r) +
              "); install rackterm-sandbox next to rackterm or set RACKTERM_SANDBOX";
        return false;
    }
    pid_ = pid;
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    starting_ = true;
    startedAt_ = nowSeconds();
    return true;
}

int IsolatedProcessor::checkStart(double now, std::string& why) {
    const uint32_t ready = shared_->ready.load(std::memory_order_acquire);
    if (ready == 1) {
        starting_ = false;
        latency_ = shared_->latency;
        livePidfd_.store(pidfd_, std::memory_order_relaxed);
        gone_.store(false, std::memory_order_relaxed);
        stuck_.store(false, std::memory_order_relaxed);
        epoch_.fetch_add(1, std::memory_order_relaxed);
        state_.store(kUp, std::memory_order_release);  // the audio thread may use it from its next block
        return 1;
    }
    int status = 0;
    const bool exited = ready == 2 || (pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_);
    if (ready == 2) {
        why = std::string(shared_->error, strnlen(shared_->error, sizeof shared_->error));
        stopChild();
        starting_ = false;
        return -1;
    }
    if (exited) {
        pid_ = -1;
        stopChild();
        starting_ = false;
        why = WIFSIGNALED(status) ? "crashed (" + signalName(WTERMSIG(status)) + ") while starting"
                                  : "the sandbox ended while starting (exit status " +
                                        std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
        return -1;
    }
    if (now - startedAt_ > kIsolationStartSeconds) {
        stopChild();
        starting_ = false;
        why = "did not start within " + std::to_string(static_cast<int>(kIsolationStartSeconds)) +
              " s (an endless loop in create()?)";
        return -1;
    }
    return 0;
}

void IsolatedProcessor::stopChild() noexcept {
    livePidfd_.store(-1, std::memory_order_relaxed);
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    if (pidfd_ >= 0) {
        ::close(pidfd_);
        pidfd_ = -1;
    }
}

void IsolatedProcessor::fail(double now, const std::string& why, const std::string& shortStatus,
                             std::vector<std::string>& log) {
    ++failureCount_;
    failedAt_ = now;
    failures_.push_back(now);
    std::erase_if(failures_, [&](double t) { return now - t > kIsolationFailureWindowSeconds; });
    status_ = shortStatus;
    statusAt_ = now;
    const std::string who = "node '" + options_.label + "'";
    if (failures_.size() >= kIsolationMaxFailures) {
        gaveUp_ = true;
        log.push_back(who + ": " + why + "; " + std::to_string(failures_.size()) + " failures in " +
                      std::to_string(static_cast<int>(kIsolationFailureWindowSeconds)) +
                      " s: it stays bypassed; `reload " + options_.label + "` starts it again");
        return;
    }
    log.push_back(who + ": " + why + "; restarting it with its current values");
    std::string spawnWhy;
    if (!spawn(spawnWhy)) {
        gaveUp_ = true;
        log.push_back(who + ": " + spawnWhy);
    }
}

std::vector<std::string> IsolatedProcessor::supervise(double now, bool wait) {
    std::vector<std::string> log;
    if (gaveUp_) return log;
    const uint64_t late = lateBlocks_.load(std::memory_order_relaxed);
    if (late != reportedLate_ && now - lateReportAt_ >= 1.0) {
        const double ns = lateNanoseconds_.load(std::memory_order_relaxed);
        const uint64_t blocks = late - reportedLate_;
        log.push_back("node '" + options_.label + "': late: no reply within " + milliseconds(ns) + " (" +
                      std::to_string(blocks) + (blocks == 1 ? " block" : " blocks") + " played dry)");
        reportedLate_ = late;
        lateReportAt_ = now;
        status_ = "late " + milliseconds(ns);
        statusAt_ = now;
    }
    if (starting_) {
        std::string why;
        int r = checkStart(now, why);
        while (wait && r == 0) {  // offline: the next block waits for the new child
            futexWait(&shared_->ready, 0, 5'000'000);
            r = checkStart(nowSeconds(), why);
        }
        if (r > 0) {
            char took[48];
            std::snprintf(took, sizeof took, " in %.0f ms", (nowSeconds() - failedAt_) * 1000.0);
            log.push_back("node '" + options_.label + "': restarted" + took);
        }
        else if (r < 0) fail(now, why, "failed", log);
        return log;
    }
    // A child busy on one block for kIsolationHungSeconds is killed, even when
    // the audio thread does not call it (a bypassed node, a server away).
    if (pid_ > 0 && !reaped_) {
        const uint32_t request = shared_->request.load(std::memory_order_relaxed);
        const bool busy = request != shared_->reply.load(std::memory_order_relaxed);
        if (!busy) {
            busySince_ = -1;
        } else if (busySince_ < 0 || request != busyRequest_) {  // busy on another block than last seen: time it anew
            busySince_ = now;
            busyRequest_ = request;
        } else if (now - busySince_ > kIsolationHungSeconds && !killedHung_) {
            ::kill(pid_, SIGKILL);
            killedHung_ = true;
        }
    }
    // A child that ended, or one the audio thread found stuck.
    int status = 0;
    if (!reaped_ && pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        reaped_ = true;
        reapedStatus_ = status;
        pid_ = -1;
        gone_.store(true, std::memory_order_relaxed);  // ends the audio thread's wait at its next look
    }
    const bool stuck = stuck_.load(std::memory_order_acquire);
    if (!reaped_ && !stuck) return log;
    // The audio thread must be out of the shared memory before a new child gets it.
    uint32_t up = kUp;
    if (!state_.compare_exchange_strong(up, kDown, std::memory_order_acq_rel) && up == kBusy) return log;
    const uint64_t block = shared_->blocksDone + 1;
    std::string why, shortStatus;
    if (reaped_ && killedHung_) {
        shortStatus = "stuck";
        why = "stuck: no reply for " + std::to_string(static_cast<int>(kIsolationHungSeconds)) +
              " s (killed in its block " + std::to_string(block) + ")";
    } else if (reaped_) {
        status = reapedStatus_;
        shortStatus = WIFSIGNALED(status) ? "crashed (" + signalName(WTERMSIG(status)) + ")"
                                          : "crashed (exit " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
        why = shortStatus + " in its block " + std::to_string(block);
    } else if (offline_.load(std::memory_order_relaxed)) {
        shortStatus = "stuck";
        why = "late: no reply within " + std::to_string(static_cast<int>(kIsolationOfflineDeadlineSeconds)) +
              " s (stuck in its block " + std::to_string(block) + ")";
    } else {
        shortStatus = "stuck";
        const uint32_t lateIn = stuckLate_.load(std::memory_order_relaxed);
        const uint32_t of = stuckBlocks_.load(std::memory_order_relaxed);
        why = "late: no reply in time in " + std::to_string(lateIn) + " of " + std::to_string(of) + " blocks over " +
              std::to_string(static_cast<int>(kIsolationStuckSeconds * 1000)) + " ms (stuck or too slow in its block " +
              std::to_string(block) + ")";
    }
    reaped_ = false;
    killedHung_ = false;
    busySince_ = -1;
    stopChild();
    stuck_.store(false, std::memory_order_relaxed);
    fail(now, why, shortStatus, log);
    if (wait && starting_) {
        auto more = supervise(now, true);
        log.insert(log.end(), more.begin(), more.end());
    }
    return log;
}

std::string IsolatedProcessor::status(double now) const {
    if (gaveUp_) return "failed";
    if (starting_) return "restarting";
    if (!status_.empty() && now - statusAt_ < 5.0) return status_;
    return {};
}

// ---- the audio thread ---------------------------------------------------

void IsolatedProcessor::process(rackterm_instance* self, const float* const* in, float* const* out, uint32_t frames) {
    reinterpret_cast<IsolatedProcessor*>(self)->run(in, out, frames);
}

void IsolatedProcessor::applyPlainValues(rackterm_instance* self, const float* values, size_t len) {
    auto* p = reinterpret_cast<IsolatedProcessor*>(self);
    std::copy_n(values, std::min<size_t>(len, p->pending_.size()), p->pending_.begin());
    p->valuesDirty_ = true;
}

void IsolatedProcessor::reset(rackterm_instance* self) { reinterpret_cast<IsolatedProcessor*>(self)->resetPending_ = true; }

uint32_t IsolatedProcessor::latency(rackterm_instance* self) { return reinterpret_cast<IsolatedProcessor*>(self)->latency_; }

bool IsolatedProcessor::waitReply(uint32_t seq, uint64_t deadline) noexcept {
    std::atomic<uint32_t>& reply = shared_->reply;
    const uint64_t spinUntil = std::min(deadline, nowNs() + kSpinNs);
    do {
        if (reply.load(std::memory_order_acquire) == seq) return true;
        cpuRelax();
    } while (nowNs() < spinUntil);
    const int pidfd = livePidfd_.load(std::memory_order_relaxed);
    for (;;) {
        const uint32_t seen = reply.load(std::memory_order_acquire);
        if (seen == seq) return true;
        const uint64_t now = nowNs();
        if (now >= deadline || gone_.load(std::memory_order_relaxed)) return false;
        futexWait(&reply, seen, std::min(deadline - now, kSliceNs));
        if (reply.load(std::memory_order_acquire) == seq) return true;
        if (reply.load(std::memory_order_relaxed) == seen && ended(pidfd)) {  // no word from it: is it still there?
            gone_.store(true, std::memory_order_relaxed);
            return false;
        }
    }
}

void IsolatedProcessor::run(const float* const* in, float* const* out, uint32_t frames) noexcept {
    auto silence = [&] {
        for (uint32_t c = 0; c < outputs_; ++c) std::memset(out[c], 0, frames * sizeof(float));
        fault_.store(true, std::memory_order_relaxed);
    };
    uint32_t up = kUp;
    if (frames > maxBlockFrames_ || !state_.compare_exchange_strong(up, kBusy, std::memory_order_acq_rel)) {
        silence();
        return;
    }
    if (const uint32_t epoch = epoch_.load(std::memory_order_relaxed); epoch != seenEpoch_) {  // a new child
        seenEpoch_ = epoch;
        seq_ = 0;
        windowBlocks_ = windowLate_ = 0;
        awaiting_ = false;
        valuesDirty_ = true;
    }
    const bool offline = offline_.load(std::memory_order_relaxed);
    const double periodNs = 1e9 * static_cast<double>(maxBlockFrames_) / sampleRate_;
    const uint64_t deadline = static_cast<uint64_t>(offline ? kIsolationOfflineDeadlineSeconds * 1e9
                                                            : kIsolationDeadlineShare * periodNs);
    // The child ended (a crash: the control thread names it), or is stuck:
    // silence, and the control thread takes the child from here.
    auto down = [&](bool stuck) {
        silence();
        stuck_.store(stuck, std::memory_order_relaxed);
        state_.store(kDown, std::memory_order_release);
    };
    // Every block counts in a window of kIsolationStuckSeconds: a child late
    // in 4 of 5 blocks (at least kIsolationStuckBlocks) of a window is stuck
    // or far too slow. Offline, one block that waited its whole second is.
    auto windowSaysStuck = [&](bool wasLate, uint64_t now) {
        if (windowBlocks_ == 0) windowStart_ = now;
        ++windowBlocks_;
        windowLate_ += wasLate ? 1 : 0;
        if (static_cast<double>(now - windowStart_) < kIsolationStuckSeconds * 1e9) return false;
        const bool stuck = windowLate_ >= kIsolationStuckBlocks && windowLate_ * 5 >= windowBlocks_ * 4;
        if (stuck) {
            stuckLate_.store(windowLate_, std::memory_order_relaxed);
            stuckBlocks_.store(windowBlocks_, std::memory_order_relaxed);
        }
        windowBlocks_ = windowLate_ = 0;
        return stuck;
    };
    // No reply in time for this block: silence.
    auto late = [&](uint64_t now, uint64_t waitedNs) {
        lateBlocks_.fetch_add(1, std::memory_order_relaxed);
        if (waitedNs) lateNanoseconds_.store(static_cast<uint32_t>(std::min<uint64_t>(waitedNs, UINT32_MAX)),
                                             std::memory_order_relaxed);
        if (windowSaysStuck(true, now) || offline) {
            down(true);
            return;
        }
        silence();
        state_.store(kUp, std::memory_order_release);
    };
    if (awaiting_) {  // the child is still on an earlier block
        if (shared_->reply.load(std::memory_order_acquire) != seq_) {
            if (ended(livePidfd_.load(std::memory_order_relaxed))) {
                gone_.store(true, std::memory_order_relaxed);
                down(false);
            } else {
                late(nowNs(), 0);
            }
            return;
        }
        awaiting_ = false;
    }
    if (valuesDirty_) {
        std::copy(pending_.begin(), pending_.end(), values_);
        ++shared_->valuesSerial;
        valuesDirty_ = false;
    }
    if (resetPending_) {
        ++shared_->resetSerial;
        resetPending_ = false;
    }
    for (uint32_t c = 0; c < inputs_; ++c)
        std::memcpy(in_ + static_cast<size_t>(c) * maxBlockFrames_, in[c], frames * sizeof(float));
    shared_->frames = frames;
    const uint32_t seq = ++seq_;
    const uint64_t start = nowNs();
    shared_->request.store(seq, std::memory_order_release);
    futexWake(&shared_->request);
    // Live, every isolated node of a block waits against the same deadline
    // (the block's start + the share), so several late ones cannot add up
    // past the period.
    const uint64_t blockStart = tBlockStartNs;
    const uint64_t from =
        !offline && blockStart > 0 && blockStart <= start && static_cast<double>(start - blockStart) < periodNs
            ? blockStart
            : start;
    if (!waitReply(seq, from + deadline)) {
        awaiting_ = true;
        if (gone_.load(std::memory_order_relaxed)) {
            down(false);
            return;
        }
        const uint64_t now = nowNs();
        late(now, now - start);
        return;
    }
    for (uint32_t c = 0; c < outputs_; ++c)
        std::memcpy(out[c], out_ + static_cast<size_t>(c) * maxBlockFrames_, frames * sizeof(float));
    fault_.store(false, std::memory_order_relaxed);
    if (windowSaysStuck(false, nowNs())) {  // in time now, but late in most blocks of the window
        stuck_.store(true, std::memory_order_relaxed);
        state_.store(kDown, std::memory_order_release);
        return;
    }
    state_.store(kUp, std::memory_order_release);
}

// ---- the child -------------------------------------------------------------

int runIsolatedChild(int sharedFd, int moduleFd, pid_t host, const std::string& plugin) {
    using Shared = IsolatedProcessor::Shared;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the host's end is ours
    if (::getppid() != host) return 0;
    struct stat st {};
    if (::fstat(sharedFd, &st) != 0 || static_cast<size_t>(st.st_size) < sizeof(Shared)) return 2;
    const size_t bytes = static_cast<size_t>(st.st_size);
    void* map = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, sharedFd, 0);
    if (map == MAP_FAILED) return 2;
    auto* s = static_cast<Shared*>(map);
    auto* base = static_cast<char*>(map);
    auto failStart = [&](const std::string& why) {
        std::snprintf(s->error, sizeof s->error, "%s", why.c_str());
        s->ready.store(2, std::memory_order_release);
        futexWake(&s->ready);
        return 2;
    };
    if (s->magic != Shared::kMagic || s->version != Shared::kVersion) return failStart("shared memory of another rackterm version");
    resetPluginsInPlace(true);  // this process is the plugin's own: a reset may allocate here
    auto module = plugin.empty() ? loadModule("/proc/self/fd/" + std::to_string(moduleFd))
                                 : loadModule(plugin, s->sampleRate);
    if (!module) {
        std::string e = module.error();
        if (const size_t colon = e.find(": "); colon != std::string::npos) e.erase(0, colon + 2);
        return failStart(e);
    }
    const rackterm_processor_v2& d = module.value()->descriptor();
    if (d.input_channels != s->inputs || d.output_channels != s->outputs || d.param_count != s->paramCount)
        return failStart("the module in the sandbox is not the one the host loaded");
    auto instance = createInstance(module.value(), s->sampleRate, s->maxBlockFrames);
    if (!instance) {
        std::string e = instance.error();
        if (const size_t colon = e.find(": "); colon != std::string::npos) e.erase(0, colon + 2);
        return failStart(e);
    }
    rackterm_instance* inst = instance.value()->get();
    const auto* values = reinterpret_cast<const float*>(base + s->valuesOffset);
    const auto* in = reinterpret_cast<const float*>(base + s->inOffset);
    auto* out = reinterpret_cast<float*>(base + s->outOffset);
    d.apply_plain_values(inst, values, s->paramCount);
    s->latency = latencyFrames(d, inst);
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040);  // flush denormals to zero, as the host's audio thread does
#endif
    if (s->realtimePriority > 0) {
        sched_param sp{};
        sp.sched_priority = s->realtimePriority;
        (void)::sched_setscheduler(0, SCHED_FIFO, &sp);  // without the right, it runs at normal priority
    }
    const float* ins[kMaxProcessorChannels];
    float* outs[kMaxProcessorChannels];
    for (uint32_t c = 0; c < s->inputs; ++c) ins[c] = in + static_cast<size_t>(c) * s->maxBlockFrames;
    for (uint32_t c = 0; c < s->outputs; ++c) outs[c] = out + static_cast<size_t>(c) * s->maxBlockFrames;
    uint32_t done = 0, valuesSerial = 0, resetSerial = 0;
    s->ready.store(1, std::memory_order_release);
    futexWake(&s->ready);
    for (;;) {
        const uint32_t request = s->request.load(std::memory_order_acquire);
        if (request == done) {
            futexWait(&s->request, done, 1'000'000'000ULL);
            // Still no block (a time-out): is the host still there?
            if (s->request.load(std::memory_order_relaxed) == done && ::getppid() != host) return 0;
            continue;
        }
        if (s->valuesSerial != valuesSerial) {
            valuesSerial = s->valuesSerial;
            d.apply_plain_values(inst, values, s->paramCount);
        }
        if (s->resetSerial != resetSerial) {
            resetSerial = s->resetSerial;
            d.reset(inst);
        }
        d.process(inst, ins, outs, std::min(s->frames, s->maxBlockFrames));
        ++s->blocksDone;
        done = request;
        s->reply.store(done, std::memory_order_release);
        futexWake(&s->reply);
    }
}

Result<std::unique_ptr<Instance>> createIsolatedInstance(const std::shared_ptr<Module>& module, double sampleRateHz,
                                                         uint32_t maxBlockFrames, const std::vector<float>& values,
                                                         IsolationOptions options) {
    auto isolated = IsolatedProcessor::start(module, sampleRateHz, maxBlockFrames, values, std::move(options));
    if (!isolated) return Error{isolated.error()};
    return std::make_unique<Instance>(module, std::move(isolated.value()));
}

}  // namespace rackterm::loader
