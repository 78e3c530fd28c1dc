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
#include <filesystem>

namespace rackterm::app {

namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxLine = 4096;
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

/// Connect to `path`; -1 when nothing listens there.
int connectTo(const std::string& path) {
    sockaddr_un a;
    if (!fillAddress(a, path)) return -1;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
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
    const std::string path = socketPath(name);
    if (const int other = connectTo(path); other >= 0) {
        ::close(other);
        return Error{path + ": another rackterm already runs session '" + name +
                     "'; its control socket stays; give this session another [session] name"};
    }
    ::unlink(path.c_str());  // a stale socket from a rackterm that died
    sockaddr_un a;
    if (!fillAddress(a, path)) return Error{path + ": the socket path is too long; set a shorter XDG_RUNTIME_DIR"};
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Error{std::string("cannot make a socket: ") + std::strerror(errno)};
    const mode_t old = ::umask(0177);  // the socket is born 0600
    const int bound = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::umask(old);
    if (bound != 0 || ::listen(fd, 16) != 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        return Error{path + ": cannot listen (" + why + ")"};
    }
    return std::unique_ptr<ControlSocket>(new ControlSocket(fd, path));
}

ControlSocket::~ControlSocket() {
    for (auto& c : clients_) ::close(c.fd);
    ::close(listen_);
    ::unlink(path_.c_str());
}

std::vector<pollfd> ControlSocket::pollFds() const {
    std::vector<pollfd> fds = {{listen_, POLLIN, 0}};
    for (const auto& c : clients_)
        fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    return fds;
}

bool ControlSocket::backlog() const noexcept {
    for (const auto& c : clients_)
        if (c.in.find('\n') != std::string::npos) return true;
    return false;
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
        clients_.push_back(Client{fd, {}, {}});
    }
}

bool ControlSocket::readAndRun(Client& c, const std::function<Reply(const std::string&)>& run) {
    char buf[16384];
    while (c.in.size() < 2 * kMaxLine) {  // read no further than this turn can use
        const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c.closing = true;
            break;
        }
        if (n < 0) break;
        c.in.append(buf, static_cast<size_t>(n));
    }
    bool quit = false;
    for (int done = 0; done < kLinesPerTurn; ++done) {
        const size_t nl = c.in.find('\n');
        if (nl == std::string::npos) {
            if (c.in.size() > kMaxLine) {  // an over-long line: refuse once, drop it up to its newline
                if (!c.discarding) c.out += "error: line too long (at most 4096 bytes)\n";
                c.discarding = true;
                c.in.clear();
            }
            break;
        }
        std::string line = c.in.substr(0, nl);
        c.in.erase(0, nl + 1);
        if (c.discarding || line.size() > kMaxLine) {
            if (!c.discarding) c.out += "error: line too long (at most 4096 bytes)\n";
            c.discarding = false;
            continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const Reply r = run(line);
        c.out += r.line() + "\n";
        quit = quit || r.quit;
    }
    return quit;
}

void ControlSocket::flush(Client& c) {
    while (!c.out.empty()) {
        const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c.closing = true;
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
        if (!c.closing) quit = readAndRun(c, run) || quit;
        flush(c);
    }
    for (auto it = clients_.begin(); it != clients_.end();) {
        if (it->closing && (it->out.empty() || it->out.size() > kMaxUnread)) {
            ::close(it->fd);
            it = clients_.erase(it);
        } else {
            ++it;
        }
    }
    return quit;
}

int runCtl(const std::string& session, const std::string& command) {
    std::string path;
    if (!session.empty()) {
        path = socketPath(session);
    } else {
        std::vector<std::string> found;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(socketFolder(), ec))
            if (e.path().extension() == ".sock") found.push_back(e.path().string());
        if (found.empty()) {
            std::fprintf(stderr, "rackterm: no running rackterm (no socket in %s); start one: rackterm SESSION.toml\n",
                         socketFolder().c_str());
            return 3;
        }
        if (found.size() > 1) {
            std::string names;
            for (const auto& f : found) names += " " + fs::path(f).stem().string();
            std::fprintf(stderr, "rackterm: several sessions run:%s; pick one with --session NAME\n", names.c_str());
            return 2;
        }
        path = found[0];
    }
    const int fd = connectTo(path);
    if (fd < 0) {
        std::fprintf(stderr, "rackterm: no rackterm answers at %s; is the session running?\n", path.c_str());
        return 3;
    }
    const std::string line = command + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
        ::close(fd);
        std::fprintf(stderr, "rackterm: could not send to %s\n", path.c_str());
        return 3;
    }
    std::string reply;
    pollfd p{fd, POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (reply.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    const size_t nl = reply.find('\n');
    if (nl == std::string::npos) {
        std::fprintf(stderr, "rackterm: no reply from %s within 10 s\n", path.c_str());
        return 3;
    }
    reply.resize(nl);
    std::printf("%s\n", reply.c_str());
    return reply.rfind("ok", 0) == 0 ? 0 : 1;
}

}  // namespace rackterm::app
