// The hot-reload pipeline of a live session: inotify on each watched node's
// sources (recursive) and on every module file; the node's build command as a
// child process, started on the first event that reports a complete source
// (no debounce; one build at a time per node, and changes during a build make
// exactly one pending build, started when it ends); on success a crossfaded
// swap through Runtime::swapNode. Two short waits remain: a source that was
// deleted or renamed away holds the build up to 300 ms for the new file of a
// rename-and-rewrite save (its arrival starts the build at once), and a
// replaced module of a node without a build command is swapped 100 ms after
// its last write. A failed build, a refused module or a failing create()
// leaves the old processor playing and says why. [control]: driven by the
// control thread's poll loop through pollFds(), onReadable() and tick().
#pragma once

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Runtime.hpp>

#include <poll.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rackterm::loader {
class SourceWatcher;
}

namespace rackterm::app {

class HotReload {
public:
    /// `log` receives every line for the log pane (build output, results);
    /// `warn` the lines that are problems (first compiler error, refusals).
    HotReload(Runtime& runtime, std::function<void(const std::string&)> log,
              std::function<void(const std::string&)> warn);
    ~HotReload();
    /// Replace where lines go (the console shows them on its message line too).
    void setReporters(std::function<void(const std::string&)> log, std::function<void(const std::string&)> warn);

    /// Watch every node: sources of nodes with `watch`, module files of all
    /// nodes loaded from a file. Returns a warning line per node it could not watch.
    std::vector<std::string> start();

    /// Descriptors to poll (inotify and running builds' output).
    std::vector<pollfd> pollFds() const;
    /// After poll: read inotify events and build output (never blocks); a
    /// source change on an idle node starts its build here, at once. `now`:
    /// steady-clock seconds, the same clock as tick()'s.
    void onReadable(double now);
    /// Finish completed builds and start what is due: the pending build after
    /// one ends, a build held for a vanished source whose wait ran out, a
    /// settled module swap. Call often (nextDeadline() says when).
    void tick(double now);
    /// Seconds until tick() has work, or -1 for none (a poll timeout hint).
    double nextDeadline(double now) const;

    /// `reload NODE`: build now (when the node has a build command), then swap.
    Reply reload(const std::string& id);
    /// `build status`: each watched node's state in one line.
    std::string status() const;

    /// Builds started so far for a node (tests count them).
    unsigned buildsStarted(size_t node) const;
    /// Wall time of a node's last finished build, seconds (0 before any).
    double lastBuildSeconds(size_t node) const;
    /// True while a node builds, owes a build, or waits to swap a replaced module.
    bool busy(size_t node) const;

private:
    struct NodeState;
    /// One watcher event for `st`: a module write (`module`), or a source file
    /// `path` written or, with `removed`, gone.
    void trigger(NodeState& st, bool module, const std::string& path, bool removed, double now);
    void startIfDue(size_t node, double now);
    void startBuild(size_t node);
    void finishBuild(size_t node);
    void swap(size_t node, const std::string& prefix);
    /// Report swaps that were waiting for an earlier operation and are done now.
    void reportSwaps();

    struct PendingSwap {
        std::string id;
        std::string prefix;
        Later<SwapReport> result;
    };
    Runtime& runtime_;
    std::vector<PendingSwap> swaps_;
    std::function<void(const std::string&)> log_, warn_;
    std::unique_ptr<loader::SourceWatcher> watcher_;
    std::vector<std::unique_ptr<NodeState>> nodes_;
};

/// Before a session opens: run the build command of every watched node whose
/// module file does not exist yet, synchronously, reporting on `log`. Error
/// (with the compiler's first error line) when a build fails.
Result<void> buildMissingModules(const config::Session& session, const std::function<void(const std::string&)>& log);

/// Without building anything: an error for the first watched node (with a
/// build command) whose module file does not exist, naming the file and the
/// command that builds it ("FILE:LINE:COL: node 'drive': its module ... does
/// not exist; build it with `...` or run `rackterm check --build`").
Result<void> checkModulesExist(const config::Session& session);

}  // namespace rackterm::app
