// Isolated processors: one processor instance run in a child process
// (rackterm-sandbox), so that a crash, an abort or an endless loop in it
// costs that node a block, not the host.
//
// The host side (IsolatedProcessor) looks like any processor to the rack: it
// has a descriptor (the module's id, names, channels and parameter table,
// with the host's own functions) and an instance. Its process() copies the
// block's input (input_channels x frames, non-interleaved float) into shared
// memory, wakes the child (one futex wake), and waits for the child's wake
// with the output until the block's deadline: a short spin, then a futex wait
// (FUTEX_WAIT on a word of the shared mapping; the child is watched through a
// pidfd meanwhile). No allocation and no lock on the audio thread; parameter
// values (plain values, table order) travel with the next block.
//
// When no reply comes in time (a crash, a late or stuck child) the node
// outputs silence for that block and raises its fault flag: the rack fades
// the node to its dry signal (its bypass crossfade) until the child replies
// in time again. The control thread (supervise()) reaps a child that ended,
// kills one that is stuck or far too slow (late in most blocks for a quarter second),
// and starts a new child with the node's current values; after
// kIsolationMaxFailures failures within kIsolationFailureWindowSeconds the
// node stays faded out until a new instance replaces it (`reload NODE`).
//
// Threads: start, supervise, status and the destructor are [control];
// the descriptor's process, apply_plain_values and reset are [audio].
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/loader/Loader.hpp>
#include <rackterm/processor.h>

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rackterm::loader {

/// A child that did not reply in time in 4 of 5 blocks of a
/// kIsolationStuckSeconds window, and in at least kIsolationStuckBlocks of
/// them (offline: one block that waited its whole deadline), is stuck or far
/// too slow: it is killed and started again. Back-to-back blocks after one
/// hiccup, or a child starved for a few milliseconds by a busy machine, are
/// late blocks, not a stuck child.
inline constexpr uint32_t kIsolationStuckBlocks = 8;
inline constexpr double kIsolationStuckSeconds = 0.25;
/// Failures (crash, stuck, a start that fails) within the window after which
/// the node stays faded out.
inline constexpr uint32_t kIsolationMaxFailures = 3;
inline constexpr double kIsolationFailureWindowSeconds = 10.0;
/// Seconds a child may work on one block, whether or not the audio thread
/// still calls it (a bypassed node, a JACK server away), before it is killed.
inline constexpr double kIsolationHungSeconds = 2.0;
/// Seconds a child has to load the module and create its instance.
inline constexpr double kIsolationStartSeconds = 3.0;
/// Live: the share of the period (the largest block's frames / sample
/// rate) the child has to reply; the rest of the period is the other nodes'.
inline constexpr double kIsolationDeadlineShare = 0.7;
/// Offline render: seconds a child has to reply to one block.
inline constexpr double kIsolationOfflineDeadlineSeconds = 1.0;

/// How to start a child.
struct IsolationOptions {
    std::string sandbox;       ///< path of the rackterm-sandbox executable
    std::string label;         ///< the node's id, for messages
    int realtimePriority = 0;  ///< SCHED_FIFO priority for the child (JACK's client priority), 0 = none
    bool offline = false;      ///< offline render: kIsolationOfflineDeadlineSeconds per block
};

/// The host side of one processor instance in a child process.
class IsolatedProcessor {
public:
    /// [control] Start a child that loads `module`'s file (the bytes the host
    /// loaded, passed as a descriptor), creates an instance at
    /// `sampleRateHz` for blocks of at most `maxBlockFrames` frames and
    /// applies `values` (plain values, table order). Waits for it up to
    /// kIsolationStartSeconds. Errors (one line): the sandbox cannot start,
    /// the child's load or create error, a crash or no answer while
    /// starting, shared memory that cannot be made.
    static Result<std::shared_ptr<IsolatedProcessor>> start(std::shared_ptr<Module> module, double sampleRateHz,
                                                            uint32_t maxBlockFrames, const std::vector<float>& values,
                                                            IsolationOptions options);
    /// [control] Kills the child (SIGKILL) and reaps it.
    ~IsolatedProcessor();
    IsolatedProcessor(const IsolatedProcessor&) = delete;
    IsolatedProcessor& operator=(const IsolatedProcessor&) = delete;

    /// The module's descriptor with the host's functions: what the rack calls.
    const rackterm_processor_v2& descriptor() const noexcept { return descriptor_; }
    rackterm_instance* instance() noexcept { return reinterpret_cast<rackterm_instance*>(this); }
    /// [any] True while the newest block was not the child's output (it was
    /// silence): the rack fades the node to dry while it is set.
    const std::atomic<bool>& fault() const noexcept { return fault_; }
    /// [control] Deadlines of an offline render (true) or of live blocks.
    void setOffline(bool offline) noexcept { offline_.store(offline, std::memory_order_relaxed); }

    /// [control, often] Reap a child that ended, kill one that is stuck,
    /// start a new one (with `wait`, as offline: until it is ready, else
    /// across calls). Returns the log lines for what happened ("crashed
    /// (SIGSEGV) in block 1001; restarting", "late: no reply within 3.7 ms",
    /// rate-limited to one a second).
    std::vector<std::string> supervise(double nowSeconds, bool wait);
    /// [control] What the console shows beside the node: "" when it plays,
    /// else "crashed (SIGSEGV)", "late 4.1 ms", "restarting", "failed".
    std::string status(double nowSeconds) const;
    /// [control] True once the child failed kIsolationMaxFailures times in
    /// the window: the node stays faded out.
    bool gaveUp() const noexcept { return gaveUp_; }
    /// [control] Failures so far (crashes, stuck children, failed starts).
    uint32_t failureCount() const noexcept { return failureCount_; }
    /// [control] Blocks that got no reply in time, so far.
    uint64_t lateBlocks() const noexcept { return lateBlocks_.load(std::memory_order_relaxed); }
    /// [control] True while supervise() has work: a child starting, one the
    /// audio thread found ended or stuck (poll the control loop often then).
    bool needsSupervision() const noexcept {
        return !gaveUp_ && (starting_ || reaped_ || stuck_.load(std::memory_order_relaxed) ||
                            gone_.load(std::memory_order_relaxed) || state_.load(std::memory_order_relaxed) == kDown);
    }
    /// [control] The child's process id, -1 while none runs.
    pid_t pid() const noexcept { return pid_; }

private:
    struct Shared;
    friend int runIsolatedChild(int sharedFd, int moduleFd, pid_t host, const std::string& plugin);
    IsolatedProcessor() = default;
    bool spawn(std::string& why);
    /// [control] Wait for a starting child: 1 ready, 0 not yet, -1 failed (`why`).
    int checkStart(double nowSeconds, std::string& why);
    void stopChild() noexcept;
    /// Count a failure (`why` for the log, `shortStatus` for the console) and start a new child or give up.
    void fail(double nowSeconds, const std::string& why, const std::string& shortStatus, std::vector<std::string>& log);

    // [audio] the descriptor's functions
    static void process(rackterm_instance* self, const float* const* in, float* const* out, uint32_t frames);
    static void applyPlainValues(rackterm_instance* self, const float* values, size_t len);
    static void reset(rackterm_instance* self);
    static uint32_t latency(rackterm_instance* self);
    void run(const float* const* in, float* const* out, uint32_t frames) noexcept;
    bool waitReply(uint32_t seq, uint64_t deadlineNs) noexcept;

    enum : uint32_t { kDown = 0, kUp = 1, kBusy = 2 };

    std::shared_ptr<Module> module_;
    IsolationOptions options_;
    rackterm_processor_v2 descriptor_{};
    double sampleRate_ = 0;
    uint32_t maxBlockFrames_ = 0, inputs_ = 0, outputs_ = 0, paramCount_ = 0;
    // shared memory
    int memfd_ = -1;
    void* map_ = nullptr;
    size_t mapBytes_ = 0;
    Shared* shared_ = nullptr;
    float* values_ = nullptr;  // in the mapping: the values the child applies
    float* in_ = nullptr;      // inputs_ x maxBlockFrames_ in the mapping
    float* out_ = nullptr;     // outputs_ x maxBlockFrames_
    // the child [control]
    pid_t pid_ = -1;
    int pidfd_ = -1;
    std::atomic<int> livePidfd_{-1};  // the pidfd the audio thread may poll (-1 while none)
    double startedAt_ = 0;
    double failedAt_ = 0;  // when the newest failure was counted (seconds)
    bool starting_ = false;
    bool reaped_ = false;  // the child ended and was reaped; its status is kept until the failure is counted
    bool killedHung_ = false;  // we killed it: busy on one block for kIsolationHungSeconds
    double busySince_ = -1;    // when it was first seen busy on block busyRequest_
    uint32_t busyRequest_ = 0;
    int reapedStatus_ = 0;
    bool gaveUp_ = false;
    uint32_t failureCount_ = 0;
    std::vector<double> failures_;  // times of recent failures
    std::string status_;
    double statusAt_ = -1e9;
    uint64_t reportedLate_ = 0;
    double lateReportAt_ = -1e9;
    uint32_t latency_ = 0;
    // between the threads
    std::atomic<uint32_t> state_{kDown};     // kUp: the audio thread may use the child; kBusy: it does
    std::atomic<uint32_t> epoch_{0};         // a new child: the audio thread starts its counts again
    std::atomic<bool> stuck_{false};         // [audio -> control] no reply for kIsolationStuckBlocks
    std::atomic<bool> gone_{false};          // [audio -> control] the child's pidfd said it ended
    std::atomic<bool> fault_{false};
    std::atomic<bool> offline_{false};
    std::atomic<uint64_t> lateBlocks_{0};
    std::atomic<uint32_t> lateNanoseconds_{0};  // the newest wait that ran out
    std::atomic<uint32_t> stuckLate_{0}, stuckBlocks_{0};  // the window that made it stuck (for the log)
    // [audio]
    uint32_t seenEpoch_ = UINT32_MAX;
    uint32_t seq_ = 0;
    uint64_t windowStart_ = 0;  // steady-clock ns: the window blocks are counted in
    uint32_t windowBlocks_ = 0, windowLate_ = 0;
    bool awaiting_ = false;  // the child still works on block seq_
    bool valuesDirty_ = true;
    bool resetPending_ = false;
    std::vector<float> pending_;  // values from apply_plain_values, sent with the next block
};

/// The child's side: run by `rackterm-sandbox isolate`. Maps the shared
/// memory at `sharedFd`, loads the module from `moduleFd` (or the LV2 or
/// LADSPA plugin named `plugin`, when given), creates the instance, then
/// serves blocks until the host goes away. Returns the exit
/// status (0 when the host ended it, 2 when starting failed; the reason is
/// in the shared memory).
int runIsolatedChild(int sharedFd, int moduleFd, pid_t host, const std::string& plugin = {});

/// [control] Start an isolated instance of `module` (IsolatedProcessor::start)
/// wrapped as an Instance: its descriptor() is the host side's.
Result<std::unique_ptr<Instance>> createIsolatedInstance(const std::shared_ptr<Module>& module, double sampleRateHz,
                                                         uint32_t maxBlockFrames, const std::vector<float>& values,
                                                         IsolationOptions options);

}  // namespace rackterm::loader
