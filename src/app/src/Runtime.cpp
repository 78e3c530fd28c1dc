#include <rackterm/app/Runtime.hpp>

#include <rackterm/app/Catalog.hpp>
#include <rackterm/app/Values.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/Player.hpp>
#include <rackterm/loader/Loader.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <thread>
#include <string_view>

namespace rackterm::app {

namespace {

std::vector<std::string> paramIds(const rackterm_processor_v2& d) {
    std::vector<std::string> ids;
    for (uint32_t i = 0; i < d.param_count; ++i) ids.emplace_back(d.params[i].id);
    return ids;
}

/// The throttle's key for xruns: never a node id (those are [a-z0-9_]).
constexpr const char* kXrunKey = "xrun!";

float toDb(float linear) { return linear > 1e-6f ? 20.0f * std::log10(linear) : -120.0f; }

/// Holds a player instance for the rack's owner list.
struct PlayerOwner {
    explicit PlayerOwner(rackterm_instance* i) : instance(i) {}
    PlayerOwner(const PlayerOwner&) = delete;
    PlayerOwner& operator=(const PlayerOwner&) = delete;
    ~PlayerOwner() { engine::playerDescriptor()->destroy(instance); }
    rackterm_instance* instance;
};

}  // namespace

Runtime::~Runtime() {
    if (recorder_) {
        engine_->setRecorder(nullptr);
        (void)recorder_->stop();
    }
    engine_.reset();  // racks (and with them instances) go first
    nodes_.clear();
}

Result<std::unique_ptr<Runtime>> Runtime::open(config::Session session, double sampleRateHz, uint32_t maxBlockFrames) {
    std::unique_ptr<Runtime> r(new Runtime);
    r->session_ = std::move(session);
    r->sampleRate_ = sampleRateHz;
    r->maxBlockFrames_ = maxBlockFrames;
    r->engine_ = std::make_unique<engine::Engine>();
    if (r->session_.nodes.size() > kMaxNodes)
        return Error{printable(r->session_.path, kPathChars) + ": " + nodeLimitMessage(r->session_.nodes.size())};
    for (const auto& spec : r->session_.nodes)
        if (auto ok = r->loadNode(spec); !ok) return Error{ok.error()};
    r->publishRack(r->initialSetups());
    return r;
}

Result<void> Runtime::loadNode(const config::NodeSpec& spec) {
    auto node = buildNode(spec);
    if (!node) return Error{node.error()};
    if (!node.value().note.empty()) notes_.push_back(node.value().note);
    nodes_.push_back(std::move(node.value()));
    return {};
}

Result<Runtime::Node> Runtime::buildNode(const config::NodeSpec& spec) const {
    Node node{spec.id, nullptr, nullptr, nullptr, {}, {}};
    const std::string& where = spec.processorWhere.str();
    if (spec.processor == "player") {
        const std::string file = resolveAgainst(session_.path, spec.file);
        auto data = engine::decodeFile(file, sampleRate_);
        if (!data) return Error{spec.fileWhere.str() + ": " + data.error()};
        if (data.value()->fileChannels > 2)
            node.note = spec.fileWhere.str() + ": " + printable(file, kPathChars) + " has " +
                        std::to_string(data.value()->fileChannels) + " channels; node '" + spec.id +
                        "' plays channels 1 and 2 (the rack is stereo)";
        auto owner = std::make_shared<PlayerOwner>(engine::createPlayer(data.value(), maxBlockFrames_));
        node.descriptor = engine::playerDescriptor();
        node.instance = owner->instance;
        node.owner = owner;
    } else {
        std::string path;
        if (!spec.path.empty()) {
            path = resolveAgainst(session_.path, spec.path);
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
        node.descriptor = &owned->descriptor();
        node.instance = owned->get();
        node.owner = owned;
        node.path = path;
    }
    for (const auto& p : spec.params) {
        const auto ids = paramIds(*node.descriptor);
        auto it = std::find(ids.begin(), ids.end(), p.id);
        if (it == ids.end())
            return Error{p.where.str() + ": node '" + spec.id + "' (" + node.descriptor->id + ") has no parameter " +
                         quote(p.id) + didYouMean(p.id, ids)};
        const rackterm_param_info& info = node.descriptor->params[it - ids.begin()];
        const float v = static_cast<float>(p.value);
        if (v < info.min || v > info.max)
            return Error{p.where.str() + ": " + spec.id + "." + p.id + " = " + std::to_string(p.value) + " is outside " +
                         formatValue(info, info.min) + " .. " + formatValue(info, info.max)};
    }
    return node;
}

std::vector<engine::NodeSetup> Runtime::initialSetups() const { return setupsFrom(nullptr); }

std::vector<engine::NodeSetup> Runtime::currentSetups() const { return setupsFrom(engine_->rack()); }

std::vector<engine::NodeSetup> Runtime::setupsFrom(const engine::Rack* rack) const {
    std::vector<engine::NodeSetup> setups;
    for (size_t n = 0; n < nodes_.size(); ++n) {
        const Node& node = nodes_[n];
        const config::NodeSpec& spec = session_.nodes[n];
        engine::NodeSetup s;
        s.id = node.id;
        s.descriptor = node.descriptor;
        s.instance = node.instance;
        s.owner = node.owner;
        const auto index = static_cast<uint32_t>(n);
        s.bypass = rack ? rack->bypassed(index) : spec.bypass;
        for (uint32_t i = 0; i < node.descriptor->param_count; ++i)
            s.values.push_back(rack ? rack->value(index, i) : node.descriptor->params[i].default_value);
        if (!rack)
            for (const auto& p : spec.params)
                for (uint32_t i = 0; i < node.descriptor->param_count; ++i)
                    if (p.id == node.descriptor->params[i].id) s.values[i] = static_cast<float>(p.value);
        setups.push_back(std::move(s));
    }
    return setups;
}

void Runtime::publishRack(std::vector<engine::NodeSetup> setups) {
    engine_->publish(std::make_unique<engine::Rack>(std::move(setups), maxBlockFrames_, sampleRate_, engine_->generation()));
    meters_.nodes.resize(nodes_.size(), NodeMeter{});
    holdTime_.resize(nodes_.size() * 2 + 2, 0.0);
}

std::string SwapReport::summary() const {
    std::string s = std::to_string(params) + " parameters (+" + std::to_string(added) + " new, -" +
                    std::to_string(removed) + " removed)";
    for (const auto& c : clamped) s += "; clamped " + c;
    return s;
}

std::string Runtime::modulePath(size_t node) const { return nodes_[node].path; }

Result<SwapReport> Runtime::swapNode(size_t n, const std::string& path) {
    if (nodes_[n].path.empty()) return Error{"node '" + nodes_[n].id + "' is a player; it has no module to swap"};
    // A crossfade still running finishes first (at most the crossfade time),
    // so swaps in quick succession never cut one short.
    for (int waited = 0; fading_ && waited < 2000; ++waited) {
        tick();
        if (fading_) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    auto module = loader::loadModule(path);
    if (!module) return Error{module.error()};
    auto inst = loader::createInstance(module.value(), sampleRate_, maxBlockFrames_);
    if (!inst) return Error{inst.error()};
    std::shared_ptr<loader::Instance> owned = std::move(inst.value());
    const rackterm_processor_v2& nd = owned->descriptor();
    const rackterm_processor_v2& od = *nodes_[n].descriptor;

    std::vector<engine::NodeSetup> setups = currentSetups();
    engine::NodeSetup& s = setups[n];
    SwapReport report;
    report.params = nd.param_count;
    std::vector<float> values(nd.param_count);
    for (uint32_t j = 0; j < nd.param_count; ++j) {
        const rackterm_param_info& info = nd.params[j];
        values[j] = info.default_value;
        bool found = false;
        for (uint32_t i = 0; i < od.param_count && !found; ++i) {
            if (std::string_view(od.params[i].id) != info.id) continue;
            found = true;
            const float old = s.values[i];
            values[j] = std::clamp(old, info.min, info.max);
            if (values[j] != old)
                report.clamped.push_back(std::string(info.id) + ": " + formatValue(info, old) + " -> " + formatValue(info, values[j]));
        }
        if (!found) ++report.added;
    }
    for (uint32_t i = 0; i < od.param_count; ++i) {
        bool kept = false;
        for (uint32_t j = 0; j < nd.param_count && !kept; ++j) kept = std::string_view(od.params[i].id) == nd.params[j].id;
        if (!kept) ++report.removed;
    }
    // The session follows: removed ids go, clamped values are written back.
    auto& params = session_.nodes[n].params;
    const size_t before = params.size();
    std::erase_if(params, [&](const config::ParamSetting& p) {
        for (uint32_t j = 0; j < nd.param_count; ++j)
            if (p.id == nd.params[j].id) return false;
        return true;
    });
    for (auto& p : params)
        for (uint32_t j = 0; j < nd.param_count; ++j)
            if (p.id == nd.params[j].id && p.value != values[j]) {
                p.value = values[j];
                dirty_ = true;
            }
    if (params.size() != before) dirty_ = true;

    s.fadeFromDescriptor = s.descriptor;
    s.fadeFromInstance = s.instance;
    s.fadeFromOwner = s.owner;
    s.fadeFrames = std::max<uint32_t>(1, static_cast<uint32_t>(session_.engine.crossfadeMs.value_or(10.0) * 0.001 * sampleRate_));
    s.descriptor = &nd;
    s.instance = owned->get();
    s.owner = owned;
    s.values = values;
    nodes_[n] = Node{nodes_[n].id, &nd, owned->get(), owned, path, {}};
    publishRack(std::move(setups));
    fading_ = true;
    return report;
}

Result<std::string> Runtime::addNode(const std::string& id, const std::string& processor, size_t position) {
    if (session_.findNode(id) >= 0) return Error{"a node '" + id + "' exists already; pick another id"};
    if (!isNodeId(id)) return Error{"node id " + quote(id) + " " + kNodeIdRule};
    if (nodes_.size() >= kMaxNodes) return Error{"cannot add " + id + ": " + nodeLimitMessage(nodes_.size() + 1)};
    config::NodeSpec spec;
    spec.id = id;
    const bool isPath = processor.find('/') != std::string::npos ||
                        (processor.size() > 3 && processor.substr(processor.size() - 3) == ".so");
    (isPath ? spec.path : spec.processor) = processor;
    spec.processorWhere.file = "add";
    if (processor == "player") return Error{"a player needs a file; add it in the session file"};
    auto node = buildNode(spec);
    if (!node) return Error{node.error()};
    position = std::min(position, nodes_.size());
    std::vector<engine::NodeSetup> setups = currentSetups();
    engine::NodeSetup s;
    s.id = id;
    s.descriptor = node.value().descriptor;
    s.instance = node.value().instance;
    s.owner = node.value().owner;
    s.fadeIn = true;
    for (uint32_t i = 0; i < s.descriptor->param_count; ++i) s.values.push_back(s.descriptor->params[i].default_value);
    setups.insert(setups.begin() + static_cast<long>(position), std::move(s));
    nodes_.insert(nodes_.begin() + static_cast<long>(position), std::move(node.value()));
    session_.nodes.insert(session_.nodes.begin() + static_cast<long>(position), spec);
    meters_.nodes.insert(meters_.nodes.begin() + static_cast<long>(position), NodeMeter{});
    publishRack(std::move(setups));
    dirty_ = true;
    return "added " + id + " (" + nodes_[position].descriptor->id + ") at position " + std::to_string(position + 1);
}

Result<std::string> Runtime::removeNode(size_t n, bool offline) {
    const std::string id = nodes_[n].id;
    throttle_.forget(id);  // a node added later under this id starts afresh
    if (!offline) {
        // Fade it out through its bypass first, so taking it away changes nothing audible.
        const uint64_t gen = setBypass(n, true);
        for (int i = 0; i < 100; ++i) {
            tick();
            if (engine_->appliedGeneration() >= gen && engine_->rack()->bypassSettled(static_cast<uint32_t>(n))) break;
            std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
    }
    std::vector<engine::NodeSetup> setups = currentSetups();
    setups.erase(setups.begin() + static_cast<long>(n));
    nodes_.erase(nodes_.begin() + static_cast<long>(n));
    session_.nodes.erase(session_.nodes.begin() + static_cast<long>(n));
    meters_.nodes.erase(meters_.nodes.begin() + static_cast<long>(n));
    publishRack(std::move(setups));
    dirty_ = true;
    return "removed " + id;
}

Result<std::string> Runtime::loadSession(const std::string& path) {
    auto s = config::loadSession(path);
    if (!s) return Error{s.error()};
    std::vector<Node> fresh;
    const config::Session old = session_;
    session_.path = s->path;  // relative paths of the new session resolve against its own folder
    for (const auto& spec : s->nodes) {
        auto node = buildNode(spec);
        if (!node) {
            session_ = old;
            return Error{node.error()};
        }
        fresh.push_back(std::move(node.value()));
    }
    for (const auto& n : fresh)
        if (!n.note.empty()) notes_.push_back(n.note);
    for (const auto& n : nodes_) throttle_.forget(n.id);
    const std::string name = session_.name;
    session_ = s.value();
    session_.name = name;  // the JACK client and socket keep their name
    nodes_ = std::move(fresh);
    publishRack(initialSetups());  // the previous rack plays until the audio thread takes this one
    meters_.nodes.assign(nodes_.size(), NodeMeter{});
    dirty_ = false;
    return "loaded " + path + " (" + std::to_string(nodes_.size()) + " nodes)";
}

Result<std::string> Runtime::startRecording(const std::string& path) {
    if (recorder_) return Error{"already recording to " + recorder_->path() + "; `record stop` first"};
    auto r = engine::Recorder::start(path, sampleRate_);
    if (!r) return Error{r.error()};
    recorder_ = std::move(r.value());
    engine_->setRecorder(recorder_.get());
    return "recording to " + path;
}

Result<std::string> Runtime::stopRecording(bool offline) {
    if (!recorder_) return Error{"not recording"};
    engine_->setRecorder(nullptr);
    if (!offline) {  // the audio thread may be inside push() for this block: let two blocks pass
        const uint64_t target = engine_->blocks() + 2;
        for (int i = 0; i < 2000 && engine_->blocks() < target; ++i) std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    const std::string path = recorder_->path();
    const uint64_t dropped = recorder_->dropped();
    auto frames = recorder_->stop();
    recorder_.reset();
    if (!frames) return Error{frames.error()};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f s", static_cast<double>(frames.value()) / sampleRate_);
    return "recorded " + path + " (" + buf + (dropped ? ", " + std::to_string(dropped) + " blocks lost" : "") + ")";
}

void Runtime::tick() {
    engine_->collectGarbage();
    if (!fading_) return;
    const engine::Rack* rack = engine_->rack();
    for (uint32_t n = 0; n < rack->nodeCount(); ++n)
        if (!rack->fadeDone(n)) return;
    fading_ = false;
    publishRack(currentSetups());  // without the replaced instances: they are freed with the fading rack
}

float Runtime::value(size_t node, size_t param) const {
    return engine_->rack()->value(static_cast<uint32_t>(node), static_cast<uint32_t>(param));
}

bool Runtime::bypassed(size_t node) const { return engine_->rack()->bypassed(static_cast<uint32_t>(node)); }

Result<size_t> Runtime::findNode(std::string_view id) const {
    for (size_t i = 0; i < nodes_.size(); ++i)
        if (nodes_[i].id == id) return i;
    return Error{"no node " + quote(id) + didYouMean(id, session_.nodeIds()) + "; `list nodes` shows them"};
}

Result<std::pair<size_t, size_t>> Runtime::findParam(std::string_view target) const {
    const size_t dot = target.find('.');
    if (dot == std::string_view::npos)
        return Error{quote(target) + " is not NODE.PARAM, e.g. gain.gain_db"};
    auto node = findNode(target.substr(0, dot));
    if (!node) return Error{node.error()};
    const std::string_view pid = target.substr(dot + 1);
    const auto ids = paramIds(*nodes_[node.value()].descriptor);
    for (size_t i = 0; i < ids.size(); ++i)
        if (ids[i] == pid) return std::make_pair(node.value(), i);
    return Error{"node '" + nodes_[node.value()].id + "' has no parameter " + quote(pid) +
                 didYouMean(pid, ids) + "; `list params " + nodes_[node.value()].id + "` shows them"};
}

Result<uint64_t> Runtime::setValue(size_t node, size_t param, float plain) {
    const rackterm_param_info& info = nodes_[node].descriptor->params[param];
    if (plain == 0.0f) plain = 0.0f;  // -0 is 0
    if (!std::isfinite(plain) || plain < info.min || plain > info.max)
        return Error{std::string(info.id) + " = " + std::to_string(plain) + " is outside " + formatValue(info, info.min) +
                     " .. " + formatValue(info, info.max)};
    auto& params = session_.nodes[node].params;
    auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.id == info.id; });
    if (it == params.end()) params.push_back({info.id, plain, {}});
    else it->value = plain;
    dirty_ = true;
    return engine_->setValue(static_cast<uint32_t>(node), static_cast<uint32_t>(param), plain);
}

uint64_t Runtime::setBypass(size_t node, bool bypass) {
    if (session_.nodes[node].bypass != bypass) dirty_ = true;
    session_.nodes[node].bypass = bypass;
    return engine_->setBypass(static_cast<uint32_t>(node), bypass);
}

Result<std::string> Runtime::save(const std::string& path) {
    const std::string target = path.empty() ? session_.path : path;
    if (target.empty()) return Error{"this session has no file yet; give one: save FILE.toml"};
    auto written = config::saveSession(session_, target);
    if (!written) return Error{written.error()};
    if (path.empty() || path == session_.path) {
        dirty_ = false;
        session_.sourceText = std::move(written.value());  // the next save edits what is on disk now
    }
    return "saved " + target;
}

void Runtime::updateMeters(double now) {
    engine::MeterFrame f;
    const double dt = lastMeterTime_ > 0 ? std::min(now - lastMeterTime_, 1.0) : 0.0;
    lastMeterTime_ = now;
    const bool fresh = engine_->latestMeters(f) && engine_->rack() && f.rackSerial == engine_->rack()->serial();
    const float decay = static_cast<float>(20.0 * dt);                  // peak falls 20 dB/s
    const float rmsCoeff = static_cast<float>(1.0 - std::exp(-dt / 0.3));  // 300 ms RMS ballistics
    auto apply = [&](NodeMeter& m, const float* peak, const float* rms, size_t holdIndex) {
        for (int c = 0; c < 2; ++c) {
            const float p = fresh ? toDb(peak[c]) : -120.0f;
            m.peakDb[c] = std::max(p, m.peakDb[c] - decay);
            const float r = fresh ? toDb(rms[c]) : -120.0f;
            m.rmsDb[c] += (r - m.rmsDb[c]) * rmsCoeff;
            if (p >= m.holdDb[c] || now - holdTime_[holdIndex + static_cast<size_t>(c)] > 2.0) {
                m.holdDb[c] = p;
                holdTime_[holdIndex + static_cast<size_t>(c)] = now;
            }
        }
    };
    const float zeros[2] = {0, 0};
    const double period = f.frames ? f.frames / sampleRate_ * 1e9 : 1.0;
    for (size_t n = 0; n < meters_.nodes.size(); ++n) {
        apply(meters_.nodes[n], fresh ? f.nodePeak[n] : zeros, fresh ? f.nodeRms[n] : zeros, 2 + 2 * n);
        if (fresh && f.timed) meters_.nodes[n].cpuShare = static_cast<float>(f.nodeNanoseconds[n] / period);
    }
    apply(meters_.master, fresh ? f.masterPeak : zeros, fresh ? f.masterRms : zeros, 0);
    if (fresh && f.timed) meters_.dspLoad = static_cast<float>(f.blockNanoseconds / period);
}

std::vector<std::string> Runtime::takeEvents(double now) {
    std::vector<std::string> out = std::move(notes_);
    notes_.clear();
    auto& ev = engine_->events();
    if (uint64_t x = ev.xruns.load(); x != seenXruns_) {
        throttle_.add(kXrunKey, x - seenXruns_);
        seenXruns_ = x;
    }
    if (const engine::Rack* rack = engine_->rack()) {
        if (rack->serial() != seenRackSerial_) {  // a new rack counts from 0
            seenRackSerial_ = rack->serial();
            seenNonFinite_.assign(rack->nodeCount(), 0);
        }
        for (uint32_t n = 0; n < rack->nodeCount() && n < seenNonFinite_.size(); ++n) {
            const uint64_t count = rack->nonFiniteCount(n);
            if (count > seenNonFinite_[n]) throttle_.add(rack->nodeId(n), count - seenNonFinite_[n]);
            seenNonFinite_[n] = count;
        }
    }
    char seconds[32];
    for (const auto& r : throttle_.due(now)) {
        std::snprintf(seconds, sizeof seconds, "%.1f s", r.seconds);
        if (r.key == kXrunKey)
            out.push_back("xrun: " + std::to_string(r.count) + (r.first ? " new" : " more in the last " + std::string(seconds)) +
                          ", " + std::to_string(seenXruns_) + " in all");
        else if (r.first)
            out.push_back("node '" + r.key + "' produced NaN/Inf: its output is muted and it is reset (" +
                          std::to_string(r.count) + (r.count == 1 ? " block)" : " blocks)"));
        else
            out.push_back("node '" + r.key + "' produced NaN/Inf again in " + std::to_string(r.count) +
                          (r.count == 1 ? " block" : " blocks") + " in the last " + seconds + " (muted)");
    }
    return out;
}

}  // namespace rackterm::app
