#include <rackterm/engine/rt/Engine.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace rackterm::engine {

void flushDenormals() noexcept {
#if defined(__SSE__) || defined(__x86_64__)
    _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ (bit 15) | DAZ (bit 6)
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ __volatile__("msr fpcr, %0" ::"r"(fpcr | (1ull << 24)));
#endif
}

Engine::Engine() : stats_(std::make_unique<Rack::BlockStats>()) {}

Engine::~Engine() {
    collectGarbage();
    delete pending_.exchange(nullptr);
    delete active_;
}

void Engine::publish(std::unique_ptr<Rack> rack) {
    collectGarbage();
    newest_ = rack.get();
    delete pending_.exchange(rack.release(), std::memory_order_acq_rel);  // never taken: ours to free
}

uint64_t Engine::setValue(uint32_t node, uint32_t index, float plain) {
    if (!newest_) return generation_;
    newest_->setValue(node, index, plain, ++generation_);
    newest_->publish();
    return generation_;
}

uint64_t Engine::setBypass(uint32_t node, bool bypass) {
    if (!newest_) return generation_;
    newest_->setBypass(node, bypass, ++generation_);
    newest_->publish();
    return generation_;
}

void Engine::collectGarbage() {
    Rack* r = nullptr;
    while (retired_.pop(r)) delete r;
}

bool Engine::latestMeters(MeterFrame& out) {
    bool any = false;
    while (meters_.pop(out)) any = true;
    return any;
}

void Engine::process(const float* const* in, float* const* out, uint32_t frames) noexcept {
    flushDenormals();
    // Control never stores nullptr into pending_, so once seen non-null it stays so until we take it.
    if (pending_.load(std::memory_order_acquire) && (!active_ || retired_.push(active_)))
        active_ = pending_.exchange(nullptr, std::memory_order_acq_rel);
    if (!active_) {
        for (uint32_t c = 0; c < 2; ++c) std::memset(out[c], 0, frames * sizeof(float));
        events_.blocks.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const uint32_t chunk = active_->maxBlockFrames();
    for (uint32_t done = 0; done < frames;) {
        const uint32_t n = std::min(chunk, frames - done);
        const float* inChunk[2] = {in && in[0] ? in[0] + done : nullptr, in && in[1] ? in[1] + done : nullptr};
        float* outChunk[2] = {out[0] + done, out[1] + done};
        runChunk(in ? inChunk : nullptr, outChunk, n);
        done += n;
    }
    events_.blocks.fetch_add(1, std::memory_order_relaxed);
}

void Engine::runChunk(const float* const* in, float* const* out, uint32_t frames) noexcept {
    Rack::BlockStats& s = *stats_;
    const auto start = std::chrono::steady_clock::now();
    applied_.store(active_->process(in, out, frames, s), std::memory_order_release);

    if (s.nonFiniteNode != UINT32_MAX) {
        events_.lastNonFiniteNode.store(s.nonFiniteNode, std::memory_order_relaxed);
        events_.lastNonFiniteRack.store(active_->serial(), std::memory_order_relaxed);
        events_.nonFiniteBlocks.fetch_add(1, std::memory_order_release);
    }
    MeterFrame m;
    m.rackSerial = active_->serial();
    m.nodeCount = active_->nodeCount();
    m.frames = frames;
    for (uint32_t i = 0; i < m.nodeCount; ++i) {
        for (uint32_t c = 0; c < 2; ++c) {
            m.nodePeak[i][c] = s.peak[i][c];
            m.nodeRms[i][c] = std::sqrt(s.meanSquare[i][c]);
        }
        m.nodeNanoseconds[i] = s.nanoseconds[i];
    }
    for (uint32_t c = 0; c < 2; ++c) {
        float peak = 0.0f, sum = 0.0f;
        for (uint32_t f = 0; f < frames; ++f) {
            peak = std::max(peak, std::fabs(out[c][f]));
            sum += out[c][f] * out[c][f];
        }
        m.masterPeak[c] = peak;
        m.masterRms[c] = frames ? std::sqrt(sum / static_cast<float>(frames)) : 0.0f;
    }
    m.blockNanoseconds = static_cast<float>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
    if (!meters_.push(m)) events_.meterDrops.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace rackterm::engine
