#include <rackterm/engine/rt/Rack.hpp>

#include <rackterm/common/BlockClock.hpp>

#include <rackterm/engine/rt/BlockStats.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

namespace rackterm::engine {

namespace {
std::atomic<uint64_t> nextSerial{1};

inline uint64_t nowNs() noexcept {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count());
}
}  // namespace

namespace {
/// Buffers before the pool: silence, scratch for delay reads, kMaxChannels for a crossfade's old output.
constexpr uint32_t kSilence = 0, kScratch = 1, kCrossfade = 2, kFirstPool = 2 + kMaxChannels;

GraphPlan chainPlan(const std::vector<NodeSetup>& nodes) {
    GraphSpec g;
    for (const NodeSetup& s : nodes)
        g.nodes.push_back({s.id, s.descriptor ? s.descriptor->input_channels : 2u,
                           s.descriptor ? s.descriptor->output_channels : 2u, 0});
    g.edges = GraphSpec::chain(nodes.size());
    auto plan = planGraph(g);
    return plan ? std::move(plan.value()) : GraphPlan{};
}
}  // namespace

Rack::Rack(std::vector<NodeSetup> nodes, uint32_t maxBlockFrames, double sampleRateHz, uint64_t generation)
    : Rack([&] {
          nodes.resize(std::min<size_t>(nodes.size(), kMaxNodes));
          return std::move(nodes);
      }(),
           GraphPlan{}, maxBlockFrames, sampleRateHz, generation) {}

Rack::Rack(std::vector<NodeSetup> nodes, GraphPlan plan, uint32_t maxBlockFrames, double sampleRateHz,
           uint64_t generation)
    : maxBlockFrames_(std::max<uint32_t>(1, maxBlockFrames)),
      sampleRate_(sampleRateHz),
      bypassRampFrames_(std::max<uint32_t>(1, static_cast<uint32_t>(sampleRateHz * 0.005))),
      serial_(nextSerial.fetch_add(1)) {
    nodes.resize(std::min<size_t>(nodes.size(), kMaxNodes));
    auto fits = [&](const GraphPlan& g) {
        return g.steps.size() == nodes.size() && g.copies.size() == nodes.size() &&
               g.mixes.size() == static_cast<size_t>(g.firstOutputMix) + g.outputs;
    };
    if (!fits(plan)) plan = chainPlan(nodes);
    if (!fits(plan)) {  // the nodes do not chain: an empty rack (input to output)
        nodes.clear();
        plan = chainPlan(nodes);
    }
    plan_ = std::move(plan);
    nodes_ = NodeArray(nodes.size());
    uint32_t offset = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
        NodeSetup& s = nodes[i];
        Node& n = nodes_[i];
        const uint32_t count = s.descriptor->param_count;
        n.id = s.id;
        n.descriptor = s.descriptor;
        n.copies = plan_.copies[i];
        n.inWidth = plan_.inWidth[i];
        n.outWidth = plan_.outWidth[i];
        n.instance[0] = s.instance;
        for (size_t k = 0; k < s.extraInstances.size() && k + 1 < kMaxChannels; ++k) n.instance[k + 1] = s.extraInstances[k];
        n.available = static_cast<uint32_t>(std::min<size_t>(n.copies, 1 + s.extraInstances.size()));
        for (size_t k = 0; k < s.faults.size() && k < n.available; ++k)
            if (s.faults[k]) n.fault[n.faults++] = s.faults[k];
        n.paramOffset = offset;
        n.paramCount = count;
        s.values.resize(count);
        control_.values.insert(control_.values.end(), s.values.begin(), s.values.end());
        control_.nodeGeneration.push_back(generation);
        control_.bypass.push_back(s.bypass ? 1 : 0);
        n.bypassMix = (s.bypass || s.fadeIn) ? 1.0f : 0.0f;
        n.bypassSettled.store(!s.fadeIn || s.bypass);
        if (s.fadeFromInstance && s.fadeFrames > 0 && s.fadeFromExtraInstances.size() + 1 >= n.available) {
            n.oldDescriptor = s.fadeFromDescriptor;
            n.oldInstance[0] = s.fadeFromInstance;
            for (size_t k = 0; k + 1 < n.available; ++k) n.oldInstance[k + 1] = s.fadeFromExtraInstances[k];
            n.fadeLength = s.fadeFrames;
            n.fadeDone.store(false);
            owners_.push_back(std::move(s.fadeFromOwner));
        }
        owners_.push_back(std::move(s.owner));
        offset += count;
    }
    control_.generation = generation;
    // Channel buffers sit a stride apart that is not a multiple of 4 KiB, so a
    // node's loads and stores never alias in the store buffer (4K aliasing).
    stride_ = (maxBlockFrames_ + 15u) / 16u * 16u + 16u;
    const size_t count = kFirstPool + plan_.pooledBuffers;
    buffers_.assign(static_cast<size_t>(stride_) * count + 16, 0.0f);
    base_ = buffers_.data() + (16 - (reinterpret_cast<uintptr_t>(buffers_.data()) / sizeof(float)) % 16) % 16;
    pointers_.assign(plan_.firstPooled() + plan_.pooledBuffers, buffer(kSilence));
    for (uint32_t k = 0; k < plan_.pooledBuffers; ++k) pointers_[plan_.firstPooled() + k] = buffer(kFirstPool + k);
    for (size_t e = 0; e < plan_.edgeGain.size(); ++e) {
        EdgeGain g;
        g.current = plan_.edgeStartGain[e];
        g.target = plan_.edgeGain[e];
        g.step = std::fabs(g.target - g.current) / static_cast<float>(bypassRampFrames_);
        if (g.current != g.target) edgesSettled_.store(false);
        edges_.push_back(g);
    }
    for (uint32_t d : plan_.delayFrames) {
        DelayLine line;
        line.size = d + maxBlockFrames_;
        line.data = std::make_unique<float[]>(line.size);  // zeroed
        line.delay = d;
        delays_.push_back(std::move(line));
    }
    shared_.reset(control_);
    shared_.publish();  // the first block sees these values
}

void Rack::planHandOver(const Rack& previous) {
    delayHandOver_.clear();
    feedbackHandOver_.clear();
    handOverFrom_ = 0;
    // A new sample rate or block size (a JACK server back with other settings): nothing carries over.
    if (previous.maxBlockFrames_ != maxBlockFrames_ || previous.sampleRate_ != sampleRate_) return;
    for (uint32_t i = 0; i < plan_.delayKey.size(); ++i)
        for (uint32_t j = 0; j < previous.plan_.delayKey.size(); ++j)
            if (plan_.delayKey[i] == previous.plan_.delayKey[j] && delays_[i].size == previous.delays_[j].size) {
                delayHandOver_.emplace_back(i, j);
                break;
            }
    for (uint32_t i = 0; i < plan_.feedbackKey.size(); ++i)
        for (uint32_t j = 0; j < previous.plan_.feedbackKey.size(); ++j)
            if (plan_.feedbackKey[i] == previous.plan_.feedbackKey[j]) {
                feedbackHandOver_.emplace_back(i, j);
                break;
            }
    handOverFrom_ = delayHandOver_.empty() && feedbackHandOver_.empty() ? 0 : previous.serial_;
}

void Rack::handOver(Rack& previous) noexcept {
    if (handOverFrom_ == 0 || previous.serial_ != handOverFrom_) return;
    for (const auto& [mine, theirs] : delayHandOver_) {  // equal sizes: swap the rings, whatever their length
        DelayLine& from = previous.delays_[theirs];
        DelayLine& to = delays_[mine];
        std::swap(to.data, from.data);
        to.write = from.write;
    }
    for (const auto& [mine, theirs] : feedbackHandOver_)
        std::memcpy(pointers_[plan_.feedbackCopies[mine].target],
                    previous.pointers_[previous.plan_.feedbackCopies[theirs].target], maxBlockFrames_ * sizeof(float));
}

Rack::~Rack() {
    nodes_.clear();
    owners_.clear();  // instances and modules go here, on the control thread
}

void Rack::setValue(uint32_t node, uint32_t index, float plain, uint64_t generation) noexcept {
    if (node >= nodes_.size() || index >= nodes_[node].paramCount) return;
    control_.values[nodes_[node].paramOffset + index] = plain;
    control_.nodeGeneration[node] = generation;
    control_.generation = generation;
}

void Rack::setBypass(uint32_t node, bool bypass, uint64_t generation) noexcept {
    if (node >= nodes_.size()) return;
    control_.bypass[node] = bypass ? 1 : 0;
    control_.generation = generation;
}

float Rack::value(uint32_t node, uint32_t index) const noexcept {
    if (node >= nodes_.size() || index >= nodes_[node].paramCount) return 0.0f;
    return control_.values[nodes_[node].paramOffset + index];
}

bool Rack::bypassed(uint32_t node) const noexcept { return node < nodes_.size() && control_.bypass[node] != 0; }

void Rack::publish() noexcept {
    // Vectors have equal sizes, so these copies never allocate.
    ParamFrame& w = shared_.writeBuffer();
    std::copy(control_.values.begin(), control_.values.end(), w.values.begin());
    std::copy(control_.nodeGeneration.begin(), control_.nodeGeneration.end(), w.nodeGeneration.begin());
    std::copy(control_.bypass.begin(), control_.bypass.end(), w.bypass.begin());
    w.generation = control_.generation;
    shared_.publish();
}

void Rack::callProcess(const Node& n, const rackterm_processor_v2* d, rackterm_instance* const* instances,
                       const float* const* in, float* const* out, uint32_t frames) noexcept {
    if (n.copies == 1) {
        d->process(instances[0], in, out, frames);
        return;
    }
    for (uint32_t c = 0; c < n.available; ++c) d->process(instances[c], in + c, out + c, frames);
    for (uint32_t c = n.available; c < n.copies; ++c) std::memset(out[c], 0, frames * sizeof(float));
}

void Rack::crossfade(Node& n, const float* const* in, float* const* out, uint32_t frames) noexcept {
    float* old[kMaxChannels];
    for (uint32_t c = 0; c < n.outWidth; ++c) old[c] = buffer(kCrossfade + c);
    callProcess(n, n.oldDescriptor, n.oldInstance, in, old, frames);
    callProcess(n, n.descriptor, n.instance, in, out, frames);
    // Equal-power: old x cos, new x sin of t * pi/2, t from 0 to 1 over the fade.
    const float step = 1.0f / static_cast<float>(n.fadeLength);
    uint32_t pos = n.fadePosition;
    for (uint32_t f = 0; f < frames; ++f, ++pos) {
        const float t = pos < n.fadeLength ? static_cast<float>(pos) * step : 1.0f;
        const float gNew = std::sin(t * 1.5707963f), gOld = std::cos(t * 1.5707963f);
        for (uint32_t c = 0; c < n.outWidth; ++c) out[c][f] = gNew * out[c][f] + gOld * old[c][f];
    }
    n.fadePosition = std::min(pos, n.fadeLength);
    if (n.fadePosition >= n.fadeLength) n.fadeDone.store(true, std::memory_order_release);
}

void Rack::runMix(const GraphPlan::Mix& m, uint32_t frames) noexcept {
    float* const dst = pointers_[m.target];
    if (m.termCount == 0) {
        std::memset(dst, 0, frames * sizeof(float));
        return;
    }
    for (uint32_t k = 0; k < m.termCount; ++k) {
        const GraphPlan::Term& t = plan_.terms[m.firstTerm + k];
        const float* src = pointers_[t.source];
        if (t.delay != UINT32_MAX) {  // plugin delay compensation: read `delay` frames back
            DelayLine& d = delays_[t.delay];
            float* const out = buffer(kScratch);
            float* const ring = d.data.get();
            uint32_t w = d.write;
            for (uint32_t f = 0; f < frames; ++f) {
                ring[w] = src[f];
                out[f] = ring[w >= d.delay ? w - d.delay : w + d.size - d.delay];
                if (++w == d.size) w = 0;
            }
            d.write = w;
            src = out;
        }
        const bool first = k == 0;
        if (t.edge == UINT32_MAX) {
            if (first) std::memcpy(dst, src, frames * sizeof(float));
            else
                for (uint32_t f = 0; f < frames; ++f) dst[f] += src[f];
            continue;
        }
        const EdgeGain& e = edges_[t.edge];
        if (e.current == e.target) {
            const float g = e.target;
            if (first)
                for (uint32_t f = 0; f < frames; ++f) dst[f] = g * src[f];
            else
                for (uint32_t f = 0; f < frames; ++f) dst[f] += g * src[f];
            continue;
        }
        float g = e.current;  // ramping (connect, disconnect, a new level): every channel of the edge alike
        for (uint32_t f = 0; f < frames; ++f) {
            g = e.target > g ? std::min(e.target, g + e.step) : std::max(e.target, g - e.step);
            dst[f] = first ? g * src[f] : dst[f] + g * src[f];
        }
    }
}

bool Rack::bypassSettled(uint32_t node) const noexcept {
    return node >= nodes_.size() || nodes_[node].bypassSettled.load(std::memory_order_acquire);
}

bool Rack::fadeDone(uint32_t node) const noexcept {
    return node >= nodes_.size() || nodes_[node].fadeDone.load(std::memory_order_acquire);
}

uint64_t Rack::nonFiniteCount(uint32_t node) const noexcept {
    return node < nodes_.size() ? nodes_[node].nonFinite.load(std::memory_order_relaxed) : 0;
}

bool Rack::takeOverBudget(uint32_t node, uint32_t* nanoseconds) noexcept {
    if (node >= nodes_.size() || !nodes_[node].overBudget.exchange(false, std::memory_order_acquire)) return false;
    if (nanoseconds) *nanoseconds = nodes_[node].lateNanoseconds.load(std::memory_order_relaxed);
    return true;
}

uint64_t Rack::process(const float* const* in, float* const* out, uint32_t frames, MeterFrame* meters, bool timed,
                       uint32_t& nonFiniteNode) noexcept {
    if (shared_.consume() || !current_) current_ = &shared_.readBuffer();
    const ParamFrame& p = *current_;
    nonFiniteNode = UINT32_MAX;

    const uint32_t inputs = plan_.inputs, outputs = plan_.outputs;
    float* const silence = buffer(kSilence);
    for (uint32_t c = 0; c < inputs; ++c) pointers_[1 + c] = in && in[c] ? const_cast<float*>(in[c]) : silence;
    for (uint32_t c = 0; c < outputs; ++c) pointers_[1 + inputs + c] = out[c];

    const uint64_t blockStart = nowNs();
    tBlockStartNs = blockStart;  // isolated processors wait against one deadline per block
    const uint64_t period = static_cast<uint64_t>(static_cast<double>(frames) * 1e9 / sampleRate_);
    const bool perNode = timed || diagnose_ > 0;
    uint64_t start = blockStart;
    const float* ins[kMaxChannels];
    float* outs[kMaxChannels];
    for (const GraphPlan::Step& step : plan_.steps) {
        for (uint32_t m = 0; m < step.mixCount; ++m) runMix(plan_.mixes[step.firstMix + m], frames);
        const uint32_t i = step.node;
        Node& n = nodes_[i];
        if (n.appliedGeneration != p.nodeGeneration[i]) {
            for (uint32_t c = 0; c < n.available; ++c)
                n.descriptor->apply_plain_values(n.instance[c], p.values.data() + n.paramOffset, n.paramCount);
            n.appliedGeneration = p.nodeGeneration[i];
        }
        for (uint32_t c = 0; c < n.inWidth; ++c) ins[c] = pointers_[step.in[c]];
        for (uint32_t c = 0; c < n.outWidth; ++c) outs[c] = pointers_[step.out[c]];
        rt::ChannelStats st[2];
        if (!runNode(n, ins, outs, frames, p.bypass[i], meters != nullptr, st) && nonFiniteNode == UINT32_MAX)
            nonFiniteNode = i;
        n.peak[0] = std::max(n.peak[0], st[0].peak);
        n.peak[1] = std::max(n.peak[1], st[1].peak);
        if (meters) {
            for (uint32_t c = 0; c < 2; ++c) {
                meters->nodePeak[i][c] = n.peak[c];
                meters->nodeRms[i][c] = std::sqrt(st[c].meanSquare);
                n.peak[c] = 0.0f;
            }
        }
        if (perNode) {
            const uint64_t now = nowNs(), took = now - start;
            start = now;
            if (meters && timed) meters->nodeNanoseconds[i] = static_cast<float>(took);
            if (diagnose_ > 0) {
                if (took > period && !p.bypass[i]) {
                    n.lateNanoseconds.store(static_cast<uint32_t>(std::min<uint64_t>(took, UINT32_MAX)),
                                            std::memory_order_relaxed);
                    if (++n.lateRun >= kLateBlocks) {
                        n.overBudget.store(true, std::memory_order_release);
                        n.lateRun = 0;  // once taken, the next report needs kLateBlocks more
                    }
                } else {
                    n.lateRun = 0;
                }
            }
        }
    }
    for (uint32_t c = 0; c < outputs; ++c) runMix(plan_.mixes[plan_.firstOutputMix + c], frames);
    // A feedback buffer holds the last maxBlockFrames() frames of its source,
    // so the next block, whatever its length, reads exactly one rack block back.
    for (const GraphPlan::Copy& c : plan_.feedbackCopies) {
        float* const held = pointers_[c.target];
        const uint32_t keep = maxBlockFrames_ - std::min(frames, maxBlockFrames_);
        std::memmove(held, held + (maxBlockFrames_ - keep), keep * sizeof(float));
        std::memcpy(held + keep, pointers_[c.source], (maxBlockFrames_ - keep) * sizeof(float));
    }
    if (!edgesSettled_.load(std::memory_order_relaxed)) {
        bool settled = true;
        for (EdgeGain& e : edges_) {
            const float move = e.step * static_cast<float>(frames);
            float next = e.target > e.current ? std::min(e.target, e.current + move) : std::max(e.target, e.current - move);
            if (next == e.current) next = e.target;  // a step below the float's resolution: arrived
            e.current = next;
            settled = settled && e.current == e.target;
        }
        edgesSettled_.store(settled, std::memory_order_release);
    }
    rt::ChannelStats master[2];  // the master: its peaks every block, its RMS with a meter frame
    rt::measurePair(out[0], out[outputs > 1 ? 1 : 0], frames, meters != nullptr, master);
    for (uint32_t c = 0; c < 2; ++c) {
        masterPeak_[c] = std::max(masterPeak_[c], master[c].peak);
        if (meters) {
            meters->masterPeak[c] = masterPeak_[c];
            meters->masterRms[c] = std::sqrt(master[c].meanSquare);
            masterPeak_[c] = 0.0f;
        }
    }
    if (nowNs() - blockStart > period) diagnose_ = kDiagnoseBlocks;  // find the node that makes it late
    else if (diagnose_ > 0) --diagnose_;
    if (meters) {
        meters->rackSerial = serial_;
        meters->nodeCount = static_cast<uint32_t>(nodes_.size());
        meters->frames = frames;
        meters->timed = timed;
    }
    return p.generation;
}

bool Rack::runNode(Node& n, const float* const* in, float* const* out, uint32_t frames, uint8_t bypass, bool full,
                   rt::ChannelStats* stats) noexcept {
    auto faulted = [&n] {
        bool f = false;
        for (uint32_t k = 0; k < n.faults; ++k) f = f || n.fault[k]->load(std::memory_order_relaxed);
        return f;
    };
    const float target = (bypass || faulted()) ? 1.0f : 0.0f;
    const uint32_t outW = n.outWidth, lastIn = n.inWidth - 1;
    const bool processed = !(n.bypassMix == 1.0f && target == 1.0f && bypass);  // a fully bypassed node plays dry only
    if (n.bypassMix == 1.0f && target == 1.0f) {
        if (!bypass) callProcess(n, n.descriptor, n.instance, in, out, frames);  // a faulted child: it may answer again
        // The dry signal: input channel c to output c (a narrower input repeats its last channel).
        for (uint32_t c = 0; c < outW; ++c) std::memcpy(out[c], in[std::min(c, lastIn)], frames * sizeof(float));
        // Fully bypassed: a swap's crossfade has nothing to fade (the old
        // instance stops here), and the bypass has reached its target.
        if (n.oldInstance[0] && n.fadePosition < n.fadeLength) {
            n.fadePosition = n.fadeLength;
            n.fadeDone.store(true, std::memory_order_release);
        }
        n.bypassSettled.store(true, std::memory_order_release);
    } else {
        if (n.oldInstance[0] && n.fadePosition < n.fadeLength) crossfade(n, in, out, frames);
        else callProcess(n, n.descriptor, n.instance, in, out, frames);
        if (!bypass && faulted()) {
            // An isolated child that missed this very block left silence:
            // the dry signal plays instead (no dropout), and the node fades
            // back to the child's output once it answers in time again.
            for (uint32_t c = 0; c < outW; ++c) std::memcpy(out[c], in[std::min(c, lastIn)], frames * sizeof(float));
            n.bypassMix = 1.0f;
            n.bypassSettled.store(false, std::memory_order_release);
        } else if (n.bypassMix != 0.0f || target != 0.0f) {  // crossfade processed <-> dry
            const float step = 1.0f / static_cast<float>(bypassRampFrames_);
            float m = n.bypassMix;
            for (uint32_t f = 0; f < frames; ++f) {
                m = target > m ? std::min(target, m + step) : std::max(target, m - step);
                for (uint32_t c = 0; c < outW; ++c) out[c][f] += m * (in[std::min(c, lastIn)][f] - out[c][f]);
            }
            n.bypassMix = m;
            n.bypassSettled.store(m == target, std::memory_order_release);
        }
    }
    // One pass per channel gives the NaN/Inf guard and the exact peak; the
    // mean square is added only on the blocks that make a meter frame.
    rt::measurePair(out[0], out[outW > 1 ? 1 : 0], frames, full, stats);
    bool finite = stats[0].finite && stats[1].finite;
    for (uint32_t c = 2; c < outW; ++c) finite = finite && rt::allFinite(out[c], frames);
    if (finite) return true;
    for (uint32_t c = 0; c < outW; ++c) std::memset(out[c], 0, frames * sizeof(float));
    stats[0] = stats[1] = {0.0f, 0.0f, true};
    // Only an instance that ran this block made the NaN/Inf: a bypassed one
    // (maybe deactivated, its package unloaded) is never called.
    if (processed)
        for (uint32_t c = 0; c < n.available; ++c) n.descriptor->reset(n.instance[c]);
    n.nonFinite.fetch_add(1, std::memory_order_relaxed);
    return false;
}

}  // namespace rackterm::engine
