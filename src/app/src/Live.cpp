#include <rackterm/app/Live.hpp>
#include <rackterm/app/Modes.hpp>

#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/JackBackend.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace rackterm::app {

namespace {
constexpr double kRetrySeconds = 0.1;     // open attempts while the server is away
constexpr double kSnapshotSeconds = 0.25; // a connection change is remembered once it is this old
constexpr double kPendingRetrySeconds = 1.0;

bool contains(const std::vector<PortConnection>& list, const PortConnection& c) {
    return std::find(list.begin(), list.end(), c) != list.end();
}
}  // namespace

Live::Live() = default;

Live::~Live() {
    socket.reset();
    reload.reset();
    jack.reset();  // the JACK client closes before the engine it runs goes
    runtime.reset();
}

CommandContext Live::context(Source source) {
    CommandContext ctx{*runtime, source};
    ctx.status = [this] { return status(); };
    ctx.ports = [this] { return serverLost() ? std::vector<std::string>{} : jack->ports(); };
    ctx.recover = [this] { return recoverEdits(); };
    ctx.discard = [this] { return discardEdits(); };
    if (reload) {
        ctx.reload = [this](const std::string& id) { return reload->reload(id); };
        ctx.buildStatus = [this] { return reload->status(); };
    }
    return ctx;
}

Reply Live::recoverEdits() {
    if (!recovery || !recovery->offered())
        return Reply{false, "nothing to recover: no recovery file was waiting when the session opened", false};
    auto found = readRecovery(recovery->offeredFile(), runtime->path());
    if (!found) return Reply{false, found.error(), false};
    Reply reply = replyLater(runtime->recoverDocument(std::move(found.value().session)));
    RecoveryJournal* journal = recovery.get();
    if (!reply.waiting()) {
        if (reply.ok) journal->closeOffer();
        return reply;
    }
    reply.pending = [inner = std::move(reply.pending), journal]() -> std::optional<Reply> {
        std::optional<Reply> r = inner();
        if (r && r->ok) journal->closeOffer();
        return r;
    };
    return reply;
}

Reply Live::discardEdits() {
    if (!recovery || !recovery->offered())
        return Reply{false, "nothing to discard: no recovery file was waiting when the session opened", false};
    const std::string file = recovery->offeredFile();
    recovery->closeOffer();
    return Reply{true, "dropped the unsaved edits of the earlier session (" + printable(file, kPathChars) + " removed)", false};
}

void Live::end(bool clean) {
    if (!recovery) return;
    if (clean) {
        recovery->remove();
        return;
    }
    recovery->sync(*runtime);
    if (runtime->dirty())
        spdlog::info("unsaved edits kept in {}; opening the session again offers `recover`",
                     printable(recovery->path(), kPathChars));
}

bool Live::serverLost() const { return !jack || !active_ || jack->lost(); }

EngineStatus Live::status() const {
    EngineStatus s = runtime->status();
    s.serverLost = serverLost();
    if (!s.serverLost) {
        s.blockFrames = jack->bufferSize();
        s.dspLoad = jack->cpuLoad();
    }
    return s;
}

std::vector<pollfd> Live::pollFds() const {
    std::vector<pollfd> fds;
    if (reload) fds = reload->pollFds();
    if (socket)
        for (const auto& f : socket->pollFds()) fds.push_back(f);
    return fds;
}

int Live::pollTimeout(int idle) const {
    if (socket && socket->backlog()) return 0;
    if (runtime->busy()) return std::min(idle, 2);
    if (runtime->isolationPending()) return std::min(idle, 5);  // a child to bring back
    return serverLost() ? std::min(idle, static_cast<int>(kRetrySeconds * 1000)) : idle;
}

void Live::rememberConnections() {
    remembered_ = jack->connections();
    for (const auto& p : pending_)  // still to be made: they belong to what the client had
        if (!contains(remembered_, p)) remembered_.push_back(p);
}

void Live::restorePending(bool quiet) {
    std::vector<PortConnection> left;
    for (const auto& c : pending_)
        if (!jack->connectPorts(c.first, c.second)) left.push_back(c);
    if (!quiet && left.size() < pending_.size())
        spdlog::info("JACK: made {} connection(s) whose ports appeared; {} still waiting", pending_.size() - left.size(),
                     left.size());
    pending_ = std::move(left);
}

bool Live::bringUp(double now) {
    const double rate = jack->sampleRate();
    const uint32_t block = jack->bufferSize();
    if (rate != runtime->sampleRate() || block != runtime->maxBlockFrames()) {
        if (runtime->swapping()) return false;  // an operation holds processors: rebuild after it
        if (auto r = runtime->reformat(rate, block); !r) {
            spdlog::error("{}; the session stays silent until the server runs at {:.0f} Hz again", r.error(),
                          runtime->sampleRate());
            jack.reset();
            nextAttempt_ = now + 1.0;
            return false;
        }
        spdlog::info("rack rebuilt for {:.0f} Hz, {} frames", rate, block);
    }
    if (auto a = jack->activate(runtime->engine()); !a) {
        spdlog::warn("{}; trying again", a.error());
        jack.reset();
        nextAttempt_ = now + kRetrySeconds;
        return false;
    }
    active_ = true;
    jack->setLatency(runtime->graph().totalLatency);
    // The client may have another name (JACK renames a taken one): our ports follow it.
    const std::string me = jack->clientName();
    auto rename = [&](std::string port) {
        if (port.rfind(clientName + ":", 0) == 0) port = me + port.substr(clientName.size());
        return port;
    };
    pending_.clear();
    for (const auto& [from, to] : remembered_) pending_.emplace_back(rename(from), rename(to));
    const size_t wanted = pending_.size();
    restorePending(true);
    if (me != clientName)
        spdlog::warn("JACK named the client '{}' ('{}' is taken); its ports are {}:in_N / {}:out_N", me, clientName, me, me);
    if (lostAt_ >= 0) {
        ++reconnects_;
        spdlog::info("JACK server back after {:.1f} s: '{}' at {:.0f} Hz, {} frames; {} of {} connection(s) restored{}",
                     now - lostAt_, me, rate, block, wanted - pending_.size(), wanted,
                     pending_.empty() ? "" : " (the rest when their ports appear)");
    }
    lostAt_ = -1;
    nextPendingTry_ = now + kPendingRetrySeconds;
    rememberConnections();
    return true;
}

void Live::serviceJack(double now) {
    if (jack && jack->lost()) {
        lostAt_ = now;
        if (!options.exitOnServerLoss)  // else stopForServerLoss says it and the session ends
            spdlog::warn("JACK server lost - waiting for it (trying every {:.0f} ms; {} connection(s) to restore); "
                         "edits go on and are heard when it is back",
                         kRetrySeconds * 1000, remembered_.size());
        jack.reset();  // JACK's rule: close the dead client here, never from its own threads
        active_ = false;
        nextAwayNote_ = 0;
        snapshotDue_ = -1;  // a change seen just before the loss is the server stopping
        nextAttempt_ = now + kRetrySeconds;
        return;
    }
    if (!jack) {
        if (now < nextAttempt_) return;
        nextAttempt_ = now + kRetrySeconds;
        const double before = nowSeconds();
        auto j = engine::JackBackend::open(clientName, inputPorts, outputPorts);
        if (const double took = nowSeconds() - before; took > 0.5)
            spdlog::warn("JACK: opening the client took {:.1f} s (libjack waited for the server)", took);
        if (!j) {  // still away (libjack's own lines go to the debug log); say why now and then
            if (lostAt_ >= 0 && now - lostAt_ >= 5.0 && now >= nextAwayNote_) {
                spdlog::warn("JACK server still away after {:.0f} s: {}", now - lostAt_, j.error());
                nextAwayNote_ = now + 30.0;
            }
            return;
        }
        jack = std::move(j.value());
        active_ = false;
    }
    if (!active_ && !bringUp(now)) return;
    if (jack->takeConnectionsChanged()) snapshotDue_ = now + kSnapshotSeconds;
    if (snapshotDue_ >= 0 && now >= snapshotDue_) {
        snapshotDue_ = -1;
        rememberConnections();
    }
    if (!pending_.empty() && (jack->takePortsRegistered() || now >= nextPendingTry_)) {
        nextPendingTry_ = now + kPendingRetrySeconds;
        restorePending(false);
    }
}

bool serviceLive(Live& live) {
    const double now = nowSeconds();
    live.runtime->tick();
    live.serviceJack(now);
    if (!live.serverLost()) live.jack->setLatency(live.runtime->graph().totalLatency);  // JACK recomputes only when it moved
    if (live.reload) {
        if (live.runtime->structureSerial() != live.watchedStructure) {  // add, remove, load: watch the nodes now there
            live.watchedStructure = live.runtime->structureSerial();
            for (const auto& w : live.reload->start()) spdlog::warn("{}", w);
        }
        live.reload->onReadable(now);
        live.reload->tick(now);
    }
    bool quit = false;
    if (live.socket)
        quit = live.socket->service([&live](const std::string& line) {
            CommandContext ctx = live.context(Source::Socket);
            return execute(ctx, line);
        });
    if (live.recovery) live.recovery->update(*live.runtime, now);
    live.runtime->updateMeters(now);
    for (const auto& e : live.runtime->takeEvents(now)) spdlog::warn("{}", e);
    return quit;
}

bool stopForServerLoss(const Live& live) {
    if (!live.options.exitOnServerLoss || !live.serverLost()) return false;
    spdlog::error("the JACK server stopped; start it again and reopen the session (--exit-on-server-loss)");
    return true;
}

Result<std::unique_ptr<Live>> openLive(const std::string& sessionPath, int& exitCode, LiveOptions options) {
    exitCode = kExitUser;
    auto session = config::loadSession(sessionPath);
    if (!session) return Error{session.error()};
    if (auto b = buildMissingModules(session.value(), [](const std::string& l) { spdlog::info("{}", l); }); !b)
        return Error{b.error()};
    auto jack = engine::JackBackend::open(session->name, session->engine.inputCount(), session->engine.outputCount());
    if (!jack) {
        exitCode = kExitEnvironment;
        return Error{jack.error()};
    }
    auto rt = Runtime::open(session.value(), jack.value()->sampleRate(), jack.value()->bufferSize(),
                            jack.value()->realtimePriority());
    if (!rt) return Error{rt.error()};
    auto live = std::make_unique<Live>();
    live->options = options;
    live->clientName = session->name;
    live->inputPorts = session->engine.inputCount();
    live->outputPorts = session->engine.outputCount();
    live->runtime = std::move(rt.value());
    live->jack = std::move(jack.value());
    if (auto a = live->jack->activate(live->runtime->engine()); !a) {
        exitCode = kExitEnvironment;
        return Error{a.error()};
    }
    live->active_ = true;
    for (const auto& w : live->jack->connect(session->engine.inputs, session->engine.outputs)) spdlog::warn("{}", w);
    live->rememberConnections();
    live->jack->setLatency(live->runtime->graph().totalLatency);
    live->reload = std::make_unique<HotReload>(
        *live->runtime, [](const std::string& l) { spdlog::info("{}", l); },
        [](const std::string& l) { spdlog::warn("{}", l); });
    for (const auto& w : live->reload->start()) spdlog::warn("{}", w);
    live->watchedStructure = live->runtime->structureSerial();
    live->recovery = std::make_unique<RecoveryJournal>(session->path);
    if (live->recovery->offered()) spdlog::warn("{}", live->recovery->offerText());
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

}  // namespace rackterm::app
