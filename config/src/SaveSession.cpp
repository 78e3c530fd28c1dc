// Atomic save: temp file, fsync, backup, rename, folder fsync.
#include <rackterm/config/Session.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace rackterm::config {

namespace fs = std::filesystem;

namespace {

std::string reason() { return std::strerror(errno); }

/// Write `text` to a new file `tmp` and fsync it. Mode 0644 (less the umask).
Result<void> writeSynced(const std::string& tmp, const std::string& text) {
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Error{tmp + ": cannot create (" + reason() + ")"};
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            std::string why = reason();
            ::close(fd);
            ::unlink(tmp.c_str());
            return Error{tmp + ": write failed (" + why + ")"};
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        std::string why = reason();
        ::unlink(tmp.c_str());
        return Error{tmp + ": fsync failed (" + why + ")"};
    }
    return {};
}

void syncFolder(const fs::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

Result<void> replace(const std::string& tmp, const std::string& target) {
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
        std::string why = reason();
        ::unlink(tmp.c_str());
        return Error{target + ": cannot replace (" + why + ")"};
    }
    return {};
}

}  // namespace

Result<void> saveSession(const Session& session, const std::string& path) {
    const fs::path target = fs::absolute(path);
    const fs::path dir = target.parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        return Error{path + ": cannot save, the folder " + dir.string() + " does not exist"};
    const std::string suffix = ".tmp-" + std::to_string(::getpid());
    const std::string name = target.filename().string();
    if (fs::exists(target, ec)) {  // keep the previous version as NAME~ (itself replaced atomically)
        std::string old;
        if (FILE* f = std::fopen(target.c_str(), "rb")) {
            char buf[65536];
            size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) old.append(buf, n);
            std::fclose(f);
        }
        const std::string backupTmp = (dir / ("." + name + "~" + suffix)).string();
        if (auto r = writeSynced(backupTmp, old); !r) return Error{path + ": cannot write the backup: " + r.error()};
        if (auto r = replace(backupTmp, target.string() + "~"); !r) return r;
    }
    const std::string tmp = (dir / ("." + name + suffix)).string();
    if (auto r = writeSynced(tmp, formatSession(session)); !r) return Error{path + ": cannot save: " + r.error()};
    if (auto r = replace(tmp, target.string()); !r) return r;
    syncFolder(dir);
    return {};
}

}  // namespace rackterm::config
