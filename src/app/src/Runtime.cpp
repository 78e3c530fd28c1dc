#include <rackterm/app/Runtime.hpp>

#include <rackterm/app/Catalog.hpp>
#include <rackterm/app/Values.hpp>
#include <rackterm/common/Files.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/Player.hpp>
#include <rackterm/engine/Recorder.hpp>
#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/loader/Loader.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string_view>

namespace rackterm::app {

namespace {

std::vector<std::string> paramIds(const rackterm_processor_v2& d) {
    std::vector<std::string> ids;
    for (uint32_t i = 0; i < d.param_count; ++i) ids.emplace_back(d.params[i].id);
    return ids;
}

/// Without a block for this long while an operation waits, the audio is not
/// running (no server, a stopped backend): nothing can click, go on.
constexpr double kStallSeconds = 0.25;

/// The longest an operation waits for the rack to settle: a crossfade (at
/// most 1 s) plus a bypass ramp, with room. Past it, it goes on regardless,
/// so no flag the audio thread fails to raise can hold the queue.
constexpr double kMaxSettleSeconds = 2.0;

/// Holds a player instance for the rack's owner list.
struct PlayerOwner {
    explicit PlayerOwner(rackterm_instance* i) : instance(i) {}
    PlayerOwner(const PlayerOwner&) = delete;
    PlayerOwner& operator=(const PlayerOwner&) = delete;
    ~PlayerOwner() { engine::playerDescriptor()->destroy(instance); }
    rackterm_instance* instance;
};

std::string describeValue(const std::string& node, const rackterm_param_info& info, float v) {
    return node + "." + info.id + " = " + formatValue(info, v);
}

/// Write parameter `id`'s value into `spec` (nullopt: remove it, back to the
/// default); returns the value written there before (nullopt: none).
std::optional<double> writeValue(config::NodeSpec& spec, const std::string& id, std::optional<double> v) {
    auto& params = spec.params;
    auto it = std::find_if(params.begin(), params.end(), [&](const config::ParamSetting& p) { return p.id == id; });
    const std::optional<double> before = it == params.end() ? std::nullopt : std::optional<double>(it->value);
    if (!v) {
        if (it != params.end()) params.erase(it);
    } else if (it == params.end()) {
        params.push_back({id, *v, {}});
    } else {
        it->value = *v;
    }
    return before;
}

/// Completes `later` with an operation's result.
std::function<void(const Result<std::string>&)> finishing(const Later<std::string>& later) {
    return [later](const Result<std::string>& r) { later.finish(r); };
}

}  // namespace

double nowSeconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Runtime::~Runtime() {
    ops_.clear();
    waits_.clear();
    if (recorder_) {
        engine_->setRecorder(nullptr);
        (void)recorder_->stop();
    }
    engine_.reset();  // racks (and with them instances) go first
    recorder_.reset();
    parkedRecorders_.clear();
    nodes_.clear();
}

Result<std::unique_ptr<Runtime>> Runtime::open(config::Session session, double sampleRateHz, uint32_t maxBlockFrames) {
    std::unique_ptr<Runtime> r(new Runtime);
    r->sampleRate_ = sampleRateHz;
    r->maxBlockFrames_ = maxBlockFrames;
    if (session.nodes.size() > kMaxNodes)
        return Error{printable(session.path, kPathChars) + ": " + nodeLimitMessage(session.nodes.size())};
    std::vector<config::NodeSpec> specs = std::move(session.nodes);
    session.nodes.clear();
    r->doc_ = std::move(session);
    for (auto& spec : specs) {
        auto proc = r->loadProcessor(spec, r->doc_.path);
        if (!proc) return Error{proc.error()};
        if (!proc.value().note.empty()) r->notes_.push_back(proc.value().note);
        r->nodes_.push_back(Node{std::move(spec), std::move(proc.value()), {}});
    }
    r->engine_ = std::make_unique<engine::Engine>();
    r->publishRack();
    r->journal_.markSaved(r->doc_.path);
    r->lastBlockTime_ = nowSeconds();
    return r;
}

Result<Runtime::Processor> Runtime::loadProcessor(config::NodeSpec& spec, const std::string& sessionPath, bool adapt,
                                                  bool* adapted) const {
    Processor proc;
    const std::string& where = spec.processorWhere.str();
    if (spec.processor == "player") {
        const std::string file = resolveAgainst(sessionPath, spec.file);
        auto data = engine::decodeFile(file, sampleRate_);
        if (!data) return Error{spec.fileWhere.str() + ": " + data.error()};
        if (data.value()->fileChannels > 2)
            proc.note = spec.fileWhere.str() + ": " + printable(file, kPathChars) + " has " +
                        std::to_string(data.value()->fileChannels) + " channels; node '" + spec.id +
                        "' plays channels 1 and 2 (the rack is stereo)";
        auto owner = std::make_shared<PlayerOwner>(engine::createPlayer(data.value(), maxBlockFrames_));
        proc.descriptor = engine::playerDescriptor();
        proc.instance = owner->instance;
        proc.owner = owner;
    } else {
        std::string path;
        if (!spec.path.empty()) {
            path = resolveAgainst(sessionPath, spec.path);
        } else {
            path = builtinModulePath(spec.processor);
            if (path.empty())
                return Error{where + ": unknown processor " + quote(spec.processor) +
                             didYouMean(spec.processor, processorNames()) + "; `rackterm list processors` shows them"};
        }
        auto module = loader::loadModule(path);
        if (!module) return Error{where + ": " + module.error()};
        auto inst = loader::createInstance(module.value(), sampleRate_, maxBlockFrames_);
        if (!inst) return Error{where + ": " + inst.error()};
        std::shared_ptr<loader::Instance> owned = std::move(inst.value());
        proc.descriptor = &owned->descriptor();
        proc.instance = owned->get();
        proc.owner = owned;
        proc.path = path;
    }
    const auto ids = paramIds(*proc.descriptor);
    for (auto p = spec.params.begin(); p != spec.params.end();) {
        auto it = std::find(ids.begin(), ids.end(), p->id);
        if (it == ids.end()) {
            if (!adapt)
                return Error{p->where.str() + ": node '" + spec.id + "' (" + proc.descriptor->id + ") has no parameter " +
                             quote(p->id) + didYouMean(p->id, ids)};
            p = spec.params.erase(p);
            if (adapted) *adapted = true;
            continue;
        }
        const rackterm_param_info& info = proc.descriptor->params[it - ids.begin()];
        const float v = static_cast<float>(p->value);
        if (v < info.min || v > info.max) {
            if (!adapt)
                return Error{p->where.str() + ": " + spec.id + "." + p->id + " = " + std::to_string(p->value) +
                             " is outside " + formatValue(info, info.min) + " .. " + formatValue(info, info.max)};
            p->value = std::clamp(v, info.min, info.max);
            if (adapted) *adapted = true;
        }
        ++p;
    }
    return proc;
}

config::Session Runtime::document() const {
    config::Session s = doc_;
    s.nodes.reserve(nodes_.size());
    for (const auto& n : nodes_) s.nodes.push_back(n.spec);
    return s;
}

bool Runtime::dirty() const { return extraDirty_ || !journal_.atSaved(doc_.path); }

float Runtime::value(size_t node, size_t param) const {
    const rackterm_param_info& info = nodes_[node].proc.descriptor->params[param];
    for (const auto& p : nodes_[node].spec.params)
        if (p.id == info.id) return static_cast<float>(p.value);
    return info.default_value;
}

std::vector<float> Runtime::values(size_t n) const {
    std::vector<float> v;
    for (uint32_t i = 0; i < nodes_[n].proc.descriptor->param_count; ++i) v.push_back(value(n, i));
    return v;
}

void Runtime::publishRack(const Fade& fade) {
    std::vector<engine::NodeSetup> setups;
    setups.reserve(nodes_.size());
    for (size_t n = 0; n < nodes_.size(); ++n) {
        const Node& node = nodes_[n];
        engine::NodeSetup s;
        s.id = node.spec.id;
        s.descriptor = node.proc.descriptor;
        s.instance = node.proc.instance;
        s.owner = node.proc.owner;
        s.values = values(n);
        s.bypass = node.spec.bypass;
        if (n == fade.node) {
            s.fadeIn = fade.fadeIn;
            if (fade.from.instance) {
                s.fadeFromDescriptor = fade.from.descriptor;
                s.fadeFromInstance = fade.from.instance;
                s.fadeFromOwner = fade.from.owner;
                s.fadeFrames = std::max<uint32_t>(
                    1, static_cast<uint32_t>(doc_.engine.crossfadeMs.value_or(10.0) * 0.001 * sampleRate_));
            }
        }
        setups.push_back(std::move(s));
    }
    engine_->publish(std::make_unique<engine::Rack>(std::move(setups), maxBlockFrames_, sampleRate_, engine_->generation()));
    opGeneration_ = engine_->generation();
    headSince_ = nowSeconds();  // a new phase of the operation: its settle time counts from here
    meterView_.nodes.resize(nodes_.size());
}

bool Runtime::audioStalled() const { return nowSeconds() - lastBlockTime_ > kStallSeconds; }

bool Runtime::settled() const {
    // Before the first block nothing plays, and a stalled audio thread plays nothing: neither can click.
    if (offline_ || engine_->blocks() == 0 || audioStalled()) return true;
    if (nowSeconds() - headSince_ > kMaxSettleSeconds) return true;
    const engine::Rack* rack = engine_->rack();
    if (!rack) return true;
    // The audio thread took what the operations issued (a stream of value
    // changes from others does not hold them: their generations are not waited for).
    if (engine_->rackPending() || engine_->appliedGeneration() < opGeneration_) return false;
    for (uint32_t n = 0; n < rack->nodeCount(); ++n)
        if (!rack->fadeDone(n) || !rack->bypassSettled(n)) return false;
    return true;
}

void Runtime::submit(Operation op) {
    if (ops_.empty()) {  // a new wait begins: the audio has kStallSeconds to show it runs
        lastBlocks_ = engine_->blocks();
        lastBlockTime_ = headSince_ = nowSeconds();
    }
    ops_.push_back(std::move(op));
    runOperations();
}

void Runtime::runOperations() {
    if (const uint64_t b = engine_->blocks(); b != lastBlocks_) {
        lastBlocks_ = b;
        lastBlockTime_ = nowSeconds();
    }
    while (!ops_.empty()) {
        if (!ops_.front().step()) break;
        ops_.pop_front();
        headSince_ = nowSeconds();
        lastBlockTime_ = std::max(lastBlockTime_, headSince_ - kStallSeconds / 2);
    }
}

void Runtime::tick() {
    engine_->collectGarbage();
    runOperations();
    std::erase_if(waits_, [](const std::function<bool()>& w) { return w(); });
}

Result<size_t> Runtime::findNode(std::string_view id) const {
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].spec.id == id) return i;
    std::vector<std::string> ids;
    for (const auto& n : nodes_) ids.push_back(n.spec.id);
    return Error{"no node " + quote(id) + didYouMean(id, ids) + "; `list nodes` shows them"};
}

Result<std::pair<size_t, size_t>> Runtime::findParam(std::string_view target) const {
    const size_t dot = target.find('.');
    if (dot == std::string_view::npos) return Error{quote(target) + " is not NODE.PARAM, e.g. gain.gain_db"};
    auto node = findNode(target.substr(0, dot));
    if (!node) return Error{node.error()};
    const std::string_view pid = target.substr(dot + 1);
    const auto ids = paramIds(descriptor(node.value()));
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] == pid) return std::make_pair(node.value(), i);
    return Error{"node '" + nodeId(node.value()) + "' has no parameter " + quote(pid) + didYouMean(pid, ids) +
                 "; `list params " + nodeId(node.value()) + "` shows them"};
}

// ---- edits ------------------------------------------------------------

Result<void> Runtime::setValue(size_t node, size_t param, float plain, Merge merge) {
    const rackterm_param_info& info = descriptor(node).params[param];
    if (plain == 0.0f) plain = 0.0f;  // -0 is 0
    if (!std::isfinite(plain) || plain < info.min || plain > info.max)
        return Error{std::string(info.id) + " = " + std::to_string(plain) + " is outside " + formatValue(info, info.min) +
                     " .. " + formatValue(info, info.max)};
    Edit e;
    e.kind = Edit::Kind::SetValue;
    e.node = nodeId(node);
    e.param = info.id;
    e.after = plain;
    e.before = writeValue(nodes_[node].spec, info.id, plain);
    engine_->setValue(static_cast<uint32_t>(node), static_cast<uint32_t>(param), plain);
    if (e.before != e.after) journal_.record(std::move(e), nowSeconds(), merge == Merge::Run);
    return {};
}

void Runtime::setBypass(size_t node, bool bypass) {
    Edit e;
    e.kind = Edit::Kind::SetBypass;
    e.node = nodeId(node);
    e.bypassBefore = nodes_[node].spec.bypass;
    e.bypassAfter = bypass;
    playBypass(node, bypass);
    if (e.bypassBefore != bypass) journal_.record(std::move(e), nowSeconds());
}

void Runtime::playBypass(size_t node, bool bypass) {
    nodes_[node].spec.bypass = bypass;
    // A bypass ramp is structure-like: operations wait until the audio thread took it.
    opGeneration_ = engine_->setBypass(static_cast<uint32_t>(node), bypass);
}

Result<std::string> Runtime::applyValue(const std::string& node, const std::string& param, std::optional<double> v) {
    auto where = findParam(node + "." + param);
    if (!where) return Error{where.error()};
    const auto [n, p] = where.value();
    const rackterm_param_info& info = descriptor(n).params[p];
    if (v && (*v < info.min || *v > info.max))
        return Error{node + "." + param + " = " + std::to_string(*v) + " is outside the range of the processor now playing"};
    writeValue(nodes_[n].spec, param, v);
    engine_->setValue(static_cast<uint32_t>(n), static_cast<uint32_t>(p), value(n, p));
    return describeValue(node, info, value(n, p));
}

Result<std::string> Runtime::applyBypass(const std::string& node, bool bypass) {
    auto n = findNode(node);
    if (!n) return Error{n.error()};
    playBypass(n.value(), bypass);
    return node + (bypass ? " bypassed" : " active");
}

Later<std::string> Runtime::addNode(const std::string& id, const std::string& processor, const std::string& anchor,
                                   bool before) {
    using L = Later<std::string>;
    if (auto refused = addRefusal(id)) return L::done(std::move(*refused));
    if (!isNodeId(id)) return L::done(Error{"node id " + quote(id) + " " + kNodeIdRule});
    if (processor == "player") return L::done(Error{"a player needs a file; add it in the session file"});
    config::NodeSpec spec;
    spec.id = id;
    const bool isPath = processor.find('/') != std::string::npos ||
                        (processor.size() > 3 && processor.substr(processor.size() - 3) == ".so");
    (isPath ? spec.path : spec.processor) = processor;
    spec.processorWhere.file = "add";
    L later;
    submit(addOp(std::move(spec), SIZE_MAX, anchor, before, true, finishing(later)));
    return later;
}

std::optional<Error> Runtime::addRefusal(const std::string& id) const {
    if (findNode(id)) return Error{"a node '" + id + "' exists already; pick another id"};
    if (nodes_.size() >= kMaxNodes) return Error{"cannot add " + id + ": " + nodeLimitMessage(nodes_.size() + 1)};
    return std::nullopt;
}

Runtime::Operation Runtime::addOp(config::NodeSpec spec, size_t position, std::string anchor, bool before, bool record,
                                  Done done) {
    auto started = std::make_shared<bool>(false);
    return Operation{[this, spec, position, anchor, before, record, done, started]() mutable {
        if (*started) return settled();  // finished once the fade-in is over
        if (!settled()) return false;
        *started = true;
        if (auto refused = addRefusal(spec.id)) {  // as things are now, after the operations before it
            done(std::move(*refused));
            return true;
        }
        size_t at = std::min(position, nodes_.size());
        if (!anchor.empty()) {  // where the anchor is now, not where it was when the command came
            auto other = findNode(anchor);
            if (!other) {
                done(Error{other.error()});
                return true;
            }
            at = other.value() + (before ? 0 : 1);
        }
        bool adapted = false;
        auto proc = loadProcessor(spec, doc_.path, !record, &adapted);
        if (!proc) {
            done(Error{proc.error()});
            return true;
        }
        if (adapted) extraDirty_ = true;  // the processor changed since: not the journal's state
        if (!proc.value().note.empty()) notes_.push_back(proc.value().note);
        nodes_.insert(nodes_.begin() + static_cast<long>(at), Node{spec, std::move(proc.value()), {}});
        ++structureSerial_;
        Fade fade;
        fade.node = at;
        fade.fadeIn = true;
        publishRack(fade);
        if (record) {
            Edit e;
            e.kind = Edit::Kind::AddNode;
            e.node = spec.id;
            e.spec = spec;
            e.position = at;
            journal_.record(std::move(e), nowSeconds());
        }
        done("added " + spec.id + " (" + descriptor(at).id + ") at position " + std::to_string(at + 1));
        return settled();
    }};
}

Later<std::string> Runtime::removeNode(const std::string& id) {
    Later<std::string> later;
    submit(removeOp(id, true, finishing(later)));
    return later;
}

Runtime::Operation Runtime::removeOp(std::string id, bool record, Done done) {
    auto fading = std::make_shared<bool>(false);
    return Operation{[this, id, record, done, fading]() {
        if (!settled()) return false;
        auto n = findNode(id);
        if (!n) {
            done(Error{n.error()});
            return true;
        }
        const auto index = static_cast<uint32_t>(n.value());
        // Fade it out through its bypass first (the document's bypass stays),
        // so taking it away changes nothing audible.
        if (!offline_ && !engine_->rack()->bypassed(index)) {
            opGeneration_ = engine_->setBypass(index, true);
            headSince_ = nowSeconds();
            *fading = true;
            return false;
        }
        Edit e;
        e.kind = Edit::Kind::RemoveNode;
        e.node = id;
        e.spec = nodes_[n.value()].spec;
        e.position = n.value();
        events_.forget(id);  // a node added later under this id starts afresh
        nodes_.erase(nodes_.begin() + static_cast<long>(n.value()));
        ++structureSerial_;
        publishRack();
        if (record) journal_.record(std::move(e), nowSeconds());
        done("removed " + id);
        return true;
    }};
}

Later<std::string> Runtime::loadSession(const std::string& path) {
    auto s = config::loadSession(path);
    if (!s) return Later<std::string>::done(Error{s.error()});
    if (s.value().nodes.size() > kMaxNodes)
        return Later<std::string>::done(Error{printable(path, kPathChars) + ": " + nodeLimitMessage(s.value().nodes.size())});
    Later<std::string> later;
    submit(loadOp(std::make_shared<const config::Session>(std::move(s.value())), true, finishing(later)));
    return later;
}

Runtime::Operation Runtime::loadOp(std::shared_ptr<const config::Session> target, bool record, Done done) {
    return Operation{[this, target, record, done]() {
        if (!settled()) return false;
        std::vector<Node> fresh;
        bool adapted = false;
        for (config::NodeSpec spec : target->nodes) {
            auto proc = loadProcessor(spec, target->path, !record, &adapted);
            if (!proc) {
                done(Error{proc.error()});
                return true;
            }
            fresh.push_back(Node{std::move(spec), std::move(proc.value()), {}});
        }
        for (const auto& n : fresh)
            if (!n.proc.note.empty()) notes_.push_back(n.proc.note);
        for (const auto& n : nodes_) events_.forget(n.spec.id);
        Edit e;
        e.kind = Edit::Kind::Load;
        e.sessionBefore = std::make_shared<const config::Session>(document());
        e.sessionAfter = target;
        e.unsavedBefore = extraDirty_;
        doc_ = *target;
        doc_.nodes.clear();
        nodes_ = std::move(fresh);
        ++structureSerial_;
        publishRack();  // the previous rack plays until the audio thread takes this one
        extraDirty_ = adapted;
        if (record) {
            journal_.record(std::move(e), nowSeconds());
            journal_.markSaved(doc_.path);  // the document is what the file holds
        }
        done("loaded " + printable(target->path, kPathChars) + " (" + std::to_string(nodes_.size()) + " nodes)");
        return true;
    }};
}

Later<std::string> Runtime::undo() {
    Later<std::string> later;
    submit(journalOp(true, later));
    return later;
}

Later<std::string> Runtime::redo() {
    Later<std::string> later;
    submit(journalOp(false, later));
    return later;
}

Runtime::Operation Runtime::journalOp(bool undo, Later<std::string> later) {
    auto inner = std::make_shared<std::optional<Operation>>();
    return Operation{[this, undo, later, inner]() {
        if (!*inner) {
            if (!settled()) return false;
            const Edit* step = undo ? journal_.undoStep() : journal_.redoStep();
            if (!step) {
                later.finish(Error{undo ? "nothing to undo" : "nothing to redo"});
                return true;
            }
            const Edit e = *step;
            // The journal moves now: an edit made while this one fades lands after it.
            if (undo) journal_.stepBack();
            else journal_.stepForward();
            const std::string what = std::string(undo ? "undo " : "redo ") + e.what();
            const bool loadUndo = undo && e.kind == Edit::Kind::Load;
            const bool unsavedBefore = e.unsavedBefore;
            Done finish = [this, later, what, loadUndo, unsavedBefore](const Result<std::string>& r) {
                if (r) {
                    if (loadUndo) extraDirty_ = extraDirty_ || unsavedBefore;
                    later.finish(what + ": " + r.value());
                    return;
                }
                // The journal moved past a step that could not be carried out:
                // the document is not the journal's state, so it is unsaved.
                extraDirty_ = true;
                later.finish(Error{what + " failed (skipped): " + r.error()});
            };
            switch (e.kind) {
                case Edit::Kind::SetValue: finish(applyValue(e.node, e.param, undo ? e.before : e.after)); return true;
                case Edit::Kind::SetBypass: finish(applyBypass(e.node, undo ? e.bypassBefore : e.bypassAfter)); return true;
                case Edit::Kind::AddNode:
                    *inner = undo ? removeOp(e.node, false, finish) : addOp(e.spec, e.position, "", false, false, finish);
                    break;
                case Edit::Kind::RemoveNode:
                    *inner = undo ? addOp(e.spec, e.position, "", false, false, finish) : removeOp(e.node, false, finish);
                    break;
                case Edit::Kind::Load: *inner = loadOp(undo ? e.sessionBefore : e.sessionAfter, false, finish); break;
            }
        }
        return (**inner).step();
    }};
}

// ---- the rest ---------------------------------------------------------

Later<SwapReport> Runtime::swapNode(const std::string& id, const std::string& path, bool sameModule) {
    Later<SwapReport> later;
    auto crossfading = std::make_shared<bool>(false);
    submit(Operation{[this, id, path, sameModule, later, crossfading]() {
        if (*crossfading) {
            if (!settled()) return false;
            publishRack();  // without the replaced instance: it is freed with the fading rack
            return true;
        }
        if (!settled()) return false;
        auto found = findNode(id);
        if (!found) {
            later.finish(Error{found.error()});
            return true;
        }
        const size_t n = found.value();
        Node& node = nodes_[n];
        if (node.proc.path.empty()) {
            later.finish(Error{"node '" + id + "' is a player; it has no module to swap"});
            return true;
        }
        if (sameModule && node.proc.path != path) {
            later.finish(Error{"node '" + id + "' runs " + printable(node.proc.path, kPathChars) +
                               " now (the rack changed since); not swapped"});
            return true;
        }
        auto module = loader::loadModule(path);
        if (!module) {
            later.finish(Error{module.error()});
            return true;
        }
        auto inst = loader::createInstance(module.value(), sampleRate_, maxBlockFrames_);
        if (!inst) {
            later.finish(Error{inst.error()});
            return true;
        }
        std::shared_ptr<loader::Instance> owned = std::move(inst.value());
        const rackterm_processor_v2& nd = owned->descriptor();
        const rackterm_processor_v2& od = *node.proc.descriptor;
        const std::vector<float> current = values(n);
        ParamMapping m = mapParameters({od.params, od.param_count}, {nd.params, nd.param_count}, current);
        // The document follows: ids the new processor lacks go, values that
        // moved (clamped, or kept where the default changed) are written.
        std::vector<config::ParamSetting> params;
        for (const auto& p : node.spec.params)
            for (uint32_t j = 0; j < nd.param_count; ++j)
                if (p.id == nd.params[j].id)  // a value the mapping kept stays as written (no float rounding)
                    params.push_back({p.id, static_cast<float>(p.value) == m.values[j] ? p.value : m.values[j], p.where});
        for (uint32_t j = 0; j < nd.param_count; ++j) {
            const bool written = std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.id == nd.params[j].id; });
            if (!written && m.values[j] != nd.params[j].default_value) params.push_back({nd.params[j].id, m.values[j], {}});
        }
        auto sameParams = [](const std::vector<config::ParamSetting>& a, const std::vector<config::ParamSetting>& b) {
            if (a.size() != b.size()) return false;
            for (size_t i = 0; i < a.size(); ++i)
                if (a[i].id != b[i].id || a[i].value != b[i].value) return false;
            return true;
        };
        if (!sameParams(params, node.spec.params)) extraDirty_ = true;
        node.spec.params = std::move(params);
        Fade fade;
        fade.node = n;
        fade.from = node.proc;
        node.proc = Processor{&nd, owned->get(), owned, path, {}};
        publishRack(fade);
        later.finish(std::move(m.report));
        if (offline_) return true;
        *crossfading = true;
        return false;
    }});
    return later;
}

Later<std::string> Runtime::waitApplied(double timeoutSeconds) {
    const uint64_t target = engine_->generation();
    const std::string text = "applied " + std::to_string(target);
    if (offline_) return Later<std::string>::done(text + " at the next block");
    auto applied = [this, target] { return engine_->appliedGeneration() >= target && !engine_->rackPending(); };
    if (applied()) return Later<std::string>::done(text);
    Later<std::string> later;
    const double deadline = nowSeconds() + timeoutSeconds;
    waits_.push_back([later, applied, deadline, target, text, timeoutSeconds]() {
        if (applied()) {
            later.finish(text);
            return true;
        }
        if (nowSeconds() < deadline) return false;
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g s", timeoutSeconds);
        later.finish(Error{"generation " + std::to_string(target) + " not applied after " + buf + "; is the audio running?"});
        return true;
    });
    return later;
}

Result<std::string> Runtime::startRecording(const std::string& path) {
    if (recorder_) return Error{"already recording to " + recorder_->path() + "; `record stop` first"};
    auto r = engine::Recorder::start(path, sampleRate_);
    if (!r) return Error{r.error()};
    recorder_ = std::move(r.value());
    engine_->setRecorder(recorder_.get());
    return "recording to " + path;
}

Later<std::string> Runtime::stopRecording() {
    if (!recorder_) return Later<std::string>::done(Error{"not recording"});
    engine_->setRecorder(nullptr);
    // From here on the recording is this operation's: `record start` may begin another.
    std::shared_ptr<engine::Recorder> rec(std::move(recorder_));
    auto finish = [this, rec](bool park) -> Result<std::string> {
        const std::string path = rec->path();
        const uint64_t dropped = rec->dropped();
        auto frames = rec->stop();
        // The audio thread may still be inside push() when it stopped moving: keep the object until the engine goes.
        if (park) parkedRecorders_.push_back(rec);
        if (!frames) return Error{frames.error()};
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(frames.value()) / sampleRate_);
        return "recorded " + path + " (" + buf + (dropped ? ", " + std::to_string(dropped) + " blocks lost" : "") + ")";
    };
    if (offline_) return Later<std::string>::done(finish(false));
    Later<std::string> later;
    const uint64_t target = engine_->blocks() + 2;  // the audio thread may be inside push() for this block
    auto moved = std::make_shared<std::pair<uint64_t, double>>(engine_->blocks(), nowSeconds());
    waits_.push_back([this, later, target, moved, finish]() {
        const uint64_t b = engine_->blocks();
        if (b >= target) {
            later.finish(finish(false));
            return true;
        }
        if (b != moved->first) *moved = {b, nowSeconds()};
        if (nowSeconds() - moved->second < kStallSeconds) return false;
        later.finish(finish(true));
        return true;
    });
    return later;
}

Later<std::string> Runtime::save(const std::string& path) {
    Later<std::string> later;
    submit(Operation{[this, path, later]() {
        if (!settled()) return false;
        const std::string target = path.empty() ? doc_.path : path;
        if (target.empty()) {
            later.finish(Error{"this session has no file yet; give one: save FILE.toml"});
            return true;
        }
        const bool own = path.empty() || path == doc_.path || (!doc_.path.empty() && files::sameFile(path, doc_.path));
        auto text = config::saveSession(document(), target);
        if (!text) {
            later.finish(Error{text.error()});
            return true;
        }
        if (own) {
            doc_.sourceText = text.value();
            extraDirty_ = false;
            journal_.markSaved(doc_.path);
        } else {
            journal_.markSaved(target);
        }
        later.finish("saved " + target);
        return true;
    }});
    return later;
}

void Runtime::updateMeters(double now) {
    engine::MeterFrame f;
    const double dt = lastMeterTime_ > 0 ? std::clamp(now - lastMeterTime_, 0.0, 1.0) : 0.0;
    lastMeterTime_ = now;
    const bool fresh = engine_->latestMeters(f) && engine_->rack() && f.rackSerial == engine_->rack()->serial();
    const float zeros[2] = {0, 0};
    const double period = f.frames ? f.frames / sampleRate_ * 1e9 : 1.0;
    meterView_.nodes.resize(nodes_.size());
    for (size_t n = 0; n < nodes_.size(); ++n) {
        MeterBallistics& m = nodes_[n].meter;
        m.update(fresh ? f.nodePeak[n] : zeros, fresh ? f.nodeRms[n] : zeros, dt, now);
        if (fresh && f.timed) m.setCpuShare(static_cast<float>(f.nodeNanoseconds[n] / period));
        meterView_.nodes[n] = m.reading();
    }
    master_.update(fresh ? f.masterPeak : zeros, fresh ? f.masterRms : zeros, dt, now);
    meterView_.master = master_.reading();
    if (fresh && f.timed) meterView_.dspLoad = static_cast<float>(f.blockNanoseconds / period);
}

EngineStatus Runtime::status() const {
    EngineStatus s;
    s.sampleRate = sampleRate_;
    s.blockFrames = maxBlockFrames_;
    s.dspLoad = meterView_.dspLoad * 100.0f;
    s.xruns = engine_->events().xruns.load();
    s.serverLost = engine_->events().shutdown.load();
    return s;
}

std::vector<std::string> Runtime::takeEvents(double now) {
    std::vector<std::string> out = std::move(notes_);
    notes_.clear();
    for (auto& line : events_.take(*engine_, now)) out.push_back(std::move(line));
    return out;
}

}  // namespace rackterm::app
