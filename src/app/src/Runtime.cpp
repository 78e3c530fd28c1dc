#include <rackterm/app/Runtime.hpp>

#include <rackterm/app/Catalog.hpp>
#include <rackterm/app/Packages.hpp>
#include <rackterm/app/Trial.hpp>
#include <rackterm/app/Values.hpp>
#include <rackterm/common/Files.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/Graph.hpp>
#include <rackterm/engine/Player.hpp>
#include <rackterm/engine/Recorder.hpp>
#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/loader/Isolation.hpp>
#include <rackterm/loader/Loader.hpp>
#include <rackterm/loader/Plugins.hpp>
#include <rackterm/loader/Trial.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string_view>
#include <utility>

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

/// The same connection: the same ends as written (its level may differ).
bool sameEnds(const config::ConnectionSpec& a, const config::ConnectionSpec& b) {
    return a.from == b.from && a.to == b.to;
}

bool contains(const std::vector<config::ConnectionSpec>& list, const config::ConnectionSpec& c) {
    return std::any_of(list.begin(), list.end(), [&](const config::ConnectionSpec& x) { return sameEnds(x, c); });
}

float linearGain(double db) { return static_cast<float>(std::pow(10.0, db / 20.0)); }

/// "eq -> rev (-12 dB, feedback)".
std::string describeConnection(const config::ConnectionSpec& c) {
    std::string extra;
    if (c.gainDb != 0) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g dB", c.gainDb);
        extra = buf;
    }
    if (c.feedback) extra += std::string(extra.empty() ? "" : ", ") + "feedback";
    return c.from + " -> " + c.to + (extra.empty() ? "" : " (" + extra + ")");
}

/// The port part of an endpoint as written (":out_2"), or "".
std::string portSuffix(const std::string& endpoint) {
    const size_t colon = endpoint.find(':');
    return colon == std::string::npos ? "" : endpoint.substr(colon);
}

/// The chain of nodes `ids` written out: input -> ids[0] -> ... -> output.
std::vector<config::ConnectionSpec> chainOf(const std::vector<std::string>& ids) {
    std::vector<config::ConnectionSpec> out;
    std::string from = "input";
    for (const std::string& id : ids) {
        config::ConnectionSpec c;
        c.from = from;
        c.to = from = id;
        out.push_back(std::move(c));
    }
    config::ConnectionSpec last;
    last.from = from;
    last.to = "output";
    out.push_back(std::move(last));
    return out;
}

/// Keeps a processor's instance and its dual-mono copies alive, for a rack's owner list.
std::shared_ptr<void> ownersOf(const std::shared_ptr<void>& owner, const std::vector<std::shared_ptr<void>>& copies) {
    auto owners = std::make_shared<std::vector<std::shared_ptr<void>>>(copies);
    owners->push_back(owner);
    return owners;
}

/// The child behind an instance owner (a loader::Instance), or nullptr when it runs in process.
loader::IsolatedProcessor* isolatedOf(const std::shared_ptr<void>& owner) {
    return owner ? std::static_pointer_cast<loader::Instance>(owner)->isolated().get() : nullptr;
}

/// Completes `later` with an operation's result.
std::function<void(const Result<std::string>&)> finishing(const Later<std::string>& later) {
    return [later](const Result<std::string>& r) { later.finish(r); };
}

/// Every loader::Instance behind a processor (a Runtime::Processor): its
/// own, then its dual-mono copies; none for the player.
template <class Processor>
std::vector<loader::Instance*> instancesOf(const Processor& proc) {
    std::vector<loader::Instance*> out;
    if (!proc.module) return out;
    if (proc.owner) out.push_back(static_cast<loader::Instance*>(proc.owner.get()));
    for (const auto& o : proc.copyOwners)
        if (o) out.push_back(static_cast<loader::Instance*>(o.get()));
    return out;
}

/// "ID VERSION" of the installed package `processor` names, or "".
std::string packageLabel(const std::string& processor) {
    const std::string id = packageIdOf(processor);
    return id.empty() ? std::string() : id + " " + installedVersion(id);
}

Error noNodeRuns(const std::string& package) {
    return Error{"no node runs package " + quote(package) + "; `list packages` shows the ones in use"};
}

}  // namespace

double nowSeconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Runtime::~Runtime() {
    for (const Node& n : nodes_) setDeactivateReason(n.proc, RACKTERM_DEACTIVATE_SHUTDOWN);
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

Result<std::unique_ptr<Runtime>> Runtime::open(config::Session session, double sampleRateHz, uint32_t maxBlockFrames,
                                               int realtimePriority, bool offline) {
    std::unique_ptr<Runtime> r(new Runtime);
    r->realtimePriority_ = realtimePriority;
    if (offline) r->setOffline(true);
    r->sampleRate_ = sampleRateHz;
    r->maxBlockFrames_ = maxBlockFrames;
    if (session.nodes.size() > kMaxNodes)
        return Error{printable(session.path, kPathChars) + ": " + nodeLimitMessage(session.nodes.size())};
    std::vector<config::NodeSpec> specs = std::move(session.nodes);
    session.nodes.clear();
    r->doc_ = std::move(session);
    for (auto& spec : specs) {
        auto proc = r->loadProcessor(spec, r->doc_.path, false, nullptr, true);
        if (!proc) return Error{proc.error()};
        if (!proc.value().note.empty()) r->notes_.push_back(proc.value().note);
        r->nodes_.push_back(Node{std::move(spec), std::move(proc.value()), {}});
    }
    r->inputs_ = r->doc_.engine.inputCount();
    r->outputs_ = r->doc_.engine.outputCount();
    if (auto planned = r->planDocument(r->doc_.connections); !planned) {
        const std::string& e = planned.error();
        // Errors about one connection carry its place; others are the file's.
        if (e.rfind(printable(r->doc_.path, kPathChars), 0) == 0) return Error{e};
        return Error{printable(r->doc_.path, kPathChars) + ": " + e};
    }
    r->engine_ = std::make_unique<engine::Engine>(r->inputs_, r->outputs_);
    r->publishRack();
    r->journal_.markSaved(r->doc_.path);
    r->lastBlockTime_ = nowSeconds();
    return r;
}

Result<Runtime::Processor> Runtime::loadProcessor(config::NodeSpec& spec, const std::string& sessionPath, bool adapt,
                                                  bool* adapted, bool restoreState) const {
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
        } else if (loader::isPluginReference(spec.processor)) {
            path = spec.processor;  // lv2:URI or ladspa:LABEL, found by the loader
        } else if (isPackageReference(spec.processor)) {
            auto found = resolvePackageComponent(spec.processor);
            if (!found) return Error{where + ": " + found.error()};
            path = found.value();
        } else {
            path = builtinModulePath(spec.processor);
            if (path.empty())
                return Error{where + ": unknown processor " + quote(spec.processor) +
                             didYouMean(spec.processor, processorNames()) +
                             "; `rackterm processors` lists them (plugins: lv2:URI, ladspa:LABEL)"};
        }
        auto module = loader::loadModule(path, sampleRate_);
        if (!module) return Error{where + ": " + module.error()};
        auto made = instantiate(module.value(), spec, path, restoreState ? sessionPath : std::string());
        if (!made) return Error{where + ": " + made.error()};
        proc = std::move(made.value());
        proc.package = packageLabel(spec.processor);
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

Result<void> Runtime::reformat(double sampleRateHz, uint32_t maxBlockFrames) {
    if (sampleRateHz == sampleRate_ && maxBlockFrames == maxBlockFrames_) return {};
    const double oldRate = std::exchange(sampleRate_, sampleRateHz);
    const uint32_t oldBlock = std::exchange(maxBlockFrames_, maxBlockFrames);
    std::vector<Processor> fresh;
    fresh.reserve(nodes_.size());
    for (const Node& node : nodes_) {
        config::NodeSpec spec = node.spec;
        // A module: the build that plays, not the file on disk (which may hold
        // a refused build). A player: its file decoded again at the new rate.
        // A plugin's table depends on the rate (sample-rate-relative ranges): it is loaded again.
        const bool plugin = loader::isPluginReference(node.proc.path);
        auto proc = node.proc.module && !plugin ? instantiate(node.proc.module, node.spec, node.proc.path)
                                                : loadProcessor(spec, doc_.path, true);
        if (!proc) {
            sampleRate_ = oldRate;
            maxBlockFrames_ = oldBlock;
            return Error{"node '" + node.spec.id + "' does not " + (node.proc.module ? "start" : "load") + " at " +
                         std::to_string(std::lround(sampleRateHz)) + " Hz: " + proc.error()};
        }
        carryPluginState(node.proc, proc.value());  // at the new rate, with the state it had
        fresh.push_back(std::move(proc.value()));
    }
    for (size_t n = 0; n < nodes_.size(); ++n) {
        setDeactivateReason(nodes_[n].proc, RACKTERM_DEACTIVATE_RELOAD);
        fresh[n].package = nodes_[n].proc.package;
        if (nodes_[n].unloaded)  // its package is gone: the new instances never play either
            for (loader::Instance* i : instancesOf(fresh[n])) (void)i->deactivate(RACKTERM_DEACTIVATE_UNINSTALL);
        nodes_[n].proc = std::move(fresh[n]);  // the old rack keeps the old ones
    }
    publishRack();
    return {};
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

bool Runtime::nodeIsPlugin(size_t n) const { return loader::isPluginReference(nodes_[n].proc.path); }

std::vector<Runtime::ControlReading> Runtime::controlOutputs(size_t n) const {
    std::vector<ControlReading> out;
    const auto* inst = static_cast<const loader::Instance*>(nodes_[n].proc.module ? nodes_[n].proc.owner.get() : nullptr);
    if (!inst) return out;
    for (auto& o : loader::controlOutputs(*inst)) out.push_back({std::move(o.id), std::move(o.name), std::move(o.unit), o.value});
    return out;
}

Result<std::string> Runtime::sendNote(const std::string& id, int key, int velocity) {
    auto n = findNode(id);
    if (!n) return Error{n.error()};
    const Processor& proc = nodes_[n.value()].proc;
    const uint8_t msg[3] = {static_cast<uint8_t>(velocity > 0 ? 0x90 : 0x80), static_cast<uint8_t>(key & 0x7f),
                            static_cast<uint8_t>(velocity > 0 ? velocity & 0x7f : 64)};
    const std::vector<loader::Instance*> instances = instancesOf(proc);
    if (!instances.empty() && instances.front()->isolated())
        return Error{"node '" + id + "' is isolated; notes do not reach its sandbox (set isolate = false for it)"};
    size_t sent = 0;
    for (const auto* inst : instances) sent += loader::sendMidi(*inst, msg, 3) ? 1 : 0;
    if (sent == 0)
        return Error{"node '" + id + "' (" + proc.descriptor->id + ") takes no MIDI; notes go to LV2 instruments and samplers"};
    return id + ": note " + std::to_string(key) + (velocity > 0 ? " on, velocity " + std::to_string(velocity) : " off");
}

std::vector<float> Runtime::values(size_t n) const {
    std::vector<float> v;
    for (uint32_t i = 0; i < nodes_[n].proc.descriptor->param_count; ++i) v.push_back(value(n, i));
    return v;
}

std::vector<config::ConnectionSpec> Runtime::chainConnections() const {
    std::vector<std::string> ids;
    for (const Node& n : nodes_) ids.push_back(n.spec.id);
    return chainOf(ids);
}

std::vector<size_t> Runtime::processingOrder() const {
    if (graph_.order.size() == nodes_.size()) return graph_.order;
    std::vector<size_t> order(nodes_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    return order;
}

std::vector<config::ConnectionSpec> Runtime::connections() const {
    return doc_.connections.empty() ? chainConnections() : doc_.connections;
}

namespace {

/// The engine's view of `nodes` (id, channels, latency) joined by
/// `connections` (gains as written, no ramps).
template <class NodeT>
Result<engine::GraphSpec> graphSpec(const std::vector<const NodeT*>& nodes,
                                    const std::vector<config::ConnectionSpec>& connections, uint32_t inputs,
                                    uint32_t outputs) {
    engine::GraphSpec g;
    g.inputs = inputs;
    g.outputs = outputs;
    std::vector<std::string> ids;
    for (const NodeT* n : nodes) {
        const rackterm_processor_v2& d = *n->proc.descriptor;
        ids.push_back(n->spec.id);
        g.nodes.push_back({n->spec.id, d.input_channels, d.output_channels, loader::latencyFrames(d, n->proc.instance)});
    }
    auto where = [](const config::ConnectionSpec& c, const config::SourceLocation& at) {
        return at.line ? at.str() + ": " : c.where.line ? c.where.str() + ": " : std::string();
    };
    for (const config::ConnectionSpec& c : connections) {
        engine::GraphEdge e;
        for (const bool source : {true, false}) {
            auto end = config::parseEndpoint(source ? c.from : c.to, source);
            if (!end) return Error{where(c, source ? c.fromWhere : c.toWhere) + end.error()};
            uint32_t index = source ? engine::kGraphInput : engine::kGraphOutput;
            if (end.value().node != (source ? "input" : "output")) {
                const auto it = std::find(ids.begin(), ids.end(), end.value().node);
                if (it == ids.end()) {
                    std::vector<std::string> names = ids;
                    names.emplace_back(source ? "input" : "output");
                    return Error{where(c, source ? c.fromWhere : c.toWhere) + "no node " + quote(end.value().node) +
                                 didYouMean(end.value().node, names)};
                }
                index = static_cast<uint32_t>(it - ids.begin());
            }
            (source ? e.from : e.to) = index;
            (source ? e.fromPort : e.toPort) = end.value().port;
        }
        e.gain = e.startGain = linearGain(c.gainDb);
        e.feedback = c.feedback;
        g.edges.push_back(e);
    }
    return g;
}

}  // namespace

Result<std::shared_ptr<engine::GraphPlan>> Runtime::plan(const std::vector<const Node*>& nodes,
                                                         const std::vector<config::ConnectionSpec>& connections,
                                                         bool chain) const {
    std::vector<config::ConnectionSpec> chained;
    if (chain) {
        std::vector<std::string> ids;
        for (const Node* n : nodes) ids.push_back(n->spec.id);
        chained = chainOf(ids);
    }
    const auto& list = chain ? chained : connections;
    auto g = graphSpec(nodes, list, inputs_, outputs_);
    if (!g) return Error{g.error()};
    uint32_t bad = UINT32_MAX;
    auto planned = engine::planGraph(g.value(), &bad);
    if (!planned) {
        std::string prefix;
        if (bad < list.size() && list[bad].where.line) prefix = list[bad].where.str() + ": ";
        std::string hint;
        if (chain && bad != UINT32_MAX)
            hint = "; a session whose nodes do not chain 1:1 needs [[connection]] tables (docs/session-format.md)";
        return Error{prefix + planned.error() + hint};
    }
    return std::make_shared<engine::GraphPlan>(std::move(planned.value()));
}

Result<std::shared_ptr<engine::GraphPlan>> Runtime::planDocument(const std::vector<config::ConnectionSpec>& connections,
                                                                 const Node* extra, size_t extraAt,
                                                                 size_t without) const {
    std::vector<const Node*> list;
    for (size_t n = 0; n <= nodes_.size(); ++n) {
        if (extra && n == extraAt) list.push_back(extra);
        if (n < nodes_.size() && n != without) list.push_back(&nodes_[n]);
    }
    return plan(list, connections, connections.empty());
}

void Runtime::publishRack(const Fade& fade, bool rampNew, const std::vector<config::ConnectionSpec>& fadeOut) {
    const std::vector<config::ConnectionSpec> conns = connections();
    std::vector<const Node*> all;
    for (const Node& n : nodes_) all.push_back(&n);
    auto g = graphSpec(all, conns, inputs_, outputs_);
    std::optional<engine::GraphPlan> planned;
    if (g) {
        for (size_t i = 0; i < conns.size(); ++i) {
            engine::GraphEdge& e = g.value().edges[i];
            if (rampNew) {  // a new connection fades in, a new level ramps
                const auto old = std::find_if(published_.begin(), published_.end(),
                                              [&](const config::ConnectionSpec& c) { return sameEnds(c, conns[i]); });
                e.startGain = old == published_.end() ? 0.0f : linearGain(old->gainDb);
            }
            if (contains(fadeOut, conns[i])) e.gain = 0.0f;  // fades out; the next rack leaves it out
        }
        auto p = engine::planGraph(g.value());
        if (p) planned = std::move(p.value());
        else g = Error{p.error()};
    }
    if (!planned) {  // every edit checks its graph first: this is a defect, not a user's error
        notes_.push_back("internal: the graph could not be planned (" + g.error() + "); the rack is unchanged");
        return;
    }
    std::vector<engine::NodeSetup> setups;
    setups.reserve(nodes_.size());
    for (size_t n = 0; n < nodes_.size(); ++n) {
        Node& node = nodes_[n];
        Processor& proc = node.proc;
        const uint32_t copies = planned->copies[n];
        while (proc.copies.size() + 1 < copies && proc.module) {  // dual mono: one instance per channel
            auto made = instantiate(proc.module, node.spec, proc.path);
            if (!made) {
                notes_.push_back("node '" + node.spec.id + "': " + made.error() + "; its extra channels are silent");
                break;
            }
            carryPluginState(proc, made.value());
            proc.copies.push_back(made.value().instance);
            proc.copyOwners.push_back(made.value().owner);
        }
        engine::NodeSetup s;
        s.id = node.spec.id;
        s.descriptor = proc.descriptor;
        s.instance = proc.instance;
        const size_t extra = std::min<size_t>(copies - 1, proc.copies.size());
        s.extraInstances.assign(proc.copies.begin(), proc.copies.begin() + static_cast<long>(extra));
        s.owner = ownersOf(proc.owner, proc.copyOwners);
        // Isolated instances raise a fault flag while their child does not answer; plugins while
        // they wait to be replaced after NaN/Inf. The rack plays the node dry meanwhile.
        if (proc.module) {
            auto flag = [](const std::shared_ptr<void>& o) {
                return o ? loader::faultFlag(*std::static_pointer_cast<loader::Instance>(o)) : nullptr;
            };
            s.faults.push_back(flag(proc.owner));
            for (size_t k = 0; k < extra; ++k) s.faults.push_back(flag(proc.copyOwners[k]));
        }
        s.values = values(n);
        s.bypass = node.spec.bypass;
        if (n == fade.node) {
            s.fadeIn = fade.fadeIn;
            if (fade.from.instance) {
                s.fadeFromDescriptor = fade.from.descriptor;
                s.fadeFromInstance = fade.from.instance;
                s.fadeFromExtraInstances = fade.from.copies;
                s.fadeFromOwner = ownersOf(fade.from.owner, fade.from.copyOwners);
                s.fadeFrames = std::max<uint32_t>(
                    1, static_cast<uint32_t>(doc_.engine.crossfadeMs.value_or(10.0) * 0.001 * sampleRate_));
            }
        }
        setups.push_back(std::move(s));
    }
    graph_.order.assign(planned->order.begin(), planned->order.end());
    graph_.latency = planned->latency;
    graph_.outLatency = planned->outLatency;
    graph_.copies = planned->copies;
    graph_.inWidth = planned->inWidth;
    graph_.outWidth = planned->outWidth;
    graph_.totalLatency = planned->totalLatency;
    published_ = conns;
    engine_->publish(std::make_unique<engine::Rack>(std::move(setups), std::move(*planned), maxBlockFrames_, sampleRate_,
                                                    engine_->generation()));
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
    if (!rack->edgesSettled()) return false;
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
    superviseIsolated();
    restartResetPlugins();
    for (auto& line : loader::takePluginLog()) notes_.push_back("plugin " + line);  // LV2 log:log
    watchNodes();
    runOperations();
    std::erase_if(waits_, [](const std::function<bool()>& w) { return w(); });
}

void Runtime::watchNodes() {
    const double now = nowSeconds();
    std::erase_if(watches_, [now](const Watch& w) { return now >= w.until; });  // watched long enough: the old build goes
    engine::Rack* rack = engine_->rack();
    if (!rack || engine_->rackPending() || offline_) return;
    for (uint32_t n = 0; n < nodes_.size() && n < rack->nodeCount(); ++n) {
        Node& node = nodes_[n];
        auto w = std::find_if(watches_.begin(), watches_.end(), [&](const Watch& x) {
            return x.id == node.spec.id && x.build == node.proc.module && !x.reverting;
        });
        // While a swap crossfades, the old build runs too: its NaN or time would count against the new one.
        if (w != watches_.end() && !rack->fadeDone(n)) continue;
        uint32_t ns = 0;
        const bool late = rack->takeOverBudget(n, &ns);
        auto took = [&] {
            char text[160];
            std::snprintf(text, sizeof text, "took %.2f ms, over the %.2f ms period, in %u blocks in a row", ns / 1e6,
                          maxBlockFrames_ / sampleRate_ * 1e3, engine::Rack::kLateBlocks);
            return std::string(text);
        };
        if (w != watches_.end()) {
            const uint64_t count = rack->nonFiniteCount(n);
            if (w->rack != rack->serial()) {  // a rack seen for the first time: count from here
                w->rack = rack->serial();
                w->baseline = count;
            }
            if (late || count > w->baseline) {
                w->reverting = true;
                submit(revertOp(*w, late ? took() : "output NaN/Inf", kWatchSeconds - (w->until - now)));
            }
        } else if (late && !node.spec.bypass) {  // in process: bypass it before it takes the rack down with it
            playBypass(n, true);
            notes_.push_back("node '" + node.spec.id + "' (" + node.proc.descriptor->id + ") " + took() +
                             ": bypassed; `bypass " + node.spec.id + " off` tries it again");
        }
    }
}

bool Runtime::isolates(const config::NodeSpec& spec) const {
    if (spec.processor == "player") return false;
    if (spec.isolate) return *spec.isolate;
    const std::string mode = doc_.engine.isolate.value_or("watched");
    if (mode == "watched") return spec.watch.has_value();
    if (mode == "all-but-builtins")  // everything not built with rackterm: paths, packages, plugins
        return !spec.path.empty() || loader::isPluginReference(spec.processor) || isPackageReference(spec.processor);
    return false;
}

Result<Runtime::Processor> Runtime::instantiate(const std::shared_ptr<void>& moduleHandle, const config::NodeSpec& spec,
                                                const std::string& path, const std::string& stateOf) const {
    const auto module = std::static_pointer_cast<loader::Module>(moduleHandle);
    std::shared_ptr<loader::Instance> owned;
    const std::string sandbox = isolates(spec) ? sandboxPath() : std::string();
    if (isolates(spec) && sandbox.empty()) {
        if (spec.isolate)  // asked for by the node: running it unprotected is not what was asked
            return Error{"node '" + spec.id + "' has isolate = true, but rackterm-sandbox is not next to rackterm; "
                         "install it there or set RACKTERM_SANDBOX"};
        if (!sandboxMissingSaid_)
            notes_.push_back("rackterm-sandbox is not next to rackterm: isolated nodes run in process; install it "
                             "or set RACKTERM_SANDBOX");
        sandboxMissingSaid_ = true;
    }
    if (!sandbox.empty()) {
        std::vector<std::pair<std::string, float>> byId;
        for (const auto& p : spec.params) byId.emplace_back(p.id, static_cast<float>(p.value));
        loader::IsolationOptions options{sandbox, spec.id, realtimePriority_, offline_};
        auto inst = loader::createIsolatedInstance(module, sampleRate_, maxBlockFrames_,
                                                   loader::valuesById(module->descriptor(), byId), options);
        if (!inst) return Error{inst.error()};
        owned = std::move(inst.value());
        isolated_.push_back(Isolated{spec.id, owned, 0});
        if (loader::isPluginReference(path) && isolatedPluginSaid_.insert(spec.id).second)
            notes_.push_back("node '" + spec.id + "' (" + path + ") runs isolated: its control outputs, `note` and an "
                             "LV2 plugin's own state do not cross the sandbox (set isolate = false for them)");
    } else {
        auto inst = loader::createInstance(module, sampleRate_, maxBlockFrames_);
        if (!inst) return Error{inst.error()};
        owned = std::move(inst.value());
    }
    // A plugin's own state, saved beside the session (NAME.state/NODE/), comes back with it.
    if (loader::hasPluginState(*owned) && !stateOf.empty()) {
        const std::string dir = pluginStateDir(stateOf, spec.id);
        std::error_code ec;
        if (std::filesystem::exists(dir + "/state.ttl", ec))
            if (auto r = loader::restorePluginState(*owned, dir); !r)
                notes_.push_back("node '" + spec.id + "': its saved state was not restored: " + r.error());
    }
    Processor proc;
    proc.descriptor = &owned->descriptor();
    proc.instance = owned->get();
    proc.owner = owned;
    proc.path = path;
    proc.module = module;
    return proc;
}

std::string Runtime::pluginStateDir(const std::string& sessionPath, const std::string& nodeId) {
    const std::filesystem::path p(sessionPath);
    return (p.parent_path() / (p.stem().string() + ".state") / nodeId).string();
}

void Runtime::pruneStateFolders(const std::string& sessionPath, const std::set<std::string>& kept) {
    const std::filesystem::path folder = std::filesystem::path(pluginStateDir(sessionPath, "x")).parent_path();
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) return;
    std::vector<std::filesystem::path> gone;
    for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        // Only what rackterm wrote: a node's state (state.ttl) or a save's leftover folder.
        std::error_code e2;
        const bool ours = std::filesystem::exists(it->path() / "state.ttl", e2) || name.find(".saving-") != std::string::npos;
        if (ours && it->is_directory(e2) && !kept.count(name)) gone.push_back(it->path());
    }
    for (const auto& p : gone) std::filesystem::remove_all(p, ec);
    if (std::filesystem::is_empty(folder, ec)) std::filesystem::remove(folder, ec);
}

void Runtime::carryPluginState(const Processor& from, const Processor& to) const {
    if (!from.module || !to.module || !from.owner || !to.owner) return;
    const auto& a = *static_cast<const loader::Instance*>(from.owner.get());
    const auto& b = *static_cast<const loader::Instance*>(to.owner.get());
    if (!loader::hasPluginState(a) || !loader::hasPluginState(b) || a.module()->path() != b.module()->path()) return;
    if (auto r = loader::copyPluginState(a, b); !r)
        notes_.push_back("the plugin's state was not carried to its new instance: " + r.error());
}

void Runtime::setOffline(bool offline) {
    offline_ = offline;
    loader::setPluginWorkSynchronous(offline);  // LV2 worker requests run inside the block: renders repeat
    for (const Isolated& i : isolated_)
        if (auto inst = i.instance.lock()) isolatedOf(inst)->setOffline(offline);
}

void Runtime::restartResetPlugins() {
    const double now = nowSeconds();
    for (Node& node : nodes_) {
        if (!node.proc.module || !loader::isPluginReference(node.proc.path)) continue;
        bool wanted = false;
        std::vector<std::shared_ptr<void>> owners = node.proc.copyOwners;
        owners.insert(owners.begin(), node.proc.owner);
        for (const auto& o : owners)
            if (o) wanted = loader::takePluginRestartRequest(*std::static_pointer_cast<loader::Instance>(o)) || wanted;
        if (!wanted) continue;
        auto& times = pluginRestarts_[node.spec.id];
        std::erase_if(times, [now](double t) { return now - t > 10.0; });
        if (times.size() >= 3) {
            notes_.push_back("node '" + node.spec.id + "' (" + printable(node.proc.path, kPathChars) +
                             ") put out NaN/Inf again after 3 restarts in 10 s; it stays dry until `reload " +
                             node.spec.id + "`");
            continue;
        }
        times.push_back(now);
        notes_.push_back("node '" + node.spec.id + "' (" + printable(node.proc.path, kPathChars) +
                         ") put out NaN/Inf; it plays dry while a new instance starts with its values and state");
        // The same plugin that was playing (no new build: no trial), a new instance crossfaded in.
        auto done = std::make_shared<bool>(false);
        submit(Operation{[this, id = node.spec.id, done]() {
            if (!settled()) return false;
            auto n = findNode(id);
            if (!n || !nodes_[n.value()].proc.module) return *done = true;  // removed meanwhile
            Node& nd = nodes_[n.value()];
            auto made = instantiate(nd.proc.module, nd.spec, nd.proc.path);
            if (!made) {
                notes_.push_back("node '" + id + "' was not restarted: " + made.error());
                return *done = true;
            }
            carryPluginState(nd.proc, made.value());
            Fade fade;
            fade.node = n.value();
            fade.from = nd.proc;
            nd.proc = std::move(made.value());
            publishRack(fade);
            notes_.push_back("node '" + id + "': restarted");
            return *done = true;
        }});
        // Offline the new instance is in place before the next block: renders repeat.
        for (int turn = 0; offline_ && !*done && turn < 1000; ++turn) runOperations();
    }
}

void Runtime::superviseIsolated() {
    std::erase_if(isolated_, [](const Isolated& i) { return i.instance.expired(); });
    const double now = nowSeconds();
    for (Isolated& i : isolated_) {
        auto inst = i.instance.lock();
        if (!inst) continue;
        loader::IsolatedProcessor* iso = isolatedOf(inst);
        std::vector<std::string> lines = iso->supervise(now, offline_);
        const uint32_t failures = iso->failureCount();
        const bool failed = failures != i.failures;
        i.failures = failures;
        // A new build that fails within its watch goes back to the previous one.
        auto w = std::find_if(watches_.begin(), watches_.end(), [&](const Watch& x) { return x.id == i.id && !x.reverting; });
        if (failed && w != watches_.end()) {
            auto n = findNode(i.id);
            if (n && nodes_[n.value()].proc.module == w->build && nodes_[n.value()].proc.owner == inst) {
                w->reverting = true;
                // The failure's own line (a rate-limited "late" line may come first).
                std::string why = "failed in its sandbox";
                for (const auto& l : lines)
                    if (l.find("; restarting it") != std::string::npos || l.find(" failures in ") != std::string::npos)
                        why = l;
                if (const size_t colon = why.find("': "); colon != std::string::npos) why.erase(0, colon + 3);
                if (const size_t semi = why.find("; "); semi != std::string::npos) why.erase(semi);
                submit(revertOp(*w, why, kWatchSeconds - (w->until - now)));
            }
        }
        for (auto& line : lines) notes_.push_back(std::move(line));
    }
}

bool Runtime::isolationPending() const {
    for (const Isolated& i : isolated_)
        if (auto inst = i.instance.lock(); inst && isolatedOf(inst)->needsSupervision()) return true;
    return false;
}

bool Runtime::nodeIsolated(size_t n) const { return nodes_[n].proc.module && isolatedOf(nodes_[n].proc.owner); }

std::string Runtime::nodeFault(size_t n) const {
    if (!nodes_[n].proc.module) return {};
    const double now = nowSeconds();
    std::vector<std::shared_ptr<void>> owners = nodes_[n].proc.copyOwners;  // the instance, then its dual-mono copies
    owners.insert(owners.begin(), nodes_[n].proc.owner);
    for (const auto& o : owners)
        if (auto* iso = isolatedOf(o))
            if (std::string st = iso->status(now); !st.empty()) return st;
    return {};
}

std::optional<std::string> Runtime::trialStep(std::unique_ptr<TrialRun>& trial, const std::string& path,
                                             const std::vector<std::pair<std::string, float>>& values) {
    if (!trial) trial = TrialRun::start(path, sampleRate_, maxBlockFrames_, values, nowSeconds());
    if (offline_) trial->wait();
    if (!trial->poll(nowSeconds())) return std::nullopt;
    // A module that does not load: the caller's own load says so, with its place.
    if (trial->problem().empty() || trial->loadError()) return std::string();
    return "trial (" + std::to_string(maxBlockFrames_) + "-frame blocks at " + std::to_string(std::lround(sampleRate_)) +
           " Hz): " + trial->problem();
}

Runtime::Operation Runtime::revertOp(const Watch& watch, std::string why, double after) {
    const std::string id = watch.id;
    const std::shared_ptr<void> build = watch.build, previous = watch.previous;
    const std::string path = watch.previousPath, package = watch.previousPackage;
    auto crossfading = std::make_shared<bool>(false);
    return Operation{[this, id, build, previous, path, package, why, after, crossfading]() {
        if (*crossfading) {
            if (!settled()) return false;
            publishRack();
            return true;
        }
        auto found = findNode(id);
        if (!found || nodes_[found.value()].proc.module != build) return true;  // replaced since: nothing to revert
        char when[64];
        std::snprintf(when, sizeof when, "%.1f s", after);
        Later<SwapReport> later;
        if (!installBuild(found.value(), previous, path, later)) {
            notes_.push_back("node '" + id + "': the new build " + why + " " + when +
                             " after the swap, and the previous build could not come back: " +
                             (later.ready() && !later.result() ? later.result().error() : std::string("?")));
            return true;
        }
        nodes_[found.value()].proc.package = package;  // the version that plays again, not the one installed
        std::erase_if(watches_, [&](const Watch& w) { return w.id == id; });
        notes_.push_back("node '" + id + "': the new build " + why + " " + when +
                         " after the swap: reverted to the previous build (crossfaded); fix it and build again");
        *crossfading = true;
        return false;
    }};
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
    if (!bypass && nodes_[node].unloaded) return;  // its instance is deactivated: it stays dry (undo, load)
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
    if (const std::string why = whyUnloaded(n.value()); !bypass && !why.empty()) return Error{why};
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
    const bool isPath = !loader::isPluginReference(processor) &&
                        (processor.find('/') != std::string::npos ||
                         (processor.size() > 3 && processor.substr(processor.size() - 3) == ".so"));
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
                                  Done done, std::optional<std::vector<config::ConnectionSpec>> connections) {
    auto started = std::make_shared<bool>(false);
    auto trial = std::make_shared<std::unique_ptr<TrialRun>>();
    return Operation{[this, spec, position, anchor, before, record, done, started, connections, trial]() mutable {
        if (*started) return settled();  // finished once the fade-in is over
        if (!settled()) return false;
        // A module file or a plugin (not a built-in) passes its trial before it is heard.
        const bool plugin = loader::isPluginReference(spec.processor);
        if ((!spec.path.empty() || plugin) && record) {
            std::vector<std::pair<std::string, float>> byId;
            for (const auto& p : spec.params) byId.emplace_back(p.id, static_cast<float>(p.value));
            const std::string module = plugin ? spec.processor : resolveAgainst(doc_.path, spec.path);
            const auto verdict = trialStep(*trial, module, byId);
            if (!verdict) return false;
            if (!verdict->empty()) {
                done(Error{"cannot add " + spec.id + ": " + printable(plugin ? spec.processor : spec.path, kPathChars) +
                           " failed its " + *verdict});
                return true;
            }
        }
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
        // Bringing a removed node back (undo): its state as last saved, if any.
        auto proc = loadProcessor(spec, doc_.path, !record, &adapted, !record);
        if (!proc) {
            done(Error{proc.error()});
            return true;
        }
        // In a graph, the node is spliced into the anchor's connections (or left unconnected).
        std::vector<config::ConnectionSpec> after = connections ? *connections : doc_.connections;
        if (!connections && !isChain() && !anchor.empty()) {
            for (config::ConnectionSpec& c : after) {
                std::string& end = before ? c.to : c.from;
                if (config::endpointNode(end) == anchor) end = spec.id + portSuffix(end);
            }
            config::ConnectionSpec link;
            link.from = before ? spec.id : anchor;
            link.to = before ? anchor : spec.id;
            link.where.file = "add";
            after.push_back(std::move(link));
            if (after.size() > kMaxConnections) {
                done(Error{"cannot add " + spec.id + ": " + connectionLimitMessage(after.size())});
                return true;
            }
        }
        Node node{spec, std::move(proc.value()), {}};
        if (auto planned = planDocument(after, &node, at); !planned) {
            done(Error{"cannot add " + spec.id + ": " + planned.error()});
            return true;
        }
        if (adapted) extraDirty_ = true;  // the processor changed since: not the journal's state
        if (!node.proc.note.empty()) notes_.push_back(node.proc.note);
        const std::string kind = node.proc.descriptor->id;
        nodes_.insert(nodes_.begin() + static_cast<long>(at), std::move(node));
        const std::vector<config::ConnectionSpec> connectionsBefore = doc_.connections;
        doc_.connections = after;
        ++structureSerial_;
        Fade fade;
        fade.node = at;
        fade.fadeIn = true;
        // A splice replaces connections and the node's bypass carries the sound
        // across; connections that only appear (undoing a remove) fade in.
        const std::vector<config::ConnectionSpec> now = this->connections();
        const bool replaces = std::any_of(published_.begin(), published_.end(),
                                          [&](const config::ConnectionSpec& c) { return !contains(now, c); });
        publishRack(fade, !replaces);
        if (record) {
            Edit e;
            e.kind = Edit::Kind::AddNode;
            e.node = spec.id;
            e.spec = spec;
            e.position = at;
            e.connectionsBefore = connectionsBefore;
            e.connectionsAfter = after;
            journal_.record(std::move(e), nowSeconds());
        }
        done("added " + spec.id + " (" + kind + ") at position " + std::to_string(at + 1));
        return settled();
    }};
}

Later<std::string> Runtime::removeNode(const std::string& id) {
    Later<std::string> later;
    submit(removeOp(id, true, finishing(later)));
    return later;
}

Runtime::Operation Runtime::removeOp(std::string id, bool record, Done done,
                                     std::optional<std::vector<config::ConnectionSpec>> connections) {
    auto fading = std::make_shared<bool>(false);
    auto target = std::make_shared<std::optional<std::vector<config::ConnectionSpec>>>(connections);
    return Operation{[this, id, record, done, fading, target]() {
        if (!settled()) return false;
        auto n = findNode(id);
        if (!n) {
            done(Error{n.error()});
            return true;
        }
        const auto index = static_cast<uint32_t>(n.value());
        std::vector<config::ConnectionSpec> outgoing;
        if (!*target) {  // the connections without the node; one that had one source is spliced out
            std::vector<config::ConnectionSpec> kept, incoming;
            for (const config::ConnectionSpec& c : doc_.connections) {
                const bool from = config::endpointNode(c.from) == id, to = config::endpointNode(c.to) == id;
                if (from && !to) outgoing.push_back(c);
                if (to && !from) incoming.push_back(c);
                if (!from && !to) kept.push_back(c);
            }
            std::vector<config::ConnectionSpec> spliced = kept;
            if (incoming.size() == 1 && !incoming[0].feedback)
                for (const config::ConnectionSpec& o : outgoing) {
                    config::ConnectionSpec c = o;
                    c.from = incoming[0].from;
                    c.gainDb = std::clamp(incoming[0].gainDb + o.gainDb, -120.0, 24.0);  // the levels multiplied
                    c.where = {};
                    if (!contains(spliced, c)) spliced.push_back(c);
                }
            const bool fits = spliced.size() <= kMaxConnections && planDocument(spliced, nullptr, 0, index);
            *target = fits ? spliced : kept;
            if (!fits) {  // without the splice, what is left must still plan (a dual-mono width, a chain)
                if (auto planned = planDocument(kept, nullptr, 0, index); !planned) {
                    done(Error{"cannot remove " + id + ": the graph without it does not fit: " + planned.error() +
                               "; change its connections first"});
                    return true;
                }
            }
        } else {
            for (const config::ConnectionSpec& c : doc_.connections)
                if (config::endpointNode(c.from) == id && config::endpointNode(c.to) != id) outgoing.push_back(c);
        }
        // Fade it out first so that taking it away changes nothing audible:
        // through its bypass (the document's bypass stays) when what replaces
        // it carries its input on (a chain, a splice), else by fading out what it feeds.
        const bool carried = isChain() || std::any_of((**target).begin(), (**target).end(), [&](const auto& c) {
                                 return !contains(doc_.connections, c);
                             });
        if (!offline_ && !*fading) {
            *fading = true;
            nodes_[n.value()].quiescing = true;
            if (carried && !engine_->rack()->bypassed(index)) {
                opGeneration_ = engine_->setBypass(index, true);
                headSince_ = nowSeconds();
                return false;
            }
            if (!carried && !outgoing.empty()) {
                publishRack(Fade{SIZE_MAX, false, {}}, false, outgoing);
                return false;
            }
        }
        Edit e;
        e.kind = Edit::Kind::RemoveNode;
        e.node = id;
        e.spec = nodes_[n.value()].spec;
        e.position = n.value();
        e.connectionsBefore = doc_.connections;
        e.connectionsAfter = **target;
        events_.forget(id);  // a node added later under this id starts afresh
        nodes_.erase(nodes_.begin() + static_cast<long>(n.value()));
        doc_.connections = **target;
        ++structureSerial_;
        publishRack();
        if (record) journal_.record(std::move(e), nowSeconds());
        done("removed " + id);
        return true;
    }};
}

Later<std::string> Runtime::connect(const std::string& from, const std::string& to, double gainDb, bool feedback) {
    using L = Later<std::string>;
    for (const bool source : {true, false}) {
        auto end = config::parseEndpoint(source ? from : to, source);
        if (!end) return L::done(Error{end.error()});
        const std::string& node = end.value().node;
        if (node == (source ? "output" : "input"))
            return L::done(Error{source ? "'output' is where the graph ends; it cannot be a connection's from"
                                        : "'input' is where the graph starts; it cannot be a connection's to"});
        if (node != (source ? "input" : "output"))
            if (auto n = findNode(node); !n) return L::done(Error{n.error()});
    }
    if (!std::isfinite(gainDb) || gainDb < -120 || gainDb > 24)
        return L::done(Error{"a connection's level is -120 to 24 dB, e.g. -12"});
    L later;
    auto make = [this, from, to, gainDb, feedback]() -> Result<std::pair<std::vector<config::ConnectionSpec>, std::string>> {
        std::vector<config::ConnectionSpec> list = connections();  // a chain is written out first
        config::ConnectionSpec c;
        c.from = from;
        c.to = to;
        c.gainDb = gainDb == 0 ? 0 : gainDb;
        c.feedback = feedback;
        c.where.file = "connect";
        auto it = std::find_if(list.begin(), list.end(), [&](const config::ConnectionSpec& x) { return sameEnds(x, c); });
        if (it != list.end()) {
            if (it->gainDb == c.gainDb && it->feedback == feedback)
                return Error{describeConnection(*it) + " is connected already; give another level to change it"};
            it->gainDb = c.gainDb;
            it->feedback = feedback;
        } else {
            if (list.size() >= kMaxConnections) return Error{connectionLimitMessage(list.size() + 1)};
            list.push_back(c);
        }
        return std::make_pair(std::move(list), "connect " + describeConnection(c));
    };
    submit(deferredGraphOp(make, finishing(later)));
    return later;
}

Later<std::string> Runtime::disconnect(const std::string& from, const std::string& to) {
    Later<std::string> later;
    auto make = [this, from, to]() -> Result<std::pair<std::vector<config::ConnectionSpec>, std::string>> {
        std::vector<config::ConnectionSpec> list = connections();
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const config::ConnectionSpec& x) { return x.from == from && x.to == to; });
        if (it == list.end()) {
            std::string near;
            for (const auto& c : list)
                if (config::endpointNode(c.from) == config::endpointNode(from) ||
                    config::endpointNode(c.to) == config::endpointNode(to))
                    near += (near.empty() ? "" : ", ") + c.from + " -> " + c.to;
            return Error{"no connection " + from + " -> " + to +
                         (near.empty() ? "; `list connections` shows them" : "; connected are: " + near)};
        }
        const std::string what = "disconnect " + describeConnection(*it);
        list.erase(it);
        if (list.empty())
            return Error{"that is the session's last connection, and a session without connections is a chain of "
                         "its nodes; connect something else first"};
        return std::make_pair(std::move(list), what);
    };
    submit(deferredGraphOp(make, finishing(later)));
    return later;
}

Runtime::Operation Runtime::deferredGraphOp(
    std::function<Result<std::pair<std::vector<config::ConnectionSpec>, std::string>>()> make, Done done) {
    auto inner = std::make_shared<std::optional<Operation>>();
    return Operation{[this, make, done, inner]() {
        if (!*inner) {
            if (!settled()) return false;
            auto target = make();  // from the graph as it is now, after the operations before it
            if (!target) {
                done(Error{target.error()});
                return true;
            }
            *inner = graphOp(std::move(target.value().first), std::move(target.value().second), true, done);
        }
        return (**inner).step();
    }};
}

Runtime::Operation Runtime::graphOp(std::vector<config::ConnectionSpec> target, std::string label, bool record,
                                    Done done) {
    auto phase = std::make_shared<int>(0);
    return Operation{[this, target, label, record, done, phase]() {
        if (*phase == 2) return settled();
        if (!settled()) return false;
        if (*phase == 0) {
            if (auto planned = planDocument(target); !planned) {
                done(Error{planned.error()});
                return true;
            }
            const std::vector<config::ConnectionSpec> next = target.empty() ? chainConnections() : target;
            std::vector<config::ConnectionSpec> going;
            for (const auto& c : published_)
                if (!contains(next, c)) going.push_back(c);
            *phase = 1;
            if (!going.empty() && !offline_) {  // what goes fades out first
                publishRack(Fade{SIZE_MAX, false, {}}, false, going);
                return false;
            }
        }
        Edit e;
        e.kind = Edit::Kind::Connections;
        e.connectionsBefore = doc_.connections;
        e.connectionsAfter = target;
        e.label = label;
        doc_.connections = target;
        publishRack(Fade{SIZE_MAX, false, {}}, true);  // what comes fades in, new levels ramp
        if (record) journal_.record(std::move(e), nowSeconds());
        done(label);
        *phase = 2;
        return settled();
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

Later<std::string> Runtime::recoverDocument(config::Session recovered) {
    if (recovered.nodes.size() > kMaxNodes)
        return Later<std::string>::done(Error{"the recovered session: " + nodeLimitMessage(recovered.nodes.size())});
    recovered.path = doc_.path;
    Later<std::string> later;
    submit(loadOp(std::make_shared<const config::Session>(std::move(recovered)), true, finishing(later), true));
    return later;
}

Runtime::Operation Runtime::loadOp(std::shared_ptr<const config::Session> target, bool record, Done done,
                                   bool recovered) {
    return Operation{[this, target, record, done, recovered]() {
        if (!settled()) return false;
        if (target->engine.inputCount() != inputs_ || target->engine.outputCount() != outputs_) {
            done(Error{printable(target->path, kPathChars) + " has " + std::to_string(target->engine.inputCount()) +
                       " inputs and " + std::to_string(target->engine.outputCount()) + " outputs, this session " +
                       std::to_string(inputs_) + " and " + std::to_string(outputs_) +
                       "; the JACK ports stay as they are: open it with `rackterm " + printable(target->path, kPathChars) + "`"});
            return true;
        }
        std::vector<Node> fresh;
        bool adapted = false;
        for (config::NodeSpec spec : target->nodes) {
            // A rebuild since may lack an id; plugin state comes from beside the session loaded.
            auto proc = loadProcessor(spec, target->path, !record || recovered, &adapted, true);
            if (!proc) {
                done(Error{proc.error()});
                return true;
            }
            fresh.push_back(Node{std::move(spec), std::move(proc.value()), {}});
        }
        std::vector<const Node*> list;
        for (const Node& n : fresh) list.push_back(&n);
        if (auto planned = plan(list, target->connections, target->connections.empty()); !planned) {
            const std::string where = printable(target->path, kPathChars);
            done(Error{planned.error().rfind(where, 0) == 0 ? planned.error() : where + ": " + planned.error()});
            return true;
        }
        for (const auto& n : fresh)
            if (!n.proc.note.empty()) notes_.push_back(n.proc.note);
        for (const auto& n : nodes_) events_.forget(n.spec.id);
        Edit e;
        e.kind = Edit::Kind::Load;
        e.sessionBefore = std::make_shared<const config::Session>(document());
        e.sessionAfter = target;
        e.unsavedBefore = extraDirty_;
        if (recovered) e.label = "recover";
        doc_ = *target;
        doc_.nodes.clear();
        nodes_ = std::move(fresh);
        ++structureSerial_;
        publishRack();  // the previous rack plays until the audio thread takes this one
        extraDirty_ = adapted;
        if (record) {
            journal_.record(std::move(e), nowSeconds());
            if (!recovered) journal_.markSaved(doc_.path);  // the document is what the file holds
        }
        if (recovered)
            done("recovered the unsaved edits (" + std::to_string(nodes_.size()) +
                 " nodes); `save` keeps them, `undo` goes back to the file");
        else
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
                    *inner = undo ? removeOp(e.node, false, finish, e.connectionsBefore)
                                  : addOp(e.spec, e.position, "", false, false, finish, e.connectionsAfter);
                    break;
                case Edit::Kind::RemoveNode:
                    *inner = undo ? addOp(e.spec, e.position, "", false, false, finish, e.connectionsBefore)
                                  : removeOp(e.node, false, finish, e.connectionsAfter);
                    break;
                case Edit::Kind::Load: *inner = loadOp(undo ? e.sessionBefore : e.sessionAfter, false, finish); break;
                case Edit::Kind::Connections:
                    *inner = graphOp(undo ? e.connectionsBefore : e.connectionsAfter, e.label, false, finish);
                    break;
            }
        }
        return (**inner).step();
    }};
}

// ---- the rest ---------------------------------------------------------

void Runtime::setDeactivateReason(const Processor& proc, uint32_t reason) {
    for (loader::Instance* i : instancesOf(proc)) i->setDeactivateReason(reason);
}

const char* Runtime::nodeState(size_t n) const {
    const Node& node = nodes_[n];
    if (node.unloaded) return "unloaded";
    if (node.quiescing) return "quiescing";
    return "active";
}

std::string Runtime::whyUnloaded(size_t n) const {
    if (!nodes_[n].unloaded) return {};
    const std::string& id = nodes_[n].spec.id;
    return "node '" + id + "' is unloaded (its package was uninstalled); install it again, then `reload " + id +
           "` and `bypass " + id + " off`";
}

std::string Runtime::nodePackage(size_t n) const { return nodes_[n].unloaded ? std::string() : nodes_[n].proc.package; }

Later<std::string> Runtime::upgradePackage(const std::string& id) {
    std::vector<std::pair<std::string, Later<SwapReport>>> swaps;
    std::string version = installedVersion(id);
    for (const Node& node : nodes_) {
        if (packageIdOf(node.spec.processor) != id) continue;
        auto path = resolvePackageComponent(node.spec.processor);
        if (!path) return Later<std::string>::done(Error{"node '" + node.spec.id + "': " + path.error()});
        swaps.emplace_back(node.spec.id, swapNode(node.spec.id, path.value()));
    }
    if (swaps.empty()) return Later<std::string>::done(noNodeRuns(id));
    Later<std::string> later;
    waits_.push_back([this, swaps, later, id, version]() {
        for (const auto& s : swaps)
            if (!s.second.ready()) return false;
        std::string text = "upgraded " + id + " to " + version + ":";
        bool allOk = true;
        for (size_t i = 0; i < swaps.size(); ++i) {
            const auto& r = swaps[i].second.result();
            allOk = allOk && r.ok();
            text += (i ? ";" : "") + std::string(" ") + swaps[i].first + " " +
                    (r ? "swapped, " + r.value().summary() : "not swapped, the old version keeps playing: " + r.error());
        }
        notes_.push_back(text);  // the session's log says what the upgrade did
        later.finish(allOk ? Result<std::string>(text) : Result<std::string>(Error{text}));
        return true;
    });
    return later;
}

Later<std::string> Runtime::unloadPackage(const std::string& id) {
    std::vector<std::string> ids;
    for (size_t n = 0; n < nodes_.size(); ++n) {
        if (packageIdOf(nodes_[n].spec.processor) != id || nodes_[n].unloaded) continue;
        ids.push_back(nodes_[n].spec.id);
        nodes_[n].quiescing = true;
        playBypass(n, true);  // fades to dry: no process() after it settles
    }
    if (ids.empty()) return Later<std::string>::done(noNodeRuns(id));
    Later<std::string> later;
    auto republished = std::make_shared<bool>(false);
    submit(Operation{[this, ids, later, id, republished]() {
        if (!settled()) return false;
        if (!*republished) {
            // A rack in which the nodes start fully bypassed: once the audio
            // thread took it, nothing calls their process() again, even when
            // the bypass ramp's wait gave up (a busy or stalled audio thread
            // takes a pending rack before anything else).
            *republished = true;
            publishRack();
            if (!offline_) return false;
        }
        // A running audio thread must have taken that rack (settled() gives up
        // after a while); a stalled one takes it before anything else when it runs again.
        if (!offline_ && engine_->blocks() > 0 && !audioStalled() && engine_->rackPending()) return false;
        std::string text = "unloaded " + id + ":";
        for (const std::string& nodeId : ids) {
            auto n = findNode(nodeId);
            if (!n) continue;
            Node& node = nodes_[n.value()];
            node.quiescing = false;
            node.unloaded = true;
            std::string hooks;
            for (loader::Instance* i : instancesOf(node.proc))
                if (auto r = i->deactivate(RACKTERM_DEACTIVATE_UNINSTALL); !r) hooks = "; " + r.error();
            text += " " + nodeId + " (bypassed" + hooks + ")";
        }
        notes_.push_back(text);
        later.finish(text);
        return true;
    }});
    return later;
}

Later<SwapReport> Runtime::swapNode(const std::string& id, const std::string& path, bool sameModule) {
    Later<SwapReport> later;
    auto crossfading = std::make_shared<bool>(false);
    auto trial = std::make_shared<std::unique_ptr<TrialRun>>();
    submit(Operation{[this, id, path, sameModule, later, crossfading, trial]() {
        if (*crossfading) {
            if (!settled()) return false;
            if (auto f = findNode(id)) nodes_[f.value()].quiescing = false;
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
        const rackterm_processor_v2& od = *node.proc.descriptor;
        const std::vector<float> current = values(n);
        // The new build runs its trial first, in rackterm-sandbox: nothing of it is heard before it passes.
        std::vector<std::pair<std::string, float>> byId;
        for (uint32_t i = 0; i < od.param_count; ++i) byId.emplace_back(od.params[i].id, current[i]);
        const auto verdict = trialStep(*trial, path, byId);
        if (!verdict) return false;
        if (!verdict->empty()) {
            later.finish(Error{"the new build failed its " + *verdict});
            return true;
        }
        auto module = loader::loadModule(path, sampleRate_);
        if (!module) {
            later.finish(Error{module.error()});
            return true;
        }
        std::shared_ptr<void> previous = node.proc.module;
        const std::string previousPath = node.proc.path, previousPackage = node.proc.package;
        if (!installBuild(n, module.value(), path, later)) return true;
        // The previous build stays loaded for kWatchSeconds: the new one goes back to it if it misbehaves.
        std::erase_if(watches_, [&](const Watch& w) { return w.id == id; });
        watches_.push_back(Watch{id, module.value(), previous, previousPath, previousPackage, nowSeconds() + kWatchSeconds});
        if (offline_) return true;
        *crossfading = true;
        nodes_[n].quiescing = true;  // the old instance fades out
        return false;
    }});
    return later;
}

bool Runtime::installBuild(size_t n, const std::shared_ptr<void>& moduleHandle, const std::string& path,
                           const Later<SwapReport>& later) {
    Node& node = nodes_[n];
    const auto module = std::static_pointer_cast<loader::Module>(moduleHandle);
    const rackterm_processor_v2& od = *node.proc.descriptor;
    const std::vector<float> current = values(n);
    auto made = instantiate(moduleHandle, node.spec, path);
    if (!made) {
        later.finish(Error{made.error()});
        return false;
    }
    const rackterm_processor_v2& nd = *made.value().descriptor;
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
    Processor next = std::move(made.value());
    carryPluginState(node.proc, next);  // a hot swap of the same plugin keeps its state (a sampler's file)
    const bool sameChannels = nd.input_channels == od.input_channels && nd.output_channels == od.output_channels;
    if (!sameChannels) {  // the graph must still fit the new build's channels
        Node probe{node.spec, next, {}};
        if (auto planned = planDocument(doc_.connections, &probe, n, n); !planned) {
            later.finish(Error{"the new build has " + std::to_string(nd.input_channels) + " in / " +
                               std::to_string(nd.output_channels) + " out channels and does not fit: " +
                               planned.error() + "; the old build keeps playing"});
            return false;
        }
    }
    if (!sameParams(params, node.spec.params)) extraDirty_ = true;
    node.spec.params = std::move(params);
    setDeactivateReason(node.proc, RACKTERM_DEACTIVATE_RELOAD);
    next.package = packageLabel(node.spec.processor);
    node.unloaded = false;
    Fade fade;
    fade.node = n;
    if (sameChannels) fade.from = node.proc;  // else the new build starts at once: nothing to crossfade channel by channel
    node.proc = std::move(next);
    publishRack(fade);
    later.finish(std::move(m.report));
    return true;
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
        // LV2 plugins with a state of their own: beside the file, NAME.state/NODE/.
        std::string states;
        std::set<std::string> kept;
        for (const Node& node : nodes_) {
            if (!node.proc.module || !node.proc.owner) continue;
            const auto& inst = *static_cast<const loader::Instance*>(node.proc.owner.get());
            if (!loader::hasPluginState(inst)) continue;
            const std::string dir = pluginStateDir(target, node.spec.id);
            if (auto r = loader::savePluginState(inst, dir); !r) {
                later.finish(Error{"saved " + target + ", but not the state of node '" + node.spec.id + "' in " +
                                   printable(dir, kPathChars) + ": " + r.error()});
                return true;
            }
            states += (states.empty() ? "" : ", ") + node.spec.id;
        }
        for (const Node& node : nodes_) kept.insert(node.spec.id);  // an isolated node's folder stays too
        pruneStateFolders(target, kept);
        later.finish("saved " + target + (states.empty() ? "" : " (plugin state of " + states + " in " +
                                                                      std::filesystem::path(pluginStateDir(target, "")).parent_path().filename().string() + "/)"));
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
    return s;
}

std::vector<std::string> Runtime::takeEvents(double now) {
    std::vector<std::string> out = std::move(notes_);
    notes_.clear();
    for (auto& line : events_.take(*engine_, now)) out.push_back(std::move(line));
    return out;
}

}  // namespace rackterm::app
