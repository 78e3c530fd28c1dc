#include <rackterm/loader/Watcher.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

extern char** environ;

namespace rackterm::loader {

namespace fs = std::filesystem;

namespace {

bool endsWith(const std::string& s, const char* suffix) {
    const size_t n = std::strlen(suffix);
    return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

bool ignoredName(const std::string& name) {
    return name.empty() || name[0] == '.' || name[0] == '#' || endsWith(name, "~") || endsWith(name, ".swp") ||
           endsWith(name, ".swo") || endsWith(name, ".swx") || name == "4913";
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

/// An IN_CREATE that no IN_CLOSE_WRITE follows: a symbolic link, or a hard
/// link to a file that already existed. A new regular file is reported when
/// its writer closes it; one already gone is reported by its IN_DELETE.
bool createdWhole(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return false;
    return S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && st.st_nlink > 1);
}

}  // namespace

bool ignoredFolder(const std::string& name) {
    return name.empty() || name[0] == '.' || name.rfind("build", 0) == 0 || name.rfind("cmake-build-", 0) == 0 ||
           name == "CMakeFiles";
}

bool countsAsSource(const std::string& relativePath) {
    const fs::path p(relativePath);
    for (auto it = p.begin(); it != p.end(); ++it) {
        const std::string part = it->string();
        if (std::next(it) == p.end()) break;
        if (ignoredFolder(part)) return false;
    }
    const std::string name = p.filename().string();
    if (ignoredName(name)) return false;
    if (name == "CMakeLists.txt" || endsWith(name, ".cmake")) return true;
    static const char* kExt[] = {".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".inl", ".ipp"};
    return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return endsWith(name, e); });
}

Result<std::unique_ptr<SourceWatcher>> SourceWatcher::create() {
    const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Error{std::string("inotify is unavailable (") + std::strerror(errno) + "); hot reload is off"};
    return std::unique_ptr<SourceWatcher>(new SourceWatcher(fd));
}

SourceWatcher::~SourceWatcher() { ::close(fd_); }

void SourceWatcher::addTree(int key, const std::string& root, const std::string& folder) {
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ONLYDIR;
    const int wd = inotify_add_watch(fd_, folder.c_str(), mask & ~static_cast<uint32_t>(IN_ONLYDIR));
    if (wd < 0) return;
    watches_[wd] = Watch{key, root, folder};
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(folder, ec))
        if (e.is_directory(ec) && !ignoredFolder(e.path().filename().string())) addTree(key, root, e.path().string());
}

void SourceWatcher::removeTree(const std::string& folder) {
    for (auto it = watches_.begin(); it != watches_.end();) {
        const std::string& f = it->second.folder;
        if (f == folder || f.rfind(folder + "/", 0) == 0) {
            ::inotify_rm_watch(fd_, it->first);
            it = watches_.erase(it);
        } else {
            ++it;
        }
    }
}

Result<void> SourceWatcher::watchSources(int key, const std::string& folder) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec))
        return Error{folder + ": the watch source folder does not exist; fix watch.source in the session"};
    addTree(key, fs::absolute(folder).lexically_normal().string(), fs::absolute(folder).lexically_normal().string());
    return {};
}

Result<void> SourceWatcher::watchModule(int key, const std::string& path) {
    const fs::path p = fs::absolute(path).lexically_normal();
    const std::string folder = p.parent_path().string();
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) return Error{path + ": its folder does not exist, so it cannot be watched"};
    // IN_MASK_ADD: the folder may be a watched source folder too; keep its events.
    const int wd = inotify_add_watch(fd_, folder.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MASK_ADD);
    if (wd < 0) return Error{path + ": cannot watch its folder (" + std::strerror(errno) + ")"};
    if (!watches_.count(wd)) watches_[wd] = Watch{-1, "", folder};
    modules_.emplace(folder, std::make_pair(key, p.filename().string()));
    return {};
}

void SourceWatcher::sourceEvent(const Watch& w, const std::string& name, uint32_t mask, std::vector<Event>& out) {
    const std::string full = w.folder + "/" + name;
    if (mask & IN_ISDIR) {
        if (ignoredFolder(name)) return;
        if (mask & IN_MOVED_FROM) {
            removeTree(full);  // its watches would report it under a path it no longer has
            out.push_back({w.key, false, full, true});
        }
        if (mask & (IN_CREATE | IN_MOVED_TO)) addTree(w.key, w.root, full);
        if (mask & IN_MOVED_TO) out.push_back({w.key, false, full});  // arrives with its files complete
        return;
    }
    if (!countsAsSource(fs::path(full).lexically_relative(w.root).string())) return;
    if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) out.push_back({w.key, false, full});
    else if (mask & (IN_DELETE | IN_MOVED_FROM)) out.push_back({w.key, false, full, true});
    else if ((mask & IN_CREATE) && createdWhole(full)) out.push_back({w.key, false, full});
}

void SourceWatcher::overflowed(std::vector<Event>& out) const {
    std::set<int> keys;
    for (const auto& [wd, w] : watches_)
        if (w.key >= 0 && !w.root.empty() && keys.insert(w.key).second) out.push_back({w.key, false, ""});
    for (const auto& [folder, m] : modules_) out.push_back({m.first, true, folder + "/" + m.second});
}

std::vector<SourceWatcher::Event> SourceWatcher::read() {
    std::vector<Event> out;
    alignas(inotify_event) char buf[16384];
    while (true) {
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t off = 0; off < n;) {
            const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
            off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
            if (ev->mask & IN_Q_OVERFLOW) {
                overflowed(out);
                continue;
            }
            auto it = watches_.find(ev->wd);
            if (it == watches_.end() || ev->len == 0) continue;
            const Watch w = it->second;  // a copy: sourceEvent may add or remove watches
            const std::string name = ev->name;
            auto [lo, hi] = modules_.equal_range(w.folder);
            for (auto m = lo; m != hi; ++m)
                if (m->second.second == name && (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)))
                    out.push_back({m->second.first, true, w.folder + "/" + name});
            if (w.key >= 0 && !w.root.empty()) sourceEvent(w, name, ev->mask, out);
        }
    }
    return out;
}

Result<std::unique_ptr<BuildProcess>> BuildProcess::start(const std::string& command, const std::string& folder) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return Error{std::string("cannot make a pipe: ") + std::strerror(errno)};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawn_file_actions_addchdir_np(&fa, folder.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    std::string sh = "/bin/sh", dashc = "-c", cmd = command;
    char* argv[] = {sh.data(), dashc.data(), cmd.data(), nullptr};
    std::unique_ptr<BuildProcess> b(new BuildProcess);
    const int rc = posix_spawn(&b->pid_, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(pipefd[1]);
    if (rc != 0) {
        ::close(pipefd[0]);
        return Error{"cannot start the build `" + command + "`: " + std::strerror(rc)};
    }
    b->fd_ = pipefd[0];
    ::fcntl(b->fd_, F_SETFL, ::fcntl(b->fd_, F_GETFL) | O_NONBLOCK);
    b->started_ = now();
    return b;
}

BuildProcess::~BuildProcess() {
    if (!reaped_ && pid_ > 0) {
        ::kill(-pid_, SIGTERM);  // the build's own process group
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) ::close(fd_);
}

std::vector<std::string> BuildProcess::readLines() {
    std::vector<std::string> lines;
    if (fd_ < 0) return lines;
    char buf[8192];
    while (true) {
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n > 0) {
            partial_.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) {  // end of output
            ::close(fd_);
            fd_ = -1;
        }
        break;
    }
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1)
        lines.push_back(partial_.substr(start, nl - start));
    partial_.erase(0, start);
    if (fd_ < 0 && !partial_.empty()) {
        lines.push_back(partial_);
        partial_.clear();
    }
    return lines;
}

bool BuildProcess::finished() {
    if (reaped_) return true;
    if (fd_ >= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
    reaped_ = true;
    exitCode_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
}

double BuildProcess::seconds() const { return now() - started_; }

}  // namespace rackterm::loader
