#include <rackterm/common/Files.hpp>

#include <rackterm/common/Text.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <utility>

namespace rackterm::files {

namespace fs = std::filesystem;

namespace {

std::string reason(int e = errno) { return std::strerror(e); }

/// A path as messages show it: escaped, and cut when absurdly long.
std::string shown(const std::string& path) { return printable(path, kPathChars); }

std::string mebibytes(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return buf;
}

/// Temporary files this process has open, so two writers never share one.
std::mutex gTempsMutex;
std::set<std::string> gTemps;

bool claimTemp(const std::string& temp) {
    std::lock_guard<std::mutex> lock(gTempsMutex);
    return gTemps.insert(temp).second;
}

void releaseTemp(const std::string& temp) {
    std::lock_guard<std::mutex> lock(gTempsMutex);
    gTemps.erase(temp);
}

bool processRunning(long pid) {
    if (pid <= 0 || pid > 0x7fffffffL) return false;
    return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

/// The PID in a temporary name of ours (".NAME.tmp-PID" or ".NAME.part-PID"), or -1.
long temporaryPid(std::string_view name) {
    if (name.size() < 2 || name[0] != '.') return -1;
    for (std::string_view suffix : {".tmp-", ".part-"}) {
        const size_t at = name.rfind(suffix);
        if (at == std::string_view::npos || at < 2) continue;
        const std::string_view digits = name.substr(at + suffix.size());
        if (digits.empty() || digits.size() > 10) continue;
        long pid = 0;
        bool ok = true;
        for (char c : digits) {
            if (c < '0' || c > '9') ok = false;
            else pid = pid * 10 + (c - '0');
        }
        if (ok) return pid;
    }
    return -1;
}

/// read(2), retried when a signal interrupts it.
ssize_t readSome(int fd, char* buf, size_t size) {
    ssize_t n;
    do n = ::read(fd, buf, size);
    while (n < 0 && errno == EINTR);
    return n;
}

Result<void> writeAll(int fd, std::string_view bytes, const std::string& name) {
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Error{shown(name) + ": write failed (" + (n < 0 ? reason() : std::string("no progress")) + ")"};
        done += static_cast<size_t>(n);
    }
    return {};
}

}  // namespace

void syncFolder(const std::string& folder) {
    const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

const char* kindOf(mode_t mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a Unix socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

Result<int> openRegularFile(const std::string& path, std::string_view what, std::string_view verb) {
    const std::string w(what), cannot(verb);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Error{shown(path) + ": " + cannot + " " + w + " (" + reason() + ")"};
    if (!S_ISREG(st.st_mode))
        return Error{shown(path) + ": is " + kindOf(st.st_mode) + ", not a regular file; the " + w + " must be a regular file"};
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return Error{shown(path) + ": " + cannot + " " + w + " (" + reason() + ")"};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {  // replaced between stat() and open()
        ::close(fd);
        return Error{shown(path) + ": is no longer a regular file; the " + w + " must be a regular file"};
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

Result<std::string> readRegularFile(const std::string& path, uint64_t maxBytes, std::string_view what) {
    auto fd = openRegularFile(path, what);
    if (!fd) return Error{fd.error()};
    const std::string w(what);
    struct stat st {};
    ::fstat(fd.value(), &st);
    const auto tooLarge = [&](uint64_t size) {
        ::close(fd.value());
        return Error{shown(path) + ": the " + w + " is " + mebibytes(size) + "; rackterm reads at most " + mebibytes(maxBytes)};
    };
    if (static_cast<uint64_t>(st.st_size) > maxBytes) return tooLarge(static_cast<uint64_t>(st.st_size));
    std::string text;
    text.reserve(static_cast<size_t>(st.st_size));
    char buf[65536];
    while (true) {
        const ssize_t n = readSome(fd.value(), buf, sizeof buf);
        if (n < 0) {
            const std::string why = reason();
            ::close(fd.value());
            return Error{shown(path) + ": cannot read the " + w + " (" + why + ")"};
        }
        if (n == 0) break;
        if (text.size() + static_cast<size_t>(n) > maxBytes) return tooLarge(text.size() + static_cast<size_t>(n));
        text.append(buf, static_cast<size_t>(n));
    }
    ::close(fd.value());
    return text;
}

bool sameFile(const std::string& a, const std::string& b) {
    struct stat sa {}, sb {};
    return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

std::string resolveLinks(const std::string& path) {
    std::error_code ec;
    fs::path p = fs::absolute(path, ec);
    if (ec) return path;
    for (int hops = 0; hops < 40; ++hops) {
        // The folder as the kernel resolves it (symbolic links and ".." in
        // that order), so the file named is the one open() would find.
        char* real = ::realpath(p.parent_path().c_str(), nullptr);
        if (!real) break;
        const fs::path folder = real;
        std::free(real);
        p = folder / p.filename();
        struct stat st {};
        if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;
        const fs::path to = fs::read_symlink(p, ec);
        if (ec) break;
        p = to.is_absolute() ? to : folder / to;
    }
    return p.string();
}

unsigned removeStaleTemporaries(const std::string& folder) {
    DIR* d = ::opendir(folder.c_str());
    if (!d) return 0;
    unsigned removed = 0;
    const int dfd = ::dirfd(d);
    while (const dirent* e = ::readdir(d)) {
        const long pid = temporaryPid(e->d_name);
        if (pid < 0 || pid == ::getpid() || processRunning(pid)) continue;
        struct stat st {};
        if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
        // A writer holds a lock on its temporary file for as long as it
        // writes: a process that only looks dead here (another PID namespace,
        // another host on a shared folder) keeps its file.
        const int fd = ::openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) continue;
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::unlinkat(dfd, e->d_name, 0) == 0) ++removed;
        ::close(fd);
    }
    ::closedir(d);
    return removed;
}

Result<void> copyRegularFile(const std::string& from, const std::string& to, uint64_t maxBytes) {
    auto in = openRegularFile(from, "file");
    if (!in) return Error{in.error()};
    struct stat st {};
    ::fstat(in.value(), &st);
    const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0777);
    if (out < 0) {
        const std::string why = reason();
        ::close(in.value());
        return Error{shown(to) + ": cannot create (" + why + ")"};
    }
    Result<void> result;
    uint64_t total = 0;
    char buf[65536];
    while (result) {
        const ssize_t n = readSome(in.value(), buf, sizeof buf);
        if (n < 0) {
            result = Error{shown(from) + ": cannot read (" + reason() + ")"};
            break;
        }
        if (n == 0) break;
        total += static_cast<uint64_t>(n);
        if (total > maxBytes) {
            result = Error{shown(from) + ": over " + mebibytes(maxBytes) + "; too large to copy"};
            break;
        }
        result = writeAll(out, std::string_view(buf, static_cast<size_t>(n)), to);
    }
    if (result && ::fsync(out) != 0) result = Error{shown(to) + ": fsync failed (" + reason() + ")"};
    if (::close(out) != 0 && result) result = Error{shown(to) + ": close failed (" + reason() + ")"};
    ::close(in.value());
    if (!result) ::unlink(to.c_str());
    return result;
}

namespace {

/// Whether `path` exists as a regular file (its mode in `mode`); an error
/// "SHOWN: is a FIFO, not a regular file; REMEDY" when it exists as anything else.
Result<bool> existsAsRegular(const std::string& path, const std::string& shownAs, const char* remedy,
                             mode_t* mode = nullptr) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return false;
    if (!S_ISREG(st.st_mode))
        return Error{shownAs + ": is " + kindOf(st.st_mode) + ", not a regular file; " + remedy};
    if (mode) *mode = st.st_mode & 07777;
    return true;
}

constexpr const char* kTargetRemedy = "rackterm replaces only regular files: choose another path";
constexpr const char* kBackupRemedy = "the backup goes there: remove it or choose another path";

/// `.NAME.tmp-PID` in `folder`: the one naming removeStaleTemporaries() knows.
std::string temporaryName(const std::string& folder, const std::string& name) {
    return (fs::path(folder) / ("." + name + ".tmp-" + std::to_string(::getpid()))).string();
}

}  // namespace

struct AtomicFile::Temporary {
    std::string path;
    int fd = -1;
    bool renamed = false;
    Temporary(const Temporary&) = delete;
    Temporary& operator=(const Temporary&) = delete;
    explicit Temporary(std::string p) : path(std::move(p)) {}
    ~Temporary() {
        if (fd >= 0) ::close(fd);
        if (!renamed) ::unlink(path.c_str());
        releaseTemp(path);
    }
};

AtomicFile::AtomicFile() = default;
AtomicFile::AtomicFile(AtomicFile&&) noexcept = default;
AtomicFile& AtomicFile::operator=(AtomicFile&&) noexcept = default;
AtomicFile::~AtomicFile() = default;

int AtomicFile::fd() const noexcept { return temp_ ? temp_->fd : -1; }

Result<AtomicFile> AtomicFile::create(const std::string& path, Options options) {
    if (path.empty()) return Error{"no file name given"};
    std::error_code ec;
    const fs::path absolute = fs::absolute(path, ec);
    if (ec) return Error{shown(path) + ": " + ec.message()};
    AtomicFile f;
    f.options_ = options;
    f.path_ = path;
    struct stat dir {};
    const std::string given = absolute.parent_path().string();
    if (::stat(given.c_str(), &dir) != 0 || !S_ISDIR(dir.st_mode))
        return Error{shown(path) + ": the folder " + shown(given) + " does not exist; create it or choose another path"};
    f.target_ = resolveLinks(absolute.string());
    const std::string name = fs::path(f.target_).filename().string();
    f.folder_ = fs::path(f.target_).parent_path().string();
    mode_t mode = 0666;
    const auto exists = existsAsRegular(f.target_, shown(path), kTargetRemedy, &mode);
    if (!exists) return Error{exists.error()};
    if (::stat(f.folder_.c_str(), &dir) != 0 || !S_ISDIR(dir.st_mode))
        return Error{shown(path) + ": the folder " + shown(f.folder_) + " does not exist; create it or choose another path"};
    if (::access(f.folder_.c_str(), W_OK) != 0)
        return Error{shown(path) + ": the folder " + shown(f.folder_) + " is not writable; choose another path"};
    if (options.keepBackup)
        if (auto b = existsAsRegular(f.target_ + "~", shown(f.target_ + "~"), kBackupRemedy); !b) return Error{b.error()};
    removeStaleTemporaries(f.folder_);
    const std::string temp = temporaryName(f.folder_, name);
    if (!claimTemp(temp)) return Error{shown(path) + ": another write to this file is under way; try again when it is done"};
    f.temp_ = std::make_unique<Temporary>(temp);
    for (int attempt = 0; attempt < 2 && f.temp_->fd < 0; ++attempt) {
        f.temp_->fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (f.temp_->fd < 0 && errno == EEXIST) ::unlink(temp.c_str());  // left by a dead process that had our PID
    }
    if (f.temp_->fd < 0)
        return Error{shown(path) + ": cannot create a file in " + shown(f.folder_) + " (" + reason() + ")"};
    if (exists.value()) ::fchmod(f.temp_->fd, mode);  // the umask must not narrow the file it replaces
    ::flock(f.temp_->fd, LOCK_EX | LOCK_NB);  // ours while we write: removeStaleTemporaries() leaves it alone
    return f;
}

Result<void> AtomicFile::write(std::string_view bytes) {
    if (!temp_) return Error{shown(path_) + ": the file is already committed"};
    return writeAll(temp_->fd, bytes, path_);
}

Result<void> AtomicFile::keepBackup() {
    const std::string backup = target_ + "~";
    const std::string temp = temporaryName(folder_, fs::path(backup).filename().string());
    if (auto b = existsAsRegular(backup, shown(backup), kBackupRemedy); !b) return Error{b.error()};
    ::unlink(temp.c_str());
    // A hard link keeps the old file as it is, with no copy; where links are
    // refused (another owner's file, a file system without them) a bounded
    // copy of the regular file does.
    if (::link(target_.c_str(), temp.c_str()) != 0) {
        if (auto c = copyRegularFile(target_, temp, options_.maxBackupCopyBytes); !c)
            return Error{shown(path_) + ": cannot keep the backup " + shown(backup) + ": " + c.error()};
    }
    if (::rename(temp.c_str(), backup.c_str()) != 0) {
        const std::string why = reason();
        ::unlink(temp.c_str());
        return Error{shown(path_) + ": cannot keep the backup " + shown(backup) + " (" + why + ")"};
    }
    ::unlink(temp.c_str());  // still there when NAME~ was already a link to NAME: rename() did nothing
    return {};
}

Result<void> AtomicFile::commit() {
    if (!temp_) return Error{shown(path_) + ": nothing to commit"};
    Result<void> result;
    const int fd = std::exchange(temp_->fd, -1);
    if (::fsync(fd) != 0) result = Error{shown(path_) + ": cannot write (" + reason() + "); the file is unchanged"};
    if (::close(fd) != 0 && result) result = Error{shown(path_) + ": cannot write (" + reason() + "); the file is unchanged"};
    if (result) {  // the target again: it may have changed since create()
        auto exists = existsAsRegular(target_, shown(path_), kTargetRemedy);
        if (!exists) result = Error{exists.error()};
        else if (exists.value() && options_.keepBackup) result = keepBackup();
    }
    if (result && ::rename(temp_->path.c_str(), target_.c_str()) != 0)
        result = Error{shown(path_) + ": cannot replace the file (" + reason() + "); it is unchanged"};
    temp_->renamed = bool(result);
    temp_.reset();  // removes the temporary file unless it was renamed into place
    if (result) syncFolder(folder_);
    return result;
}

Result<void> replaceFile(const std::string& path, std::string_view text, AtomicFile::Options options) {
    auto f = AtomicFile::create(path, options);
    if (!f) return Error{f.error()};
    if (auto w = f.value().write(text); !w) return w;
    return f.value().commit();
}

Result<bool> exchangePaths(const std::string& a, const std::string& b) {
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) return true;
    if (errno == EINVAL || errno == ENOSYS) return false;
    return Error{"cannot exchange " + printable(a, kPathChars) + " and " + printable(b, kPathChars) + ": " + std::strerror(errno)};
}

}  // namespace rackterm::files
