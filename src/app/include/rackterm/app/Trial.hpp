// TrialRun: the trial a new processor build passes before it is published
// (a hot reload, `reload`, `add` of a module file): rackterm-sandbox runs it
// in a child process at the session's sample rate and block size on silence,
// an impulse and noise (loader/Trial.hpp), so that NaN/Inf output, a block
// slower than the period, a crash or an endless loop refuse the build and
// the old processor keeps playing. The control loop polls it; nothing here
// blocks. [control].
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rackterm::app {

/// Seconds a trial may take before it is stopped as an endless loop.
inline constexpr double kTrialTimeoutSeconds = 3.0;

class TrialRun {
public:
    /// Start the trial of the module at `modulePath` for `sampleRateHz` and
    /// blocks of `blockFrames`, with `values` by parameter id (others keep
    /// their defaults). Where rackterm-sandbox cannot be found (next to the
    /// rackterm executable, or $RACKTERM_SANDBOX) or start, the control thread runs
    /// the trial at once (NaN/Inf and slow blocks are caught there, a crash
    /// or an endless loop is not).
    static std::unique_ptr<TrialRun> start(const std::string& modulePath, double sampleRateHz, uint32_t blockFrames,
                                           const std::vector<std::pair<std::string, float>>& values, double now);
    /// Stops (SIGKILL) and reaps a child still running.
    ~TrialRun();
    TrialRun(const TrialRun&) = delete;
    TrialRun& operator=(const TrialRun&) = delete;

    /// Read the child's output and reap it: true once the trial is over
    /// (passed, refused, crashed, or stopped after kTrialTimeoutSeconds). `now` in seconds.
    bool poll(double now);
    /// Block until the trial is over (offline render, where the control
    /// thread has nothing else to do); at most kTrialTimeoutSeconds.
    void wait();
    /// "" when it passed; else one line: "NaN in output 1 at block 3 of the
    /// impulse", "crashed (SIGSEGV) in block 2 of the noise", "did not finish
    /// block 1 of the silence within 3 s (an endless loop?)", or why the module did not load.
    const std::string& problem() const noexcept { return problem_; }
    /// True when the problem is that the module did not load or create an
    /// instance (the loader's own error): the caller's load reports it.
    bool loadError() const noexcept { return loadError_; }
    /// Median time of a block in the trial, seconds (0 when it did not run).
    double medianBlockSeconds() const noexcept { return median_; }
    /// True when it ran in rackterm-sandbox (a crash was contained).
    bool isolated() const noexcept { return isolated_; }

private:
    TrialRun() = default;
    /// Start rackterm-sandbox; false when it cannot start (the caller runs the trial itself).
    bool spawn(const std::string& sandbox, const std::string& modulePath, double sampleRateHz, uint32_t blockFrames,
               const std::vector<std::pair<std::string, float>>& values, double now);
    void readOutput();
    void finish(int status);

    pid_t pid_ = -1;
    int out_ = -1;
    bool isolated_ = false;
    bool loadError_ = false;
    std::string text_;      // the child's output so far
    std::string problem_;
    double median_ = 0, deadline_ = 0;
};

/// rackterm-sandbox's path: $RACKTERM_SANDBOX, else next to the running
/// executable; "" when there is none.
std::string sandboxPath();

}  // namespace rackterm::app
