#include <rackterm/app/Modes.hpp>

#include <rackterm/app/LineFramer.hpp>
#include <rackterm/app/Logging.hpp>
#include <rackterm/app/Script.hpp>
#include <rackterm/engine/OfflineRender.hpp>

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

double nowSeconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

CommandContext Live::context() {
    CommandContext ctx{*runtime, jack.get()};
    if (reload) {
        ctx.reload = [this](size_t node) { return reload->reload(node); };
        ctx.buildStatus = [this] { return reload->status(); };
        ctx.nodesChanged = [this] {
            for (const auto& w : reload->start()) spdlog::warn("{}", w);
        };
    }
    return ctx;
}

std::vector<pollfd> Live::pollFds() const {
    std::vector<pollfd> fds;
    if (reload) fds = reload->pollFds();
    if (socket)
        for (const auto& f : socket->pollFds()) fds.push_back(f);
    return fds;
}

int Live::pollTimeout(int idle) const { return socket && socket->backlog() ? 0 : idle; }

bool serviceLive(Live& live) {
    const double now = nowSeconds();
    if (live.reload) {
        live.reload->onReadable(now);
        live.reload->tick(now);
    }
    bool quit = false;
    if (live.socket)
        quit = live.socket->service([&live](const std::string& line) {
            CommandContext ctx = live.context();
            return execute(ctx, line);
        });
    live.runtime->tick();
    live.runtime->updateMeters(now);
    for (const auto& e : live.runtime->takeEvents(now)) spdlog::warn("{}", e);
    return quit;
}

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
    std::string ids;
    for (size_t n = 0; n < rt.value()->nodeCount(); ++n)
        ids += (n ? " -> " : "") + rt.value()->nodeId(n);
    std::printf("ok: %s: %zu nodes: %s\n", sessionPath.c_str(), rt.value()->nodeCount(), ids.c_str());
    return kExitOk;
}

int runRender(const RenderOptions& o) {
    auto session = loadModules(o.session, true);
    if (!session) {
        toStderr(session.error());
        return kExitUser;
    }
    auto job = engine::OfflineRender::open(o.input, o.output, session->engine.sampleRate.value_or(0.0));
    if (!job) {
        toStderr(job.error());
        return kExitUser;
    }
    for (const auto& n : job.value()->notes()) std::fprintf(stderr, "rackterm: warning: %s\n", n.c_str());
    const uint32_t block = o.block ? o.block : session->engine.block.value_or(256);
    auto rt = Runtime::open(session.value(), job.value()->sampleRate(), block);
    if (!rt) {
        toStderr(rt.error());
        return kExitUser;
    }
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
        CommandContext ctx{*rt.value()};
        ctx.offline = true;
        for (const auto& l : script->lines) {
            if (l.atSeconds) {
                timed.push_back(l);
                continue;
            }
            if (const Reply r = execute(ctx, l.command); !r.ok) {
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
        CommandContext ctx{*rt.value()};
        ctx.offline = true;
        while (nextTimed < timed.size() && frameOf(timed[nextTimed]) <= pos) {
            const Reply r = execute(ctx, timed[nextTimed].command);
            if (!r.ok && scriptError.empty()) scriptError = script->where(timed[nextTimed], r.text);
            ++nextTimed;
        }
        return nextTimed < timed.size() ? frameOf(timed[nextTimed]) : UINT64_MAX;
    };
    const bool tty = ::isatty(STDERR_FILENO);
    auto progress = [tty](double f) {
        if (tty) std::fprintf(stderr, "\rrendering %3d %%", static_cast<int>(f * 100.0));
    };
    auto stats = job.value()->run(rt.value()->engine(), block, timed.empty() ? engine::OfflineRender::BlockHook{} : hook, progress);
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

Result<std::unique_ptr<Live>> openLive(const std::string& sessionPath, int& exitCode) {
    exitCode = kExitUser;
    auto session = config::loadSession(sessionPath);
    if (!session) return Error{session.error()};
    if (auto b = buildMissingModules(session.value(), [](const std::string& l) { spdlog::info("{}", l); }); !b)
        return Error{b.error()};
    auto jack = engine::JackBackend::open(session->name);
    if (!jack) {
        exitCode = kExitEnvironment;
        return Error{jack.error()};
    }
    auto rt = Runtime::open(session.value(), jack.value()->sampleRate(), jack.value()->bufferSize());
    if (!rt) return Error{rt.error()};
    auto live = std::make_unique<Live>();
    live->runtime = std::move(rt.value());
    live->jack = std::move(jack.value());
    if (auto a = live->jack->activate(live->runtime->engine()); !a) {
        exitCode = kExitEnvironment;
        return Error{a.error()};
    }
    for (const auto& w : live->jack->connect(session->engine.inputs, session->engine.outputs)) spdlog::warn("{}", w);
    live->reload = std::make_unique<HotReload>(
        *live->runtime, [](const std::string& l) { spdlog::info("{}", l); },
        [](const std::string& l) { spdlog::warn("{}", l); });
    for (const auto& w : live->reload->start()) spdlog::warn("{}", w);
    if (auto sock = ControlSocket::open(session->name); sock) {
        live->socket = std::move(sock.value());
        spdlog::info("control socket {}", live->socket->path());
    } else {
        spdlog::warn("no control socket: {}", sock.error());
    }
    spdlog::info("session '{}' live on JACK server '{}' as '{}': {} Hz, {} frames", session->name,
                 engine::jackServerName(), live->jack->clientName(), live->jack->sampleRate(), live->jack->bufferSize());
    exitCode = kExitOk;
    return live;
}

namespace {
/// Headless start-up shared by `run` and `--headless`: stderr logging, stop
/// signals, the session live on JACK. On failure logs the error and sets `code`.
std::unique_ptr<Live> startHeadless(const std::string& sessionPath, int& stopFd, int& code) {
    initLogging(true);
    stopFd = installStopSignals();
    auto live = openLive(sessionPath, code);
    if (!live) {
        spdlog::error("{}", live.error());
        return nullptr;
    }
    return std::move(live.value());
}

bool serverGone(const Live& l) {
    if (!l.runtime->engine().events().shutdown.load()) return false;
    spdlog::error("the JACK server stopped; start it again and reopen the session");
    return true;
}
}  // namespace

int runScript(const std::string& scriptPath, const std::string& sessionPath) {
    auto script = loadScript(scriptPath);
    if (!script) {
        initLogging(true);
        spdlog::error("{}", script.error());
        return kExitUser;
    }
    int stopFd = -1, code = kExitOk;
    auto live = startHeadless(sessionPath, stopFd, code);
    if (!live) return code;
    Live& l = *live;
    // Run one script line: nullopt to go on, else the exit status.
    auto runLine = [&](const ScriptLine& line) -> std::optional<int> {
        CommandContext ctx = l.context();
        const Reply r = execute(ctx, line.command);
        if (!r.ok) {
            spdlog::error("{}", script->where(line, r.text));
            return kExitUser;
        }
        if (!r.text.empty()) std::printf("%s\n", r.line().c_str());
        std::fflush(stdout);
        if (r.quit) return kExitOk;
        return std::nullopt;
    };
    std::vector<ScriptLine> timed;
    for (const auto& line : script->lines) {
        if (line.atSeconds) timed.push_back(line);
        else if (auto stop = runLine(line)) return *stop;
    }
    std::stable_sort(timed.begin(), timed.end(), [](const auto& a, const auto& b) { return *a.atSeconds < *b.atSeconds; });
    const double start = nowSeconds();
    size_t next = 0;
    while (next < timed.size()) {
        const double wait = *timed[next].atSeconds - (nowSeconds() - start);
        std::vector<pollfd> fds = {{stopFd, POLLIN, 0}};
        for (const auto& f : l.pollFds()) fds.push_back(f);
        ::poll(fds.data(), fds.size(), l.pollTimeout(std::clamp(static_cast<int>(wait * 1000.0), 0, 50)));
        if (fds[0].revents & POLLIN) {
            spdlog::info("stopping on signal");
            return kExitOk;
        }
        if (serviceLive(l)) return kExitOk;
        for (; next < timed.size() && *timed[next].atSeconds <= nowSeconds() - start; ++next)
            if (auto stop = runLine(timed[next])) return *stop;
        if (serverGone(l)) return kExitEnvironment;
    }
    return kExitOk;
}

int runHeadless(const std::string& sessionPath) {
    int stopFd = -1, code = kExitOk;
    auto live = startHeadless(sessionPath, stopFd, code);
    if (!live) return code;
    Live& l = *live;
    // Commands on standard input when it is a pipe or file: one per line, one
    // reply line on stdout; framed like the control socket (bounded lines).
    int commandFd = ::isatty(STDIN_FILENO) ? -1 : STDIN_FILENO;
    LineFramer input;
    while (true) {
        std::vector<pollfd> fds = {{stopFd, POLLIN, 0}, {input.room() > 0 ? commandFd : -1, POLLIN, 0}};
        for (const auto& f : l.pollFds()) fds.push_back(f);
        ::poll(fds.data(), fds.size(), input.hasLine() ? 0 : l.pollTimeout(50));
        if (fds[0].revents & POLLIN) {
            spdlog::info("stopping on signal");
            break;
        }
        if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
            char buf[4096];
            const ssize_t n = ::read(commandFd, buf, std::min(sizeof buf, input.room()));
            if (n <= 0) {  // end of input: keep running until a signal
                commandFd = -1;
                input.finish();
            } else {
                input.append(std::string_view(buf, static_cast<size_t>(n)));
            }
        }
        bool quit = false;
        for (const auto& item : input.take(256)) {
            CommandContext ctx = l.context();
            const Reply r = item.tooLong ? Reply{false, LineFramer::kTooLong, false} : execute(ctx, item.text);
            if (!r.text.empty() || !r.ok) std::printf("%s\n", r.line().c_str());
            std::fflush(stdout);
            quit = quit || r.quit;
        }
        if (quit) break;
        if (serviceLive(l)) break;
        if (serverGone(l)) return kExitEnvironment;
    }
    return kExitOk;
}

}  // namespace rackterm::app
