// Engine: owns the published rack, the parameter generations, the meter ring
// and the event counters; runs one block on the audio thread.
//
// Threads: functions marked [control] are called only from the control
// thread; process() only from the audio thread (JACK process callback or the
// offline render loop). They meet only through atomics and wait-free rings.
#pragma once

#include <rackterm/engine/rt/Rack.hpp>
#include <rackterm/engine/rt/SpscRing.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace rackterm::engine {

class Recorder;

/// Events the audio side raises; the control thread reads and logs them.
struct EngineEvents {
    std::atomic<uint64_t> xruns{0};           ///< set by the backend (JACK xrun callback)
    std::atomic<uint64_t> nonFiniteBlocks{0}; ///< blocks where a node's NaN/Inf output was muted
    std::atomic<uint32_t> lastNonFiniteNode{UINT32_MAX};
    std::atomic<uint64_t> lastNonFiniteRack{0};
    std::atomic<uint64_t> meterDrops{0};      ///< meter frames lost to a full ring
    std::atomic<uint64_t> blocks{0};          ///< blocks processed
};

class Engine {
public:
    /// [control] An engine with no rack (outputs silence) whose graph has
    /// `inputs` and `outputs` channels (1..kMaxIoPorts each): every rack
    /// published to it must have the same counts.
    explicit Engine(uint32_t inputs = 2, uint32_t outputs = 2);
    /// [control] Frees every rack; the audio side must be stopped first.
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    /// [control] Make `rack` the one the audio thread runs from its next
    /// block on. A rack published earlier and never taken is freed here.
    void publish(std::unique_ptr<Rack> rack);
    /// Channels of the graph input and output.
    uint32_t inputs() const noexcept { return inputs_; }
    uint32_t outputs() const noexcept { return outputs_; }
    /// [control] The newest published rack (what parameter changes go to), or nullptr.
    Rack* rack() const noexcept { return newest_; }
    /// [any] True while a published rack waits for the audio thread to take it.
    bool rackPending() const noexcept { return pending_.load(std::memory_order_acquire) != nullptr; }

    /// [control] Set a node's plain value and publish; returns the new generation.
    uint64_t setValue(uint32_t node, uint32_t index, float plain);
    /// [control] Set a node's bypass and publish; returns the new generation.
    uint64_t setBypass(uint32_t node, bool bypass);
    /// [control] Newest generation issued. A fresh rack starts at this generation.
    uint64_t generation() const noexcept { return generation_; }
    /// [any] Newest generation the audio thread has applied.
    uint64_t appliedGeneration() const noexcept { return applied_.load(std::memory_order_acquire); }

    /// [control] Free racks the audio thread has handed back. Call often.
    void collectGarbage();
    /// [control] Drain the meter ring into `out`: the newest frame, with the
    /// largest peaks of every frame drained (of the same rack) and the
    /// newest timing seen; false when the ring was empty.
    bool latestMeters(MeterFrame& out);

    /// [control] Start feeding `recorder` with the master output (output
    /// channels 1 and 2; a mono output in both) from the next block (nullptr: stop). After setting nullptr, wait until
    /// blocks() has moved on by two before stopping the recorder.
    void setRecorder(Recorder* recorder) noexcept { recorder_.store(recorder, std::memory_order_release); }
    /// [any] Blocks processed so far.
    uint64_t blocks() const noexcept { return events_.blocks.load(std::memory_order_acquire); }

    /// [control, before processing starts] Turn per-block meters off (offline
    /// render, where nobody reads them) or on (the default). The NaN/Inf
    /// guard runs either way.
    void setMetering(bool on) noexcept { metering_ = on; }

    EngineEvents& events() noexcept { return events_; }
    const EngineEvents& events() const noexcept { return events_; }

    /// [audio] Run one block: take a pending rack and the newest parameters,
    /// process inputs() x frames from `in` (nullptr, or a nullptr channel =
    /// silence) into outputs() x frames at `out`, push meters. Any `frames` is accepted (split into rack-sized chunks).
    /// Flushes denormals. No allocation, no lock, no system call.
    void process(const float* const* in, float* const* out, uint32_t frames) noexcept;

private:
    void runChunk(const float* const* in, float* const* out, uint32_t frames) noexcept;

    Rack* newest_ = nullptr;                // [control]
    std::atomic<Rack*> pending_{nullptr};   // control -> audio
    Rack* active_ = nullptr;                // [audio]
    rt::SpscRing<Rack*> retired_{32};       // audio -> control
    rt::SpscRing<MeterFrame> meters_{64};   // audio -> control
    std::atomic<uint64_t> applied_{0};
    uint64_t generation_ = 0;
    uint32_t inputs_, outputs_;
    EngineEvents events_;
    uint32_t blockCounter_ = 0;             // [audio] meter frames made
    uint32_t meterFrames_ = 0;              // [audio] frames run since the last meter frame
    bool metering_ = true;
    std::atomic<Recorder*> recorder_{nullptr};
};

/// [audio] Set flush-to-zero and denormals-are-zero for the calling thread.
void flushDenormals() noexcept;

}  // namespace rackterm::engine
