#include <rackterm/app/Modes.hpp>

#include <rackterm/app/LineFramer.hpp>
#include <rackterm/app/Logging.hpp>
#include <rackterm/app/Script.hpp>
#include <rackterm/engine/JackBackend.hpp>
#include <rackterm/engine/OfflineRender.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

namespace rackterm::app {

namespace {

int stopPipe[2] = {-1, -1};

void onStopSignal(int) {
    const int saved = errno;
    const char c = 1;
    [[maybe_unused]] ssize_t n = ::write(stopPipe[1], &c, 1);
    errno = saved;
}

}  // namespace

int installStopSignals() {
    if (stopPipe[0] < 0) {
        if (::pipe2(stopPipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
        struct sigaction sa {};
        sa.sa_handler = &onStopSignal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        sigaction(SIGHUP, &sa, nullptr);
        std::signal(SIGPIPE, SIG_IGN);
    }
    return stopPipe[0];
}

namespace {
void toStderr(const std::string& line) { std::fprintf(stderr, "rackterm: %s\n", line.c_str()); }

/// Load a session; with `build`, run the build command of each watched node
/// whose module is missing, else report such a node (and its command).
Result<config::Session> loadModules(const std::string& path, bool build) {
    auto session = config::loadSession(path);
    if (!session) return session;
    if (!build) {
        if (auto m = checkModulesExist(session.value()); !m) return Error{m.error()};
        return session;
    }
    if (auto b = buildMissingModules(session.value(), toStderr); !b) return Error{b.error()};
    return session;
}
}  // namespace

int runCheck(const std::string& sessionPath, bool build) {
    auto session = loadModules(sessionPath, build);
    if (!session) {
        toStderr(session.error());
        return kExitUser;
    }
    auto rt = Runtime::open(session.value(), session->engine.sampleRate.value_or(48000.0), session->engine.block.value_or(256));
    if (!rt) {
        toStderr(rt.error());
        return kExitUser;
    }
    for (const auto& e : rt.value()->takeEvents(nowSeconds())) std::fprintf(stderr, "rackterm: warning: %s\n", e.c_str());
    const Runtime& r = *rt.value();
    std::string ids;
    if (r.isChain()) {
        for (size_t n = 0; n < r.nodeCount(); ++n) ids += (n ? " -> " : "") + r.nodeId(n);
    } else {  // a graph: its processing order and size
        for (size_t n : r.processingOrder()) ids += (ids.empty() ? "" : ", ") + r.nodeId(n);
        ids += " (" + std::to_string(r.connections().size()) + " connections)";
    }
    if (r.graph().totalLatency)
        ids += "; latency " + std::to_string(r.graph().totalLatency) + " frames";
    std::printf("ok: %s: %zu nodes: %s\n", sessionPath.c_str(), r.nodeCount(), ids.c_str());
    return kExitOk;
}

int runRender(const RenderOptions& o) {
    auto session = loadModules(o.session, true);
    if (!session) {
        toStderr(session.error());
        return kExitUser;
    }
    auto job = engine::OfflineRender::open(o.input, o.output, session->engine.sampleRate.value_or(0.0),
                                           session->engine.inputCount(), session->engine.outputCount());
    if (!job) {
        toStderr(job.error());
        return kExitUser;
    }
    for (const auto& n : job.value()->notes()) std::fprintf(stderr, "rackterm: warning: %s\n", n.c_str());
    const uint32_t block = o.block ? o.block : session->engine.block.value_or(256);
    auto rt = Runtime::open(session.value(), job.value()->sampleRate(), block, 0, true);
    if (!rt) {
        toStderr(rt.error());
        return kExitUser;
    }
    rt.value()->setOffline(true);
    // A script: plain lines before the first frame, `at` lines at their exact frame.
    std::vector<ScriptLine> timed;
    std::optional<Script> script;
    if (!o.script.empty()) {
        auto s = loadScript(o.script);
        if (!s) {
            toStderr(s.error());
            return kExitUser;
        }
        script = std::move(s.value());
        CommandContext ctx{*rt.value(), Source::Render};
        for (const auto& l : script->lines) {
            if (l.atSeconds) {
                timed.push_back(l);
                continue;
            }
            if (const Reply r = finishOffline(*rt.value(), execute(ctx, l.command)); !r.ok) {
                toStderr(script->where(l, r.text));
                return kExitUser;
            }
        }
        std::stable_sort(timed.begin(), timed.end(), [](const auto& a, const auto& b) { return *a.atSeconds < *b.atSeconds; });
    }
    const double rate = job.value()->sampleRate();
    auto frameOf = [rate](const ScriptLine& l) { return static_cast<uint64_t>(std::llround(*l.atSeconds * rate)); };
    size_t nextTimed = 0;
    std::string scriptError;
    auto hook = [&](uint64_t pos) -> uint64_t {
        CommandContext ctx{*rt.value(), Source::Render};
        rt.value()->tick();
        while (nextTimed < timed.size() && frameOf(timed[nextTimed]) <= pos) {
            const Reply r = finishOffline(*rt.value(), execute(ctx, timed[nextTimed].command));
            if (!r.ok && scriptError.empty()) scriptError = script->where(timed[nextTimed], r.text);
            ++nextTimed;
        }
        return nextTimed < timed.size() ? frameOf(timed[nextTimed]) : UINT64_MAX;
    };
    const bool tty = ::isatty(STDERR_FILENO);
    auto progress = [tty](double f) {
        if (tty) std::fprintf(stderr, "\rrendering %3d %%", static_cast<int>(f * 100.0));
    };
    // A crashed child, or a plugin reset after NaN/Inf, is replaced between blocks (tick).
    bool isolated = false;
    for (size_t n = 0; n < rt.value()->nodeCount(); ++n)
        isolated = isolated || rt.value()->nodeIsolated(n) || rt.value()->nodeIsPlugin(n);
    auto stats = job.value()->run(rt.value()->engine(), block,
                                  timed.empty() && !isolated ? engine::OfflineRender::BlockHook{} : hook, progress);
    if (tty) std::fprintf(stderr, "\n");
    if (!stats) {
        toStderr(stats.error());
        return kExitUser;
    }
    if (!scriptError.empty()) {  // the render finished, but a timed command failed: no output
        std::error_code ec;
        std::filesystem::remove(o.output, ec);
        toStderr(scriptError);
        return kExitUser;
    }
    for (const auto& e : rt.value()->takeEvents(nowSeconds())) std::fprintf(stderr, "rackterm: warning: %s\n", e.c_str());
    const double audio = static_cast<double>(stats->frames) / stats->sampleRate;
    std::printf("rendered %s: %llu frames (%.2f s at %.0f Hz) in %.3f s, %.1fx real time\n", o.output.c_str(),
                static_cast<unsigned long long>(stats->frames), audio, stats->sampleRate, stats->seconds,
                stats->seconds > 0 ? audio / stats->seconds : 0.0);
    return kExitOk;
}

namespace {
/// Headless start-up shared by `run` and `--headless`: stderr logging, stop
/// signals, the session live on JACK. On failure logs the error and sets `code`.
std::unique_ptr<Live> startHeadless(const std::string& sessionPath, int& stopFd, int& code, LiveOptions options) {
    initLogging(true);
    stopFd = installStopSignals();
    auto live = openLive(sessionPath, code, options);
    if (!live) {
        spdlog::error("{}", live.error());
        return nullptr;
    }
    return std::move(live.value());
}

/// Ends a live session when it goes out of scope: cleanly (the recovery
/// file goes) once `clean` is set, else keeping the unsaved edits on disk.
struct EndOfSession {
    Live& live;
    bool clean = false;
    ~EndOfSession() { live.end(clean); }
};

}  // namespace

int runScript(const std::string& scriptPath, const std::string& sessionPath, LiveOptions options) {
    auto script = loadScript(scriptPath);
    if (!script) {
        initLogging(true);
        spdlog::error("{}", script.error());
        return kExitUser;
    }
    int stopFd = -1, code = kExitOk;
    auto live = startHeadless(sessionPath, stopFd, code, options);
    if (!live) return code;
    Live& l = *live;
    EndOfSession end{l};
    // Lines run in order, each once the reply to the one before it is final:
    // the plain lines at once, then the `at` lines at their times (counted
    // from the end of the plain lines).
    std::vector<ScriptLine> plain, timed;
    for (const auto& line : script->lines) (line.atSeconds ? timed : plain).push_back(line);
    std::stable_sort(timed.begin(), timed.end(), [](const auto& a, const auto& b) { return *a.atSeconds < *b.atSeconds; });
    // The outcome of one final reply: nullopt to go on, else the exit status.
    auto finish = [&](const ScriptLine& line, const Reply& r) -> std::optional<int> {
        if (!r.ok) {
            spdlog::error("{}", script->where(line, r.text));
            return kExitUser;
        }
        if (!r.text.empty()) std::printf("%s\n", r.line().c_str());
        std::fflush(stdout);
        if (r.quit) {
            end.clean = true;
            return kExitOk;
        }
        return std::nullopt;
    };
    size_t nextPlain = 0, nextTimed = 0;
    double start = -1;  // when the plain lines were done
    std::function<std::optional<Reply>()> pending;
    const ScriptLine* pendingLine = nullptr;
    while (true) {
        if (pending) {
            if (std::optional<Reply> r = pending()) {
                pending = nullptr;
                if (auto stop = finish(*pendingLine, *r)) return *stop;
            }
        }
        while (!pending) {
            const ScriptLine* line = nullptr;
            if (nextPlain < plain.size()) {
                line = &plain[nextPlain++];
            } else {
                if (start < 0) start = nowSeconds();
                if (nextTimed < timed.size() && *timed[nextTimed].atSeconds <= nowSeconds() - start) line = &timed[nextTimed++];
            }
            if (!line) break;
            CommandContext ctx = l.context();
            Reply r = execute(ctx, line->command);
            if (r.waiting()) {
                pending = std::move(r.pending);
                pendingLine = line;
                break;
            }
            if (auto stop = finish(*line, r)) return *stop;
        }
        if (!pending && nextPlain == plain.size() && nextTimed == timed.size()) {
            end.clean = true;
            return kExitOk;
        }
        const double wait = pending || start < 0 ? 0.0 : *timed[nextTimed].atSeconds - (nowSeconds() - start);
        std::vector<pollfd> fds = {{stopFd, POLLIN, 0}};
        for (const auto& f : l.pollFds()) fds.push_back(f);
        ::poll(fds.data(), fds.size(), l.pollTimeout(std::clamp(static_cast<int>(wait * 1000.0), pending ? 2 : 0, 50)));
        if (fds[0].revents & POLLIN) {
            spdlog::info("stopping on signal");
            return kExitOk;
        }
        if (serviceLive(l)) {
            end.clean = true;
            return kExitOk;
        }
        if (stopForServerLoss(l)) return kExitEnvironment;
    }
}

int runHeadless(const std::string& sessionPath, LiveOptions options) {
    int stopFd = -1, code = kExitOk;
    auto live = startHeadless(sessionPath, stopFd, code, options);
    if (!live) return code;
    Live& l = *live;
    EndOfSession end{l};
    // Commands on standard input when it is a pipe or file: one per line, one
    // reply line on stdout; framed like the control socket (bounded lines).
    int commandFd = ::isatty(STDIN_FILENO) ? -1 : STDIN_FILENO;
    CommandStream input;
    while (true) {
        LineFramer& framer = input.input();
        std::vector<pollfd> fds = {{stopFd, POLLIN, 0}, {framer.room() > 0 ? commandFd : -1, POLLIN, 0}};
        for (const auto& f : l.pollFds()) fds.push_back(f);
        ::poll(fds.data(), fds.size(), input.ready() ? 0 : l.pollTimeout(50));
        if (fds[0].revents & POLLIN) {
            spdlog::info("stopping on signal");
            break;
        }
        if (fds[1].fd >= 0 && (fds[1].revents & POLLNVAL)) {  // standard input was closed: no commands from it
            commandFd = -1;
            framer.finish();
        } else if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char buf[4096];
            const ssize_t n = ::read(commandFd, buf, std::min(sizeof buf, framer.room()));
            if (n <= 0) {  // end of input: keep running until a signal
                commandFd = -1;
                framer.finish();
            } else {
                framer.append(std::string_view(buf, static_cast<size_t>(n)));
            }
        }
        const bool quit = input.service(
            256,
            [&l](const std::string& line) {
                CommandContext ctx = l.context();
                return execute(ctx, line);
            },
            [](const Reply& r) {
                if (!r.text.empty() || !r.ok) std::printf("%s\n", r.line().c_str());
                std::fflush(stdout);
            });
        if (quit || serviceLive(l)) {
            end.clean = true;
            break;
        }
        if (stopForServerLoss(l)) return kExitEnvironment;
    }
    return kExitOk;
}

}  // namespace rackterm::app
