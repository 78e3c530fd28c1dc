// The control socket of a live session: a Unix stream socket at
// $XDG_RUNTIME_DIR/rackterm/NAME.sock (folder 0700, socket 0600; without
// XDG_RUNTIME_DIR, /tmp/rackterm-UID/). One command per line in, one reply
// line out ("ok ..." / "error: ..."), several clients at once. Everything is
// non-blocking and bounded: a line over 4096 bytes is refused, a client whose
// unread replies pass 1 MiB is dropped, at most 256 lines per client are run
// per turn, so garbage or a stalled client never holds up the control loop
// (and the audio thread never sees any of it). [control].
#pragma once

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/LineFramer.hpp>
#include <rackterm/common/Result.hpp>

#include <poll.h>
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rackterm::app {

/// One client's command lines, run in order: a line runs only once the reply
/// to the line before it is final (a pending reply holds the lines behind
/// it, not other clients). Feeds on a LineFramer. [control].
class CommandStream {
public:
    LineFramer& input() noexcept { return in_; }
    const LineFramer& input() const noexcept { return in_; }
    /// Run up to `budget` lines through `run`, handing each final reply to
    /// `deliver` in order (an over-long line gets LineFramer::kTooLong).
    /// Returns true when a reply asked to quit.
    bool service(size_t budget, const std::function<Reply(const std::string&)>& run,
                 const std::function<void(const Reply&)>& deliver);
    /// True while a reply is pending.
    bool waiting() const noexcept { return static_cast<bool>(pending_); }
    /// True when a line could run now (none pending, one complete line waits).
    bool ready() const noexcept { return !pending_ && in_.hasLine(); }
    /// True when nothing is left to run or answer.
    bool idle() const noexcept { return !pending_ && !in_.hasLine(); }

private:
    LineFramer in_;
    std::function<std::optional<Reply>()> pending_;
};

/// The folder holding control sockets (not created).
std::string socketFolder();
/// The socket path for session `name`.
std::string socketPath(const std::string& name);

class ControlSocket {
public:
    /// Create the folder (0700) and listen at socketPath(name). Sockets in
    /// the folder that nobody answers (left by a rackterm that was killed)
    /// are removed first. The socket is bound under a temporary name and
    /// renamed into place once it listens, so a client never finds a socket
    /// that refuses it. Error when another live rackterm already answers at
    /// the path, or the path is unusable.
    static Result<std::unique_ptr<ControlSocket>> open(const std::string& name);
    /// Closes every client and removes the socket file.
    ~ControlSocket();
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

    const std::string& path() const noexcept { return path_; }
    /// Descriptors to poll: the listener and each client (POLLOUT while replies wait).
    std::vector<pollfd> pollFds() const;
    /// Accept, read, run complete lines through `run`, write replies; never
    /// blocks. A client's lines run in order, each after the reply to the one
    /// before it is final; a pending reply holds only its own client.
    /// Returns true when a command asked to quit.
    bool service(const std::function<Reply(const std::string& line)>& run);
    /// True when lines are waiting beyond this turn's budget (poll with no timeout).
    bool backlog() const noexcept;
    size_t clientCount() const noexcept { return clients_.size(); }

private:
    struct Client {
        int fd;
        CommandStream commands;
        std::string out;
        bool closing = false;
    };
    ControlSocket(int fd, std::string path) : listen_(fd), path_(std::move(path)) {}
    void accept();
    bool readAndRun(Client& c, const std::function<Reply(const std::string&)>& run);
    void flush(Client& c);

    int listen_;
    std::string path_;
    ino_t inode_ = 0;  // of our socket file: the destructor removes only that
    std::vector<Client> clients_;
};

/// Remove sockets in socketFolder() that nobody answers (connect() refused:
/// their rackterm is gone). Returns the names of the sessions still live.
std::vector<std::string> liveSessions();

/// What a running session answered (askSession).
struct SessionAnswer {
    int code = 0;       ///< as runCtl's exit status: 0 ok, 1 error reply, 3 nobody answers, 4 time-out
    std::string reply;  ///< the reply line ("ok ..." / "error: ..."), when one came
    std::string error;  ///< why no reply came (one line), else ""
};
/// Send one command line to the session `name` and wait at most
/// `timeoutSeconds` for its reply. [control, blocking].
SessionAnswer askSession(const std::string& name, const std::string& command, double timeoutSeconds);
/// `rackterm ctl`: send one command to a running rackterm and print the reply.
/// `session` "" picks the only running one (dead sockets are removed and
/// skipped). Connecting, sending and waiting for the reply together take at
/// most `timeoutSeconds` (finite, above 0). Exit 0 (ok), 1 (error reply), 2 (several running,
/// none named), 3 (none running / nobody answers at the socket), 4 (no reply
/// within the time-out: the session is busy or hung).
int runCtl(const std::string& session, const std::string& command, double timeoutSeconds = 10.0);

/// `rackterm ctl`'s exit status when no reply came within the time-out.
inline constexpr int kExitCtlTimeout = 4;

}  // namespace rackterm::app
