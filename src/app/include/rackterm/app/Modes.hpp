// The ways rackterm runs: check, render, headless, and the live set-up the
// console shares with headless. Each returns a process exit status.
// [control] (the main thread).
#pragma once

#include <rackterm/app/Live.hpp>
#include <rackterm/common/Result.hpp>

#include <memory>
#include <string>

namespace rackterm::app {

/// Exit statuses (SPEC section 1).
enum ExitCode : int { kExitOk = 0, kExitUser = 1, kExitUsage = 2, kExitEnvironment = 3 };

/// `rackterm check SESSION`: load the session and every processor at 48 kHz;
/// prints "ok: ..." and returns 0, or the error and 1. Validation has no side
/// effects: a watched node whose module is missing is an error naming its
/// build command, unless `build` (`check --build`) runs that command first.
int runCheck(const std::string& sessionPath, bool build = false);

struct RenderOptions {
    std::string session, input, output;
    uint32_t block = 0;  ///< 0 = the session's [engine] block, else 256
    std::string script;  ///< command script: plain lines before frame 0, `at` lines at their exact frame
};
/// `rackterm render`: IN -> rack -> OUT. Progress on stderr when it is a
/// terminal; a summary line on stdout. 0, or 1 with one error line.
int runRender(const RenderOptions& options);

/// `rackterm run SCRIPT SESSION`: open the session live (headless), run the
/// script's plain lines at once in order, its `at` lines at their times
/// (scheduled by the control thread), and stop after the last one or at
/// `quit`. The first failing command stops it: "SCRIPT:LINE: message", exit 1.
int runScript(const std::string& scriptPath, const std::string& sessionPath, LiveOptions options = {});

/// `rackterm --headless SESSION`: run until SIGINT/SIGTERM/SIGHUP or
/// `quit`, logging to stderr; through a JACK server restart unless
/// `options.exitOnServerLoss`.
int runHeadless(const std::string& sessionPath, LiveOptions options = {});

/// Route SIGINT, SIGTERM and SIGHUP to a self-pipe; returns its read end.
int installStopSignals();

}  // namespace rackterm::app
