#include <rackterm/engine/rt/Engine.hpp>

#include <rackterm/engine/Recorder.hpp>

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

Engine::Engine(uint32_t inputs, uint32_t outputs)
    : inputs_(std::clamp<uint32_t>(inputs, 1, kMaxIoPorts)), outputs_(std::clamp<uint32_t>(outputs, 1, kMaxIoPorts)) {}

Engine::~Engine() {
    collectGarbage();
    delete pending_.exchange(nullptr);
    delete active_;
}

void Engine::publish(std::unique_ptr<Rack> rack) {
    collectGarbage();
    // The rack the audio thread runs before this one (or the one it
    // replaces, never run: then its state is silence, as a fresh one's).
    if (newest_ && rack) rack->planHandOver(*newest_);
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
    bool any = false, timed = false;
    float nodeNs[kMaxNodes];
    uint32_t timedCount = 0;
    float blockNs = 0;
    // Peaks are the largest of every frame drained (of the newest rack), so a
    // peak between two reads is never lost; RMS is the newest frame's.
    float nodePeak[kMaxNodes][2];
    float masterPeak[2] = {0.0f, 0.0f};
    uint64_t serial = 0;
    uint32_t count = 0;
    while (meters_.pop(out)) {
        if (!any || out.rackSerial != serial) {
            serial = out.rackSerial;
            count = 0;
            masterPeak[0] = masterPeak[1] = 0.0f;
        }
        for (uint32_t n = count; n < out.nodeCount; ++n) nodePeak[n][0] = nodePeak[n][1] = 0.0f;
        count = std::max(count, out.nodeCount);
        for (uint32_t n = 0; n < out.nodeCount; ++n)
            for (int c = 0; c < 2; ++c) nodePeak[n][c] = std::max(nodePeak[n][c], out.nodePeak[n][c]);
        for (int c = 0; c < 2; ++c) masterPeak[c] = std::max(masterPeak[c], out.masterPeak[c]);
        any = true;
        if (out.timed) {  // keep the newest timing even when the newest frame has none
            std::copy(out.nodeNanoseconds, out.nodeNanoseconds + out.nodeCount, nodeNs);
            timedCount = out.nodeCount;
            blockNs = out.blockNanoseconds;
            timed = true;
        }
    }
    if (any) {
        for (uint32_t n = 0; n < out.nodeCount; ++n)
            for (int c = 0; c < 2; ++c) out.nodePeak[n][c] = nodePeak[n][c];
        for (int c = 0; c < 2; ++c) out.masterPeak[c] = masterPeak[c];
    }
    if (any && timed && !out.timed) {
        std::copy(nodeNs, nodeNs + std::min(timedCount, out.nodeCount), out.nodeNanoseconds);
        std::fill(out.nodeNanoseconds + std::min(timedCount, out.nodeCount), out.nodeNanoseconds + out.nodeCount, 0.0f);
        out.blockNanoseconds = blockNs;
        out.timed = true;
    }
    return any;
}

void Engine::process(const float* const* in, float* const* out, uint32_t frames) noexcept {
    flushDenormals();
    // Control never stores nullptr into pending_, so once seen non-null it
    // stays so until we take it. The outgoing rack is handed to the control
    // thread only after the incoming one has copied its signal state.
    if (pending_.load(std::memory_order_acquire)) {
        Rack** slot = active_ ? retired_.reserve() : nullptr;
        if (!active_ || slot) {
            Rack* next = pending_.exchange(nullptr, std::memory_order_acq_rel);
            if (active_) {
                next->handOver(*active_);  // before the old rack goes back to the control thread
                *slot = active_;
                retired_.publish();
            }
            active_ = next;
        }
    }
    if (!active_) {
        for (uint32_t c = 0; c < outputs_; ++c) std::memset(out[c], 0, frames * sizeof(float));
        events_.blocks.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const uint32_t chunk = active_->maxBlockFrames();
    for (uint32_t done = 0; done < frames;) {
        const uint32_t n = std::min(chunk, frames - done);
        const float* inChunk[kMaxIoPorts];
        float* outChunk[kMaxIoPorts];
        for (uint32_t c = 0; c < inputs_; ++c) inChunk[c] = in && in[c] ? in[c] + done : nullptr;
        for (uint32_t c = 0; c < outputs_; ++c) outChunk[c] = out[c] + done;
        runChunk(inChunk, outChunk, n);
        done += n;
    }
    if (Recorder* r = recorder_.load(std::memory_order_acquire)) {
        const float* master[2] = {out[0], out[outputs_ > 1 ? 1 : 0]};
        r->push(master, frames);
    }
    events_.blocks.fetch_add(1, std::memory_order_release);
}

void Engine::runChunk(const float* const* in, float* const* out, uint32_t frames) noexcept {
    // A meter frame once at least 256 frames have run (every 4th block of
    // 64): the console redraws at 30 Hz, the peaks accumulate exactly in between.
    meterFrames_ += frames;
    const bool frame = metering_ && meterFrames_ >= 256;
    const bool timed = frame && (blockCounter_++ & 3u) == 0;
    const auto start = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    MeterFrame* m = frame ? meters_.reserve() : nullptr;  // in place; nullptr when the reader fell behind
    if (frame) meterFrames_ = 0;
    uint32_t nonFiniteNode = UINT32_MAX;
    applied_.store(active_->process(in, out, frames, m, timed, nonFiniteNode), std::memory_order_release);
    if (nonFiniteNode != UINT32_MAX) {
        events_.lastNonFiniteNode.store(nonFiniteNode, std::memory_order_relaxed);
        events_.lastNonFiniteRack.store(active_->serial(), std::memory_order_relaxed);
        events_.nonFiniteBlocks.fetch_add(1, std::memory_order_release);
    }
    if (!m) {
        if (frame) events_.meterDrops.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (timed)
        m->blockNanoseconds = static_cast<float>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
    meters_.publish();
}

}  // namespace rackterm::engine
