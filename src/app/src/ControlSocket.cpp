#include <rackterm/app/ControlSocket.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>

namespace rackterm::app {

namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxUnread = 1 << 20;
constexpr int kLinesPerTurn = 256;
constexpr size_t kMaxClients = 64;

bool fillAddress(sockaddr_un& a, const std::string& path) {
    std::memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return false;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return true;
}

/// Start a non-blocking connect to `path`. Returns the descriptor (connected,
/// or -1 with errno: ECONNREFUSED nobody listens, EAGAIN the listener's queue
/// is full, ENOENT no socket).
int startConnect(const std::string& path) {
    sockaddr_un a;
    if (!fillAddress(a, path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
        const int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

enum class Liveness { Live, Dead, Absent };

/// Whether a rackterm answers at `path`. Never blocks: a listener whose
/// queue is full counts as live.
Liveness probe(const std::string& path) {
    const int fd = startConnect(path);
    if (fd >= 0) {
        ::close(fd);
        return Liveness::Live;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Liveness::Live;
    return errno == ECONNREFUSED ? Liveness::Dead : Liveness::Absent;
}

/// probe(path), removing the socket when it is ours and nobody answers it.
Liveness sweep(const std::string& path) {
    const Liveness l = probe(path);
    struct stat st {};
    if (l == Liveness::Dead && ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == ::getuid())
        ::unlink(path.c_str());
    return l;
}

double secondsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

std::string socketFolder() {
    if (const char* r = std::getenv("XDG_RUNTIME_DIR"); r && *r) return std::string(r) + "/rackterm";
    return "/tmp/rackterm-" + std::to_string(::getuid());
}

std::string socketPath(const std::string& name) { return socketFolder() + "/" + name + ".sock"; }

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(const std::string& name) {
    const std::string dir = socketFolder();
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        return Error{dir + ": cannot create the socket folder (" + std::strerror(errno) + ")"};
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid())
        return Error{dir + ": not a folder of yours; remove it or set XDG_RUNTIME_DIR"};
    if ((st.st_mode & 0777) != 0700) ::chmod(dir.c_str(), 0700);
    const std::vector<std::string> live = liveSessions();  // sockets of rackterms that were killed go
    const std::string path = socketPath(name);
    if (std::find(live.begin(), live.end(), name) != live.end())
        return Error{path + ": another rackterm already runs session '" + name +
                     "'; its control socket stays; give this session another [session] name"};
    const std::string temp = dir + "/." + name + ".sock.tmp-" + std::to_string(::getpid());
    sockaddr_un a;
    if (!fillAddress(a, temp)) return Error{path + ": the socket path is too long; set a shorter XDG_RUNTIME_DIR"};
    ::unlink(temp.c_str());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error{std::string("cannot make a socket: ") + std::strerror(errno)};
    const mode_t old = ::umask(0177);  // the socket is born 0600
    const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::umask(old);
    // Listening first, then the name: a client that finds the socket is answered.
    if (bound != 0 || ::listen(fd, 16) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        ::unlink(temp.c_str());
        return Error{path + ": cannot listen (" + why + ")"};
    }
    std::unique_ptr<ControlSocket> sock(new ControlSocket(fd, path));
    if (::lstat(path.c_str(), &st) == 0) sock->inode_ = st.st_ino;
    return sock;
}

ControlSocket::~ControlSocket() {
    for (auto& c : clients_) ::close(c.fd);
    ::close(listen_);
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());  // never another's socket
}

std::vector<std::string> liveSessions() {
    std::vector<std::string> live;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(socketFolder(), ec)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() != ".sock" || name[0] == '.') continue;
        if (sweep(e.path().string()) == Liveness::Live) live.push_back(e.path().stem().string());
    }
    std::sort(live.begin(), live.end());
    return live;
}

std::vector<pollfd> ControlSocket::pollFds() const {
    std::vector<pollfd> fds = {{listen_, POLLIN, 0}};
    for (const auto& c : clients_) {
        // A client that hung up is polled only for its replies (else POLLHUP would wake every turn).
        // Nor for more input while its buffer is full behind a pending reply (it could not be read).
        const bool reading = !c.closing && c.commands.input().room() > 0;
        const short events = static_cast<short>((reading ? POLLIN : 0) | (c.out.empty() ? 0 : POLLOUT));
        if (events) fds.push_back({c.fd, events, 0});
    }
    return fds;
}

bool ControlSocket::backlog() const noexcept {
    for (const auto& c : clients_)
        if (c.commands.ready()) return true;
    return false;
}

bool CommandStream::service(size_t budget, const std::function<Reply(const std::string&)>& run,
                            const std::function<void(const Reply&)>& deliver) {
    bool quit = false;
    while (true) {
        if (pending_) {
            std::optional<Reply> r = pending_();
            if (!r) break;
            pending_ = nullptr;
            quit = quit || r->quit;
            deliver(*r);
            continue;
        }
        if (budget == 0) break;
        auto items = in_.take(1);
        if (items.empty()) break;
        --budget;
        Reply r = items[0].tooLong ? Reply{false, LineFramer::kTooLong, false} : run(items[0].text);
        if (r.waiting()) {
            pending_ = std::move(r.pending);
            continue;
        }
        quit = quit || r.quit;
        deliver(r);
    }
    return quit;
}

void ControlSocket::accept() {
    while (true) {
        const int fd = ::accept4(listen_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (clients_.size() >= kMaxClients) {
            const char* msg = "error: too many control clients; try again later\n";
            [[maybe_unused]] ssize_t n = ::send(fd, msg, std::strlen(msg), MSG_NOSIGNAL);
            ::close(fd);
            continue;
        }
        clients_.push_back(Client{fd, {}, {}, false});
    }
}

bool ControlSocket::readAndRun(Client& c, const std::function<Reply(const std::string&)>& run) {
    char buf[16384];
    LineFramer& in = c.commands.input();
    while (!c.closing && in.room() > 0) {  // read no further than this turn can use
        const ssize_t n = ::recv(c.fd, buf, std::min(sizeof buf, in.room()), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c.closing = true;
            break;
        }
        if (n < 0) break;
        in.append(std::string_view(buf, static_cast<size_t>(n)));
    }
    return c.commands.service(kLinesPerTurn, run, [&c](const Reply& r) { c.out += r.line() + "\n"; });
}

void ControlSocket::flush(Client& c) {
    while (!c.out.empty()) {
        const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                c.closing = true;
                c.out.clear();  // nobody is left to read it
            }
            break;
        }
        c.out.erase(0, static_cast<size_t>(n));
    }
    if (c.out.size() > kMaxUnread) c.closing = true;  // it stopped reading: let it go
}

bool ControlSocket::service(const std::function<Reply(const std::string&)>& run) {
    accept();
    bool quit = false;
    for (auto& c : clients_) {
        quit = readAndRun(c, run) || quit;  // lines a closing client sent still run, in order
        flush(c);
    }
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->closing && ((it->out.empty() && it->commands.idle()) || it->out.size() > kMaxUnread)) {
            ::close(it->fd);
            it = clients_.erase(it);
        } else {
            ++it;
        }
    }
    return quit;
}

SessionAnswer askSession(const std::string& session, const std::string& command, double timeoutSeconds) {
    const auto start = std::chrono::steady_clock::now();
    const std::string path = socketPath(session);
    sweep(path);
    SessionAnswer out;
    auto failWith = [&](int code, std::string why) {
        out.code = code;
        out.error = std::move(why);
        return out;
    };
    const auto timedOut = [&](const char* doing) {
        char secs[32];
        std::snprintf(secs, sizeof secs, "%g", timeoutSeconds);
        return failWith(kExitCtlTimeout, "no reply from " + path + " within " + secs + " s (" + doing +
                                             "); the session is busy or hung; --timeout SECONDS waits longer");
    };
    int fd = -1;
    while ((fd = startConnect(path)) < 0) {  // a full listen queue (EAGAIN) is a busy session: retry
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return failWith(3, "no rackterm answers at " + path + "; is the session running?");
        if (secondsSince(start) > timeoutSeconds) return timedOut("connecting");
        ::poll(nullptr, 0, 10);
    }
    const std::string line = command + "\n";
    size_t sent = 0;
    std::string reply;
    while (true) {
        const double left = timeoutSeconds - secondsSince(start);
        if (left <= 0) {
            ::close(fd);
            return timedOut(sent < line.size() ? "sending" : "waiting for the reply");
        }
        pollfd p{fd, static_cast<short>(sent < line.size() ? POLLOUT : POLLIN), 0};
        if (::poll(&p, 1, static_cast<int>(std::min(left * 1000.0, 100.0)) + 1) <= 0) continue;
        if (sent < line.size()) {
            const ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) {
                ::close(fd);
                return failWith(3, "could not send to " + path);
            }
            sent += static_cast<size_t>(n);
            continue;
        }
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n <= 0) {
            ::close(fd);
            return failWith(3, path + " closed the connection without a reply");
        }
        reply.append(buf, static_cast<size_t>(n));
        if (const size_t nl = reply.find('\n'); nl != std::string::npos) {
            reply.resize(nl);
            ::close(fd);
            out.code = reply.rfind("ok", 0) == 0 ? 0 : 1;
            out.reply = std::move(reply);
            return out;
        }
    }
}

int runCtl(const std::string& session, const std::string& command, double timeoutSeconds) {
    std::string name = session;
    if (name.empty()) {
        const std::vector<std::string> live = liveSessions();
        if (live.empty()) {
            std::fprintf(stderr, "rackterm: no running rackterm (no live socket in %s); start one: rackterm SESSION.toml\n",
                         socketFolder().c_str());
            return 3;
        }
        if (live.size() > 1) {
            std::string names;
            for (const auto& n : live) names += " " + n;
            std::fprintf(stderr, "rackterm: several sessions run:%s; pick one with --session NAME\n", names.c_str());
            return 2;
        }
        name = live[0];
    }
    const SessionAnswer a = askSession(name, command, timeoutSeconds);
    if (!a.error.empty()) std::fprintf(stderr, "rackterm: %s\n", a.error.c_str());
    else std::printf("%s\n", a.reply.c_str());
    return a.code;
}

}  // namespace rackterm::app
