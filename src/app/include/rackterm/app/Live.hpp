// Live: one session running on a JACK server, as the console, headless mode
// and `rackterm run` share it: the runtime, the JACK client, hot reload and
// the control socket, and the link to the server, which survives the
// server's restart.
//
// When the JACK server goes away (stopped, killed, restarted), the session
// stays open: edits, the console and the control socket go on, and the status
// says `JACK server lost - waiting for it`. Every 100 ms a new client is
// tried (JackNoStartServer: rackterm never starts a server); when one opens,
// it has the same name and ports, the rack (with every edit made meanwhile)
// resumes, rebuilt when the server's sample rate or buffer size changed, and
// every connection the client had at the loss is made again: the session's
// and those other programs had made. A connection whose other port is not
// there yet is made when that port appears.
//
// [control] (the main thread), all of it.
#pragma once

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/ControlSocket.hpp>
#include <rackterm/app/HotReload.hpp>
#include <rackterm/app/Recovery.hpp>
#include <rackterm/app/Runtime.hpp>
#include <rackterm/common/Result.hpp>

#include <poll.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rackterm::engine {
class JackBackend;
}

namespace rackterm::app {

/// How a live session behaves.
struct LiveOptions {
    /// Stop (exit 3) when the JACK server goes away, as rackterm 0.1 did,
    /// instead of waiting for it to come back.
    bool exitOnServerLoss = false;
};

struct Live;
Result<std::unique_ptr<Live>> openLive(const std::string& sessionPath, int& exitCode, LiveOptions options);

/// A connection of the client's ports: full JACK port names, source first.
using PortConnection = std::pair<std::string, std::string>;

/// A session running live on JACK. The destructor closes the JACK client
/// before the runtime (and its engine) goes.
struct Live {
    std::unique_ptr<Runtime> runtime;
    std::unique_ptr<engine::JackBackend> jack;  ///< nullptr while the server is away
    std::unique_ptr<HotReload> reload;          ///< watches and rebuilds; started by openLive
    std::unique_ptr<ControlSocket> socket;      ///< commands from other programs; nullptr when it could not open
    std::unique_ptr<RecoveryJournal> recovery;  ///< unsaved edits on disk (serviceLive keeps it up to date)
    uint64_t watchedStructure = 0;              ///< Runtime::structureSerial() hot reload last watched
    LiveOptions options;

    Live();
    ~Live();
    /// A command context wired to this session (status, ports, reload, build status).
    CommandContext context(Source source = Source::Socket);
    /// The engine's state with JACK's buffer size and DSP load, or serverLost.
    EngineStatus status() const;
    /// True while the JACK server is away (from the loss until a new client runs).
    bool serverLost() const;
    /// Descriptors the control loop polls for this session (reload, socket).
    std::vector<pollfd> pollFds() const;
    /// Poll timeout in ms: `idle`, 0 while socket lines wait, at most 2 while
    /// operations are pending (a fade-out completes within a few ms), at most
    /// 100 while the server is away (the retry period).
    int pollTimeout(int idle) const;

    /// Keep the link to the JACK server (serviceLive calls it): notice a
    /// lost server and close its client, retry every 100 ms, bring the
    /// client back and restore its connections; remember the client's
    /// connections as they change (a change is taken 250 ms after it
    /// settles, so the teardown of a stopping server is not taken for the
    /// user's wish). `now` in seconds (nowSeconds()).
    void serviceJack(double now);
    /// `recover`: load the edits the offered recovery file kept (unsaved,
    /// one undo step); the offer closes when that succeeded.
    Reply recoverEdits();
    /// `discard`: drop the offered recovery file.
    Reply discardEdits();
    /// The session ends: `clean` (quit) removes the recovery file; otherwise
    /// (SIGHUP, SIGTERM, a failed script) it is brought up to date and
    /// fsync'd, and stays for the next open.
    void end(bool clean);

    /// The connections that would be restored after a loss now.
    const std::vector<PortConnection>& rememberedConnections() const { return remembered_; }
    /// Times the client came back after a loss.
    uint32_t reconnects() const { return reconnects_; }

    /// Set by openLive: the client name asked for, and the ports it has.
    std::string clientName;
    uint32_t inputPorts = 2, outputPorts = 2;

private:
    friend Result<std::unique_ptr<Live>> openLive(const std::string&, int&, LiveOptions);
    /// Activate a freshly opened client: rebuild the rack for its format,
    /// run the engine, restore the connections. False (client kept, not yet
    /// active) while an operation is running and the format changed.
    bool bringUp(double now);
    void rememberConnections();
    /// Make the pending connections whose ports exist; logs what it made unless `quiet`.
    void restorePending(bool quiet);

    bool active_ = false;                 // jack runs the engine
    std::vector<PortConnection> remembered_;  // to restore after a loss
    std::vector<PortConnection> pending_;     // to make once their ports exist
    double snapshotDue_ = -1;             // when to take the changed connections (seconds), or -1
    double lostAt_ = -1;                  // when the server was found gone, or -1
    double nextAttempt_ = 0;              // the next open attempt while away
    double nextAwayNote_ = 0;             // when to say again why the server is still away
    double nextPendingTry_ = 0;
    uint32_t reconnects_ = 0;
};

/// Open `sessionPath` on JACK: client named after the session, rack at the
/// server's rate and buffer size, ports connected (failures logged as
/// warnings). On error, `exitCode` is 1 (session) or 3 (no JACK server).
Result<std::unique_ptr<Live>> openLive(const std::string& sessionPath, int& exitCode, LiveOptions options);

/// One turn of a live session's control loop after poll(): the JACK link,
/// hot-reload events and builds, control-socket commands, finished swaps,
/// meters, engine events to the log. Returns true when a socket command asked to quit.
bool serviceLive(Live& live);

/// True when the session must stop because the server went away and
/// --exit-on-server-loss asked for that (the reason is logged).
bool stopForServerLoss(const Live& live);

}  // namespace rackterm::app
