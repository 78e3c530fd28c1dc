// The ways rackterm runs: check, render, headless, and the live set-up the
// console shares with headless. Each returns a process exit status.
// [control] (the main thread).
#pragma once

#include <rackterm/app/ControlSocket.hpp>
#include <rackterm/app/HotReload.hpp>
#include <rackterm/app/Runtime.hpp>
#include <rackterm/common/Result.hpp>

#include <memory>
#include <string>

namespace rackterm::engine {
class JackBackend;
}

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

/// A session running live on JACK. The destructor closes the JACK client
/// before the runtime (and its engine) goes.
struct Live {
    std::unique_ptr<Runtime> runtime;
    std::unique_ptr<engine::JackBackend> jack;
    std::unique_ptr<HotReload> reload;  ///< watches and rebuilds; started by openLive
    std::unique_ptr<ControlSocket> socket;  ///< commands from other programs; nullptr when it could not open
    uint64_t watchedStructure = 0;          ///< Runtime::structureSerial() hot reload last watched
    Live();
    ~Live();
    /// A command context wired to this session (status, ports, reload, build status).
    CommandContext context(Source source = Source::Socket);
    /// The engine's state with JACK's buffer size and DSP load.
    EngineStatus status() const;
    /// Descriptors the control loop polls for this session (reload, socket).
    std::vector<pollfd> pollFds() const;
    /// Poll timeout in ms: `idle`, 0 while socket lines wait, at most 2 while
    /// operations are pending (a fade-out completes within a few ms).
    int pollTimeout(int idle) const;
};
/// Open `sessionPath` on JACK: client named after the session, rack at the
/// server's rate and buffer size, ports connected (failures logged as
/// warnings). On error, `exitCode` is 1 (session) or 3 (no JACK server).
Result<std::unique_ptr<Live>> openLive(const std::string& sessionPath, int& exitCode);

/// `rackterm run SCRIPT SESSION`: open the session live (headless), run the
/// script's plain lines at once in order, its `at` lines at their times
/// (scheduled by the control thread), and stop after the last one or at
/// `quit`. The first failing command stops it: "SCRIPT:LINE: message", exit 1.
int runScript(const std::string& scriptPath, const std::string& sessionPath);

/// `rackterm --headless SESSION`: run until SIGINT/SIGTERM or the JACK
/// server stops, logging to stderr.
int runHeadless(const std::string& sessionPath);

/// Route SIGINT, SIGTERM and SIGHUP to a self-pipe; returns its read end.
int installStopSignals();

/// One turn of a live session's control loop after poll(): hot-reload
/// events and builds, control-socket commands, finished swaps, meters,
/// engine events to the log. Returns true when a socket command asked to quit.
bool serviceLive(Live& live);

}  // namespace rackterm::app
