// Watching processor sources and modules with inotify, and running builds.
// Everything here is [control]: file descriptors for the control thread's
// poll loop, never blocking.
#pragma once

#include <rackterm/common/Result.hpp>

#include <sys/types.h>

#include <cstdint>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rackterm::loader {

/// True when a change to `relativePath` (inside a watched source folder)
/// should trigger a build: C/C++ sources and headers (.c .cc .cpp .cxx .h .hh
/// .hpp .hxx .inl .ipp), CMakeLists.txt and *.cmake; never hidden files,
/// editor temp and swap files (*~, *.swp, *.swo, *.swx, 4913, #*#, .#*), nor
/// anything under a build folder (build*, cmake-build-*, CMakeFiles) or .git.
bool countsAsSource(const std::string& relativePath);
/// True for a folder that is never watched (build output, VCS, hidden).
bool ignoredFolder(const std::string& name);

/// One inotify instance watching source folders (recursively, new
/// subfolders included) and module files, each under a caller's key.
///
/// Which kernel events count, so that one save is reported when the file is
/// complete (a build may start on the first event):
/// - a source written and closed (IN_CLOSE_WRITE) or renamed into place
///   (IN_MOVED_TO): a change, the file complete;
/// - a source deleted (IN_DELETE) or renamed away (IN_MOVED_FROM): a change
///   with `removed` set. vim, Emacs and JetBrains IDEs save by renaming the old
///   file away and writing or renaming a new one, so the caller should give
///   the file a moment to come back before building;
/// - a source created (IN_CREATE): not by itself, since its IN_CLOSE_WRITE
///   follows when the writer is done (an empty new file is not built); only a
///   symbolic link or a hard link, which no close follows, counts at once;
/// - a (not ignored) folder moved in counts as a change and is watched; one
///   moved away counts as `removed` and is no longer watched; a folder made
///   with mkdir counts only through the files later written in it;
/// - a module file written and closed or renamed into place; other events on
///   it do not count;
/// - an overflowing kernel queue (IN_Q_OVERFLOW, events were lost) counts as
///   a change of every key's sources and modules, so no save is ever missed.
class SourceWatcher {
public:
    struct Event {
        int key;
        bool module;           ///< the module file changed (else a source did)
        std::string path;      ///< the file (or folder) that changed; "" after a queue overflow
        bool removed = false;  ///< a source or folder went away (deleted or renamed away)
    };

    /// inotify_init1(IN_NONBLOCK | IN_CLOEXEC). Error when inotify is unavailable.
    static Result<std::unique_ptr<SourceWatcher>> create();
    ~SourceWatcher();
    SourceWatcher(const SourceWatcher&) = delete;
    SourceWatcher& operator=(const SourceWatcher&) = delete;

    /// The descriptor to poll for POLLIN.
    int fd() const noexcept { return fd_; }
    /// Watch `folder` and every subfolder not ignored; events carry `key`.
    Result<void> watchSources(int key, const std::string& folder);
    /// Watch the module file `path` (through its folder, so a replaced file is seen).
    Result<void> watchModule(int key, const std::string& path);
    /// Read what inotify has (never blocks); returns the events that count,
    /// in the order the kernel gave them (see the rules above).
    std::vector<Event> read();

private:
    explicit SourceWatcher(int fd) : fd_(fd) {}
    struct Watch {
        int key;
        std::string root;    ///< the source folder the key watches ("" for module folders)
        std::string folder;  ///< this watch's folder
    };
    void addTree(int key, const std::string& root, const std::string& folder);
    void removeTree(const std::string& folder);
    void sourceEvent(const Watch& w, const std::string& name, uint32_t mask, std::vector<Event>& out);
    void overflowed(std::vector<Event>& out) const;
    int fd_;
    std::map<int, Watch> watches_;                          // by inotify watch descriptor
    std::multimap<std::string, std::pair<int, std::string>> modules_;  // folder -> (key, file name)
};

/// A build command running as a child process (`/bin/sh -c COMMAND` in a
/// folder, in its own process group, stdout and stderr into one pipe). The
/// destructor ends a build still running (its whole process group) and reaps it.
class BuildProcess {
public:
    static Result<std::unique_ptr<BuildProcess>> start(const std::string& command, const std::string& folder);
    ~BuildProcess();
    BuildProcess(const BuildProcess&) = delete;
    BuildProcess& operator=(const BuildProcess&) = delete;

    /// The pipe to poll for POLLIN; -1 once the output has ended.
    int fd() const noexcept { return fd_; }
    /// Read what output is there; returns the lines completed so far.
    std::vector<std::string> readLines();
    /// True once the output ended and the process was reaped.
    bool finished();
    /// Exit status (valid when finished): 0 ok, else the status or 128+signal.
    int exitCode() const noexcept { return exitCode_; }
    /// Wall time since start, seconds.
    double seconds() const;

private:
    BuildProcess() = default;
    pid_t pid_ = -1;
    int fd_ = -1;
    int exitCode_ = -1;
    bool reaped_ = false;
    std::string partial_;
    double started_ = 0;
};

}  // namespace rackterm::loader
