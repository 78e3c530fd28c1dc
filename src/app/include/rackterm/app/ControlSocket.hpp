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
#include <rackterm/common/Result.hpp>

#include <poll.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rackterm::app {

/// The folder holding control sockets (not created).
std::string socketFolder();
/// The socket path for session `name`.
std::string socketPath(const std::string& name);

class ControlSocket {
public:
    /// Create the folder (0700) and listen at socketPath(name). Error when
    /// another live rackterm already answers there, or the path is unusable.
    static Result<std::unique_ptr<ControlSocket>> open(const std::string& name);
    /// Closes every client and removes the socket file.
    ~ControlSocket();
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

    const std::string& path() const noexcept { return path_; }
    /// Descriptors to poll: the listener and each client (POLLOUT while replies wait).
    std::vector<pollfd> pollFds() const;
    /// Accept, read, run complete lines through `run`, write replies; never blocks.
    /// Returns true when a command asked to quit.
    bool service(const std::function<Reply(const std::string& line)>& run);
    /// True when lines are waiting beyond this turn's budget (poll with no timeout).
    bool backlog() const noexcept;
    size_t clientCount() const noexcept { return clients_.size(); }

private:
    struct Client {
        int fd;
        std::string in, out;
        bool discarding = false;  // inside an over-long line: drop until its newline
        bool closing = false;
    };
    ControlSocket(int fd, std::string path) : listen_(fd), path_(std::move(path)) {}
    void accept();
    bool readAndRun(Client& c, const std::function<Reply(const std::string&)>& run);
    void flush(Client& c);

    int listen_;
    std::string path_;
    std::vector<Client> clients_;
};

/// `rackterm ctl`: send one command to a running rackterm and print the reply.
/// `session` "" picks the only running one. Exit 0 (ok), 1 (error reply),
/// 2 (several running, none named), 3 (none running / no answer).
int runCtl(const std::string& session, const std::string& command);

}  // namespace rackterm::app
