#include <rackterm/engine/rt/Rack.hpp>

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

Rack::Rack(std::vector<NodeSetup> nodes, uint32_t maxBlockFrames, double sampleRateHz, uint64_t generation)
    : maxBlockFrames_(std::max<uint32_t>(1, maxBlockFrames)),
      sampleRate_(sampleRateHz),
      bypassRampFrames_(std::max<uint32_t>(1, static_cast<uint32_t>(sampleRateHz * 0.005))),
      serial_(nextSerial.fetch_add(1)) {
    nodes.resize(std::min<size_t>(nodes.size(), kMaxNodes));
    nodes_ = NodeArray(nodes.size());
    uint32_t offset = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
        NodeSetup& s = nodes[i];
        Node& n = nodes_[i];
        const uint32_t count = s.descriptor->param_count;
        n.id = s.id;
        n.descriptor = s.descriptor;
        n.instance = s.instance;
        n.paramOffset = offset;
        n.paramCount = count;
        s.values.resize(count);
        control_.values.insert(control_.values.end(), s.values.begin(), s.values.end());
        control_.nodeGeneration.push_back(generation);
        control_.bypass.push_back(s.bypass ? 1 : 0);
        n.bypassMix = (s.bypass || s.fadeIn) ? 1.0f : 0.0f;
        n.bypassSettled.store(!s.fadeIn || s.bypass);
        if (s.fadeFromInstance && s.fadeFrames > 0) {
            n.oldDescriptor = s.fadeFromDescriptor;
            n.oldInstance = s.fadeFromInstance;
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
    buffers_.assign(static_cast<size_t>(stride_) * 8 + 16, 0.0f);
    base_ = buffers_.data() + (16 - (reinterpret_cast<uintptr_t>(buffers_.data()) / sizeof(float)) % 16) % 16;
    shared_.reset(control_);
    shared_.publish();  // the first block sees these values
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

void Rack::crossfade(Node& n, const float* const* in, float* const* out, uint32_t frames) noexcept {
    float* const base = base_;
    float* old[2] = {base + 6 * stride_, base + 7 * stride_};
    n.oldDescriptor->process(n.oldInstance, in, old, frames);
    n.descriptor->process(n.instance, in, out, frames);
    // Equal-power: old x cos, new x sin of t * pi/2, t from 0 to 1 over the fade.
    const float step = 1.0f / static_cast<float>(n.fadeLength);
    uint32_t pos = n.fadePosition;
    for (uint32_t f = 0; f < frames; ++f, ++pos) {
        const float t = pos < n.fadeLength ? static_cast<float>(pos) * step : 1.0f;
        const float gNew = std::sin(t * 1.5707963f), gOld = std::cos(t * 1.5707963f);
        for (uint32_t c = 0; c < 2; ++c) out[c][f] = gNew * out[c][f] + gOld * old[c][f];
    }
    n.fadePosition = std::min(pos, n.fadeLength);
    if (n.fadePosition >= n.fadeLength) n.fadeDone.store(true, std::memory_order_release);
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

uint64_t Rack::process(const float* const* in, float* const* out, uint32_t frames, MeterFrame* meters, bool timed,
                       uint32_t& nonFiniteNode) noexcept {
    if (shared_.consume() || !current_) current_ = &shared_.readBuffer();
    const ParamFrame& p = *current_;
    nonFiniteNode = UINT32_MAX;

    float* const base = base_;
    float* ping[2] = {base, base + stride_};
    float* pong[2] = {base + 2 * stride_, base + 3 * stride_};
    const float* silence = base + 4 * stride_;
    const float* src[2] = {in && in[0] ? in[0] : silence, in && in[1] ? in[1] : silence};
    const uint32_t count = static_cast<uint32_t>(nodes_.size());
    if (count == 0)
        for (uint32_t c = 0; c < 2; ++c) std::memcpy(out[c], src[c], frames * sizeof(float));

    uint64_t start = timed ? nowNs() : 0;
    for (uint32_t i = 0; i < count; ++i) {
        Node& n = nodes_[i];
        if (n.appliedGeneration != p.nodeGeneration[i]) {
            n.descriptor->apply_plain_values(n.instance, p.values.data() + n.paramOffset, n.paramCount);
            n.appliedGeneration = p.nodeGeneration[i];
        }
        float* const* dst = (i + 1 == count) ? out : (i % 2 == 0 ? ping : pong);
        rt::ChannelStats st[2];
        if (!runNode(n, src, dst, frames, p.bypass[i], meters ? st : nullptr) && nonFiniteNode == UINT32_MAX)
            nonFiniteNode = i;
        if (meters) {
            for (uint32_t c = 0; c < 2; ++c) {
                meters->nodePeak[i][c] = st[c].peak;
                meters->nodeRms[i][c] = std::sqrt(st[c].meanSquare);
            }
            if (timed) {
                const uint64_t now = nowNs();
                meters->nodeNanoseconds[i] = static_cast<float>(now - start);
                start = now;
            }
        }
        src[0] = dst[0];
        src[1] = dst[1];
    }
    if (meters) {
        meters->rackSerial = serial_;
        meters->nodeCount = count;
        meters->frames = frames;
        meters->timed = timed;
        for (uint32_t c = 0; c < 2; ++c) {
            if (count) {  // the last node wrote `out`: its meters are the master's
                meters->masterPeak[c] = meters->nodePeak[count - 1][c];
                meters->masterRms[c] = meters->nodeRms[count - 1][c];
            } else {
                const rt::ChannelStats st = rt::measure(out[c], frames);  // no nodes: measure the pass-through
                meters->masterPeak[c] = st.peak;
                meters->masterRms[c] = std::sqrt(st.meanSquare);
            }
        }
    }
    return p.generation;
}

bool Rack::runNode(Node& n, const float* const* in, float* const* out, uint32_t frames, uint8_t bypass,
                   rt::ChannelStats* stats) noexcept {
    const float target = bypass ? 1.0f : 0.0f;
    if (n.bypassMix == 1.0f && target == 1.0f) {
        for (uint32_t c = 0; c < 2; ++c) std::memcpy(out[c], in[c], frames * sizeof(float));
        // Fully bypassed: a swap's crossfade has nothing to fade (the old
        // instance stops here), and the bypass has reached its target.
        if (n.oldInstance && n.fadePosition < n.fadeLength) {
            n.fadePosition = n.fadeLength;
            n.fadeDone.store(true, std::memory_order_release);
        }
        n.bypassSettled.store(true, std::memory_order_release);
    } else {
        if (n.oldInstance && n.fadePosition < n.fadeLength) crossfade(n, in, out, frames);
        else n.descriptor->process(n.instance, in, out, frames);
        if (n.bypassMix != 0.0f || target != 0.0f) {  // crossfade processed <-> dry
            const float step = 1.0f / static_cast<float>(bypassRampFrames_);
            float m = n.bypassMix;
            for (uint32_t f = 0; f < frames; ++f) {
                m = target > m ? std::min(target, m + step) : std::max(target, m - step);
                for (uint32_t c = 0; c < 2; ++c) out[c][f] += m * (in[c][f] - out[c][f]);
            }
            n.bypassMix = m;
            n.bypassSettled.store(m == target, std::memory_order_release);
        }
    }
    // One pass per channel gives the meters and the NaN/Inf guard; without
    // meters, a cheaper pass gives the guard alone.
    if (stats) {
        stats[0] = rt::measure(out[0], frames);
        stats[1] = rt::measure(out[1], frames);
        if (stats[0].finite && stats[1].finite) return true;
    } else if (rt::allFinite(out[0], frames) && rt::allFinite(out[1], frames)) {
        return true;
    }
    for (uint32_t c = 0; c < 2; ++c) {
        std::memset(out[c], 0, frames * sizeof(float));
        if (stats) stats[c] = {0.0f, 0.0f, true};
    }
    n.descriptor->reset(n.instance);
    n.nonFinite.fetch_add(1, std::memory_order_relaxed);
    return false;
}

}  // namespace rackterm::engine
