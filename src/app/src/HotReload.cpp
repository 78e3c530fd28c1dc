#include <rackterm/app/HotReload.hpp>

#include <rackterm/app/Catalog.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/loader/Watcher.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

namespace rackterm::app {

namespace fs = std::filesystem;

namespace {
// Builds start on the first relevant event (SourceWatcher reports a source
// when it is complete), with two short waits:
//
// A source that vanished holds the build this long for it to come back: vim
// and Emacs save by renaming the old file to a backup and writing a new one,
// JetBrains IDEs by renaming a temporary over it. The file's IN_CLOSE_WRITE or
// IN_MOVED_TO ends the wait at once; a real deletion builds when it runs out.
constexpr double kVanishedSeconds = 0.3;
// A replaced module file (a node without a build command) is swapped this
// long after its last event. IN_CLOSE_WRITE and IN_MOVED_TO mark the end of
// one writer, but a module is often made by several in a row (link, then
// strip or objcopy; install's copy): each would be an audible swap, and an
// intermediate file must not be loaded. Someone else's build is slower anyway.
constexpr double kModuleSettleSeconds = 0.1;

/// The folder a session's build commands run in: the session file's, or the
/// working folder for a session with no file.
std::string sessionFolder(const std::string& sessionPath) {
    return sessionPath.empty() ? fs::current_path().string() : fs::absolute(sessionPath).parent_path().string();
}

/// A compiler diagnostic line: "file:line:col: error: ..." (GCC and Clang).
bool isError(const std::string& line) {
    static const std::regex re(R"(^[^:\s][^:]*:\d+:\d+: (fatal )?error: )");
    return std::regex_search(line, re);
}
}  // namespace

struct HotReload::NodeState {
    std::string id;
    std::string build;       // command, "" when none
    std::string folder;      // where the build runs (the session's folder)
    std::string module;      // module file
    bool watched = false;
    bool pending = false;    // a build is owed: starts once the node is idle and no source is missing
    std::set<std::string> missing;  // sources that vanished since the last build start (may come back)
    double holdUntil = 0;    // missing sources hold the build, or a module swap waits, until then (0 = none)
    bool moduleChanged = false;  // no build command: the module file was replaced, swap at holdUntil
    std::unique_ptr<loader::BuildProcess> running;
    std::vector<std::string> errors;
    std::string state = "idle";
    unsigned builds = 0;
    double lastSeconds = 0;
};

HotReload::HotReload(Runtime& runtime, std::function<void(const std::string&)> log,
                     std::function<void(const std::string&)> warn)
    : runtime_(runtime), log_(std::move(log)), warn_(std::move(warn)) {}

HotReload::~HotReload() = default;

void HotReload::setReporters(std::function<void(const std::string&)> log, std::function<void(const std::string&)> warn) {
    log_ = std::move(log);
    warn_ = std::move(warn);
}

std::vector<std::string> HotReload::start() {
    std::vector<std::string> problems;
    // (Re)start: the nodes may have changed since. A node still there with the
    // same module and build command keeps its state (a running or owed build,
    // a module waiting to be swapped); swaps already asked for are reported.
    std::vector<std::unique_ptr<NodeState>> old = std::move(nodes_);
    nodes_.clear();
    watcher_.reset();
    auto w = loader::SourceWatcher::create();
    if (!w) return {w.error()};
    watcher_ = std::move(w.value());
    const std::string& path = runtime_.path();
    const std::string folder = sessionFolder(path);
    for (size_t n = 0; n < runtime_.nodeCount(); ++n) {
        const config::NodeSpec& spec = runtime_.nodeSpec(n);
        const std::string build = spec.watch ? spec.watch->build : std::string();
        std::unique_ptr<NodeState> st;
        for (auto& o : old)
            if (o && o->id == runtime_.nodeId(n) && o->module == runtime_.modulePath(n) && o->build == build && o->folder == folder)
                st = std::move(o);
        if (!st) st = std::make_unique<NodeState>();
        st->watched = false;
        st->id = runtime_.nodeId(n);
        st->folder = folder;
        st->module = runtime_.modulePath(n);
        if (spec.watch) {
            st->build = spec.watch->build;
            if (auto r = watcher_->watchSources(static_cast<int>(n), resolveAgainst(path, spec.watch->source)); !r)
                problems.push_back(st->id + ": " + r.error());
            else
                st->watched = true;
        }
        if (!st->module.empty()) {
            if (auto r = watcher_->watchModule(static_cast<int>(n), st->module); !r) problems.push_back(st->id + ": " + r.error());
            else st->watched = true;
        }
        nodes_.push_back(std::move(st));
    }
    return problems;
}

std::vector<pollfd> HotReload::pollFds() const {
    std::vector<pollfd> fds;
    if (watcher_) fds.push_back({watcher_->fd(), POLLIN, 0});
    for (const auto& n : nodes_)
        if (n->running && n->running->fd() >= 0) fds.push_back({n->running->fd(), POLLIN, 0});
    return fds;
}

void HotReload::onReadable(double now) {
    if (watcher_)
        for (const auto& ev : watcher_->read()) {
            if (ev.key < 0 || static_cast<size_t>(ev.key) >= nodes_.size()) continue;
            NodeState& st = *nodes_[static_cast<size_t>(ev.key)];
            // A build of ours writes the module too; its result drives the swap.
            if (ev.module && !st.build.empty()) continue;
            trigger(st, ev.module, ev.path, ev.removed, now);
        }
    // After the whole batch: a save that gave several events starts one build.
    for (size_t n = 0; n < nodes_.size(); ++n) startIfDue(n, now);
    for (size_t n = 0; n < nodes_.size(); ++n) {
        NodeState& st = *nodes_[n];
        if (!st.running) continue;
        for (const auto& line : st.running->readLines()) {
            log_(st.id + ": " + line);
            if (isError(line)) st.errors.push_back(line);
        }
    }
}

void HotReload::trigger(NodeState& st, bool module, const std::string& path, bool removed, double now) {
    if (module) {
        st.moduleChanged = true;
        st.holdUntil = now + kModuleSettleSeconds;  // from the last write
        return;
    }
    // Never absorbed, even right after a build started: that build may have
    // read the file already, so the last save is built by the pending one.
    st.pending = true;
    if (removed) {
        st.missing.insert(path);
        st.holdUntil = now + kVanishedSeconds;
    } else {
        st.missing.erase(path);
    }
}

void HotReload::startIfDue(size_t node, double now) {
    NodeState& st = *nodes_[node];
    if (st.build.empty()) {
        if (st.moduleChanged && now >= st.holdUntil) {
            st.moduleChanged = false;
            st.holdUntil = 0;
            swap(node, st.id + ": module replaced");
        }
        return;
    }
    if (!st.pending || st.running) return;  // a running build: at most one waits behind it
    if (!st.missing.empty() && now < st.holdUntil) return;  // a rename-and-rewrite save is under way
    startBuild(node);
}

double HotReload::nextDeadline(double now) const {
    double next = -1;
    for (const auto& n : nodes_) {
        const bool held = n->build.empty() ? n->moduleChanged : !n->running && n->pending && !n->missing.empty();
        if (held) next = next < 0 ? n->holdUntil - now : std::min(next, n->holdUntil - now);
        if (n->running) next = next < 0 ? 0.05 : std::min(next, 0.05);
    }
    return next < 0 ? -1 : std::max(0.0, next);
}

void HotReload::tick(double now) {
    reportSwaps();
    for (size_t n = 0; n < nodes_.size(); ++n) {
        NodeState& st = *nodes_[n];
        if (st.running) {
            for (const auto& line : st.running->readLines()) {
                log_(st.id + ": " + line);
                if (isError(line)) st.errors.push_back(line);
            }
            if (st.running->finished()) finishBuild(n);
        }
        startIfDue(n, now);  // the pending build, a hold run out, a settled module
    }
}

void HotReload::startBuild(size_t node) {
    NodeState& st = *nodes_[node];
    st.errors.clear();
    st.pending = false;
    st.missing.clear();
    st.holdUntil = 0;
    auto b = loader::BuildProcess::start(st.build, st.folder);
    if (!b) {
        st.state = "failed";
        warn_(st.id + ": " + b.error());
        return;
    }
    st.running = std::move(b.value());
    ++st.builds;
    st.state = "building";
    log_("building " + st.id + "...");
}

void HotReload::finishBuild(size_t node) {
    NodeState& st = *nodes_[node];
    const int code = st.running->exitCode();
    const double seconds = st.running->seconds();
    st.lastSeconds = seconds;
    st.running.reset();
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", seconds);
    if (code != 0) {
        st.state = "failed";
        const std::string first = st.errors.empty() ? "exit status " + std::to_string(code) : st.errors.front();
        warn_(st.id + ": build failed in " + took + ", the old processor keeps playing: " + first);
    } else {
        swap(node, st.id + ": build ok in " + took);
    }
}

void HotReload::swap(size_t node, const std::string& prefix) {
    swaps_.push_back(PendingSwap{nodes_[node]->id, prefix, runtime_.swapNode(nodes_[node]->id, nodes_[node]->module, true)});
    reportSwaps();
}

void HotReload::reportSwaps() {
    std::erase_if(swaps_, [this](const PendingSwap& p) {
        if (!p.result.ready()) return false;
        NodeState* st = nullptr;
        for (auto& n : nodes_)
            if (n->id == p.id) st = n.get();
        const Result<SwapReport>& r = p.result.result();
        if (!r) {
            if (st) st->state = "refused";
            warn_(p.prefix + ", but the new module was refused, the old processor keeps playing: " + r.error());
        } else {
            if (st) st->state = "ok";
            log_(p.prefix + ", " + r.value().summary());
        }
        return true;
    });
}

Reply HotReload::reload(const std::string& id) {
    size_t node = nodes_.size();
    for (size_t n = 0; n < nodes_.size(); ++n)
        if (nodes_[n]->id == id) node = n;
    auto index = runtime_.findNode(id);
    if (!index) return Reply{false, index.error(), false};
    if (node == nodes_.size()) return reloadFromModule(runtime_, index.value());  // added this turn: not watched yet
    NodeState& st = *nodes_[node];
    if (st.build.empty()) {
        Reply r = reloadFromModule(runtime_, index.value());
        if (r.ok && !r.waiting()) st.state = "ok";
        return r;
    }
    if (st.running) st.pending = true;
    else startBuild(node);
    return Reply{true, st.id + ": building (the swap follows a successful build)", false};
}

std::string HotReload::status() const {
    std::string out;
    for (const auto& st : nodes_) {
        if (!st->watched) continue;
        if (!out.empty()) out += "; ";
        out += st->id + ": " + st->state + (st->pending ? " (+1 pending)" : "") + ", " + std::to_string(st->builds) +
               " builds";
    }
    return out.empty() ? "no watched nodes" : out;
}

unsigned HotReload::buildsStarted(size_t node) const { return node < nodes_.size() ? nodes_[node]->builds : 0; }

double HotReload::lastBuildSeconds(size_t node) const { return node < nodes_.size() ? nodes_[node]->lastSeconds : 0; }

bool HotReload::busy(size_t node) const {
    return node < nodes_.size() && (nodes_[node]->running || nodes_[node]->pending || nodes_[node]->moduleChanged);
}

namespace {
/// Watched nodes with a build command whose module file does not exist yet.
std::vector<const config::NodeSpec*> unbuiltModules(const config::Session& session) {
    std::vector<const config::NodeSpec*> out;
    for (const auto& n : session.nodes) {
        std::error_code ec;
        if (n.watch && !n.watch->build.empty() && !n.path.empty() && !fs::exists(resolveAgainst(session.path, n.path), ec))
            out.push_back(&n);
    }
    return out;
}
}  // namespace

Result<void> buildMissingModules(const config::Session& session, const std::function<void(const std::string&)>& log) {
    const std::string folder = sessionFolder(session.path);
    for (const config::NodeSpec* node : unbuiltModules(session)) {
        const config::NodeSpec& n = *node;
        log("building " + n.id + " (its module does not exist yet)...");
        auto b = loader::BuildProcess::start(n.watch->build, folder);
        if (!b) return Error{n.where.str() + ": " + b.error()};
        std::string firstError;
        while (!b.value()->finished()) {
            for (const auto& line : b.value()->readLines()) {
                log(n.id + ": " + line);
                if (firstError.empty() && isError(line)) firstError = line;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (b.value()->exitCode() != 0)
            return Error{n.where.str() + ": building node '" + n.id + "' failed" +
                         (firstError.empty() ? " (exit status " + std::to_string(b.value()->exitCode()) + ")" : ": " + firstError)};
    }
    return {};
}

Result<void> checkModulesExist(const config::Session& session) {
    const auto missing = unbuiltModules(session);
    if (missing.empty()) return {};
    const config::NodeSpec& n = *missing.front();
    return Error{n.processorWhere.str() + ": node '" + n.id + "': its module " + printable(n.path, kPathChars) +
                 " does not exist; build it with `" + printable(n.watch->build, kPathChars) +
                 "` in the session's folder, or run `rackterm check --build`"};
}

}  // namespace rackterm::app
