#include <rackterm/engine/rt/Rack.hpp>

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
    nodes_.reserve(nodes.size());
    uint32_t offset = 0;
    for (auto& s : nodes) {
        const uint32_t count = s.descriptor->param_count;
        nodes_.emplace_back(s.id, s.descriptor, s.instance, offset, count);
        s.values.resize(count);
        control_.values.insert(control_.values.end(), s.values.begin(), s.values.end());
        control_.nodeGeneration.push_back(generation);
        control_.bypass.push_back(s.bypass ? 1 : 0);
        nodes_.back().bypassMix = s.bypass ? 1.0f : 0.0f;
        owners_.push_back(std::move(s.owner));
        offset += count;
    }
    control_.generation = generation;
    buffers_.assign(static_cast<size_t>(4) * maxBlockFrames_, 0.0f);
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

uint64_t Rack::nonFiniteCount(uint32_t node) const noexcept {
    return node < nodes_.size() ? nodes_[node].nonFinite.load(std::memory_order_relaxed) : 0;
}

uint64_t Rack::process(const float* const* in, float* const* out, uint32_t frames, BlockStats& stats) noexcept {
    if (shared_.consume() || !current_) current_ = &shared_.readBuffer();
    const ParamFrame& p = *current_;
    stats.nonFiniteNode = UINT32_MAX;

    float* a[2] = {buffers_.data(), buffers_.data() + maxBlockFrames_};
    float* b[2] = {buffers_.data() + 2 * maxBlockFrames_, buffers_.data() + 3 * maxBlockFrames_};
    for (uint32_t c = 0; c < 2; ++c) {
        if (in && in[c]) std::memcpy(a[c], in[c], frames * sizeof(float));
        else std::memset(a[c], 0, frames * sizeof(float));
    }
    for (uint32_t i = 0; i < nodes_.size(); ++i) {
        Node& n = nodes_[i];
        if (n.appliedGeneration != p.nodeGeneration[i]) {
            n.descriptor->apply_plain_values(n.instance, p.values.data() + n.paramOffset, n.paramCount);
            n.appliedGeneration = p.nodeGeneration[i];
        }
        runNode(n, i, a, b, frames, p.bypass[i], stats);
        std::swap(a[0], b[0]);
        std::swap(a[1], b[1]);
    }
    for (uint32_t c = 0; c < 2; ++c) std::memcpy(out[c], a[c], frames * sizeof(float));
    return p.generation;
}

void Rack::runNode(Node& n, uint32_t index, const float* const* in, float* const* out, uint32_t frames,
                   uint8_t bypass, BlockStats& stats) noexcept {
    const uint64_t start = nowNs();
    const float target = bypass ? 1.0f : 0.0f;
    if (n.bypassMix == 1.0f && target == 1.0f) {
        for (uint32_t c = 0; c < 2; ++c) std::memcpy(out[c], in[c], frames * sizeof(float));
    } else {
        n.descriptor->process(n.instance, in, out, frames);
        bool finite = true;
        for (uint32_t c = 0; c < 2; ++c)
            for (uint32_t f = 0; f < frames; ++f) finite &= std::isfinite(out[c][f]);
        if (!finite) {
            for (uint32_t c = 0; c < 2; ++c) std::memset(out[c], 0, frames * sizeof(float));
            n.descriptor->reset(n.instance);
            n.nonFinite.fetch_add(1, std::memory_order_relaxed);
            if (stats.nonFiniteNode == UINT32_MAX) stats.nonFiniteNode = index;
        }
        if (n.bypassMix != 0.0f || target != 0.0f) {  // crossfade processed <-> dry
            const float step = 1.0f / static_cast<float>(bypassRampFrames_);
            float m = n.bypassMix;
            for (uint32_t f = 0; f < frames; ++f) {
                m = target > m ? std::min(target, m + step) : std::max(target, m - step);
                for (uint32_t c = 0; c < 2; ++c) out[c][f] += m * (in[c][f] - out[c][f]);
            }
            n.bypassMix = m;
        }
    }
    for (uint32_t c = 0; c < 2; ++c) {
        float peak = 0.0f, sum = 0.0f;
        for (uint32_t f = 0; f < frames; ++f) {
            const float v = out[c][f];
            peak = std::max(peak, std::fabs(v));
            sum += v * v;
        }
        stats.peak[index][c] = peak;
        stats.meanSquare[index][c] = frames ? sum / static_cast<float>(frames) : 0.0f;
    }
    stats.nanoseconds[index] = static_cast<float>(nowNs() - start);
}

}  // namespace rackterm::engine
