// Rack: the immutable, fully pre-allocated graph the audio thread runs.
//
// Built on the control thread from a GraphPlan (engine/Graph.hpp), published
// once through Engine::publish(), run by the audio thread, and freed on the
// control thread after the audio thread hands it back. Its structure (nodes,
// schedule, buffers, delay lines) never changes after construction; the only
// state the audio thread writes is each node's runtime (applied generation,
// bypass ramp, timing), the connections' gain ramps, the delay lines and the
// feedback buffers; the control thread reads flags of it as atomics.
//
// Audio is non-interleaved float: the graph input is plan.inputs x frames,
// the output plan.outputs x frames, frames <= maxBlockFrames().
#pragma once

#include <rackterm/engine/Graph.hpp>
#include <rackterm/engine/rt/BlockStats.hpp>
#include <rackterm/engine/rt/MeterFrame.hpp>
#include <rackterm/engine/rt/TripleBuffer.hpp>
#include <rackterm/processor.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace rackterm::engine {

/// What the control thread tells a rack about one node.
struct NodeSetup {
    std::string id;                      ///< node id, for messages only (never read by the audio thread)
    const rackterm_processor_v2* descriptor = nullptr;
    rackterm_instance* instance = nullptr;
    std::shared_ptr<void> owner;         ///< keeps the instances and module alive; released on [control]
    std::vector<float> values;           ///< plain values, table order, param_count entries
    bool bypass = false;
    /// A node just added: it starts bypassed and crossfades in (no click).
    bool fadeIn = false;
    /// Hot swap: the instance this node replaces. For `fadeFrames` frames the
    /// audio thread runs both and crossfades (equal power) from it to
    /// `instance`; it keeps its own parameter values and state.
    const rackterm_processor_v2* fadeFromDescriptor = nullptr;
    rackterm_instance* fadeFromInstance = nullptr;
    std::shared_ptr<void> fadeFromOwner;
    uint32_t fadeFrames = 0;
    /// Dual mono: the instances for channels 2..k (the plan's copies - 1),
    /// sharing the node's parameter values (kept alive by `owner`).
    std::vector<rackterm_instance*> extraInstances;
    std::vector<rackterm_instance*> fadeFromExtraInstances;  ///< the replaced instance's copies
    /// Per instance (the main one, then the extras), a flag an isolated
    /// processor raises while its newest block was silence instead of its
    /// output (a crashed or late child), or nullptr. A block in which one is
    /// raised plays the node's dry signal instead (no dropout), and the node
    /// stays dry until all clear, then fades back over the bypass ramp; its
    /// processor is still called, so it knows when its child answers again.
    std::vector<const std::atomic<bool>*> faults;
};

/// All parameter values of a rack at one moment, plus generations.
struct ParamFrame {
    std::vector<float> values;        ///< every node's plain values, concatenated in node order
    std::vector<uint64_t> nodeGeneration;  ///< generation at which each node last changed
    std::vector<uint8_t> bypass;      ///< 1 = bypassed, per node
    uint64_t generation = 0;          ///< newest generation contained in this frame
};

class Rack {
public:
    /// [control] Build a rack that runs `plan` (from planGraph over the same
    /// nodes, in the same order) with `nodes` (at most kMaxNodes) for blocks
    /// of at most `maxBlockFrames` frames at `sampleRateHz`; `generation` is
    /// the engine's generation at build time. Allocates everything the audio
    /// thread will need: the buffer pool, the delay lines, the feedback
    /// buffers. Every node's values are applied at its first block. A node
    /// given fewer instances than the plan's copies writes silence on the
    /// channels it lacks.
    Rack(std::vector<NodeSetup> nodes, GraphPlan plan, uint32_t maxBlockFrames, double sampleRateHz,
         uint64_t generation);
    /// [control] The chain of a session without connections: stereo input ->
    /// nodes in order -> stereo output (an empty rack when the nodes' channel
    /// counts do not chain).
    Rack(std::vector<NodeSetup> nodes, uint32_t maxBlockFrames, double sampleRateHz, uint64_t generation);
    ~Rack();
    Rack(const Rack&) = delete;
    Rack& operator=(const Rack&) = delete;

    uint32_t nodeCount() const noexcept { return static_cast<uint32_t>(nodes_.size()); }
    /// Channels of the graph input and output.
    uint32_t inputs() const noexcept { return plan_.inputs; }
    uint32_t outputs() const noexcept { return plan_.outputs; }
    /// The plan this rack runs.
    const GraphPlan& plan() const noexcept { return plan_; }
    uint32_t maxBlockFrames() const noexcept { return maxBlockFrames_; }
    double sampleRate() const noexcept { return sampleRate_; }
    uint64_t serial() const noexcept { return serial_; }
    const std::string& nodeId(uint32_t n) const { return nodes_[n].id; }
    const rackterm_processor_v2* descriptor(uint32_t n) const noexcept { return nodes_[n].descriptor; }

    /// [control] Set one plain value (index in the node's table) in the
    /// control copy; call publish() to send it.
    void setValue(uint32_t node, uint32_t index, float plain, uint64_t generation) noexcept;
    /// [control] Set a node's bypass in the control copy.
    void setBypass(uint32_t node, bool bypass, uint64_t generation) noexcept;
    /// [control] The control copy of a node's value / bypass.
    float value(uint32_t node, uint32_t index) const noexcept;
    bool bypassed(uint32_t node) const noexcept;
    /// [control] Publish the control copy to the audio thread (wait-free).
    void publish() noexcept;

    /// [any] True once a node's bypass crossfade has reached its target.
    bool bypassSettled(uint32_t node) const noexcept;
    /// [any] True once a node's hot-swap crossfade has finished (or it had none):
    /// the instance it replaced is no longer run.
    bool fadeDone(uint32_t node) const noexcept;

    /// [control] Prepare to take over `previous`'s signal state (the delay
    /// lines of delay compensation and the blocks that feedback connections
    /// carry) when the audio thread switches from it to this rack: lines and
    /// copies are matched by their connection, node and channel; nothing
    /// carries over when the sample rate or the block size differs. Called by
    /// Engine::publish with the rack published before this one.
    void planHandOver(const Rack& previous);
    /// [audio] Take that state from `previous` (the rack the audio thread ran
    /// until now) when it is the one planHandOver() saw: delay lines are
    /// swapped (the old rack frees the fresh ones on the control thread),
    /// feedback blocks copied (one block each); no allocation.
    void handOver(Rack& previous) noexcept;

    /// [any] True once every connection's gain ramp (connect, disconnect, a
    /// new send level) has reached its target.
    bool edgesSettled() const noexcept { return edgesSettled_.load(std::memory_order_acquire); }

    /// [control, any time] Times a node's output was muted for NaN/Inf.
    uint64_t nonFiniteCount(uint32_t node) const noexcept;

    /// Consecutive blocks a node must take longer than the block's period
    /// before it is reported over budget.
    static constexpr uint32_t kLateBlocks = 8;
    /// Blocks timed node by node after a block that took longer than its
    /// period (frames / sample rate): the whole block is timed every time
    /// (two clock reads), single nodes only then, so the cost stays off
    /// racks that keep up.
    static constexpr uint32_t kDiagnoseBlocks = 64;
    /// [control] True once node `node` took longer than the block's period
    /// in kLateBlocks timed blocks in a row (it alone makes the rack late),
    /// and clears that: it is set again after kLateBlocks more. `nanoseconds`
    /// gets its newest such time.
    bool takeOverBudget(uint32_t node, uint32_t* nanoseconds = nullptr) noexcept;

    /// [audio] Take the newest parameters (apply_plain_values for nodes whose
    /// generation moved), then run the plan's steps: `in` (inputs() channel
    /// pointers, nullptr or a nullptr channel = silence) -> nodes -> `out`
    /// (outputs() channel pointers). Node output with NaN/Inf is replaced by
    /// silence, the node is reset and counted. Fills `meters` (may be
    /// nullptr) with per-node (channels 1 and 2 of its output; a mono output
    /// in both) and master (output channels 1 and 2) peak/RMS, and per-node
    /// times when `timed`. Returns the generation now applied;
    /// `nonFiniteNode` gets the first muted node or UINT32_MAX.
    uint64_t process(const float* const* in, float* const* out, uint32_t frames, MeterFrame* meters, bool timed,
                     uint32_t& nonFiniteNode) noexcept;

private:
    /// One node. Nodes are built in place in one array and never move, so
    /// their audio-thread state (applied generation, bypass mix, fade
    /// position, counters) is never copied or dropped.
    struct Node {
        std::string id;
        const rackterm_processor_v2* descriptor = nullptr;
        rackterm_instance* instance[kMaxChannels] = {};  // one per copy
        uint32_t copies = 1;     // instances run (dual mono: one per channel)
        uint32_t available = 1;  // instances given (copies beyond it write silence)
        uint32_t inWidth = 2, outWidth = 2;
        const std::atomic<bool>* fault[kMaxChannels] = {};  // isolated instances' fault flags
        uint32_t faults = 0;                                // how many of fault[] are set
        uint32_t paramOffset = 0, paramCount = 0;
        // audio-thread runtime
        const rackterm_processor_v2* oldDescriptor = nullptr;  // crossfading from, or nullptr
        rackterm_instance* oldInstance[kMaxChannels] = {};
        uint32_t fadeLength = 0, fadePosition = 0;
        uint64_t appliedGeneration = UINT64_MAX;
        float bypassMix = 0.0f;  // 0 = processed, 1 = bypassed
        float peak[2] = {0.0f, 0.0f};  // largest |x| of channels 1 and 2 since the last meter frame
        std::atomic<uint64_t> nonFinite{0};
        uint32_t lateRun = 0;                    // consecutive timed blocks over the period
        std::atomic<uint32_t> lateNanoseconds{0};  // the newest over-period time
        std::atomic<bool> overBudget{false};     // lateRun reached kLateBlocks
        std::atomic<bool> fadeDone{true};
        std::atomic<bool> bypassSettled{true};
        Node() = default;
        Node(const Node&) = delete;
        Node& operator=(const Node&) = delete;
    };
    static_assert(!std::is_move_constructible_v<Node>, "a node never moves: nothing of its state can be lost");
    /// A fixed array of nodes, allocated once on the control thread.
    class NodeArray {
    public:
        explicit NodeArray(size_t n = 0) : nodes_(n ? new Node[n] : nullptr), size_(n) {}
        size_t size() const noexcept { return size_; }
        Node& operator[](size_t i) noexcept { return nodes_[i]; }
        const Node& operator[](size_t i) const noexcept { return nodes_[i]; }
        void clear() noexcept {
            nodes_.reset();
            size_ = 0;
        }

    private:
        std::unique_ptr<Node[]> nodes_;
        size_t size_;
    };
    /// A connection's gain on the audio thread: ramps from `current` to
    /// `target` by `step` per frame.
    struct EdgeGain {
        float current = 1.0f, target = 1.0f, step = 0.0f;
    };
    /// A delay line of plugin delay compensation: a ring of `size` floats,
    /// allocated on its own so that a rack taking over can swap it in (O(1)).
    struct DelayLine {
        std::unique_ptr<float[]> data;
        uint32_t size = 0, delay = 0, write = 0;
    };
    /// Run one node from `in` to `out` and measure its output into stats[2]
    /// (peak and finiteness; the mean square too when `full`); false when
    /// that output was non-finite (and muted).
    /// A raised fault fades to dry like a bypass, but the processor is still called.
    bool runNode(Node& n, const float* const* in, float* const* out, uint32_t frames, uint8_t bypass, bool full,
                 rt::ChannelStats* stats) noexcept;
    /// Call the processor (every copy) of `d` / `instances` from `in` to `out`.
    void callProcess(const Node& n, const rackterm_processor_v2* d, rackterm_instance* const* instances,
                     const float* const* in, float* const* out, uint32_t frames) noexcept;
    /// Run the replaced instance beside the new one and crossfade into `out`.
    void crossfade(Node& n, const float* const* in, float* const* out, uint32_t frames) noexcept;
    /// Fill mixes[m]'s target with the sum of its terms.
    void runMix(const GraphPlan::Mix& m, uint32_t frames) noexcept;
    /// Float storage aligned to 64 bytes: `count` buffers `stride_` apart from base.
    float* buffer(uint32_t index) const noexcept { return base_ + static_cast<size_t>(index) * stride_; }

    NodeArray nodes_;
    GraphPlan plan_;
    std::vector<std::shared_ptr<void>> owners_;
    std::vector<float> buffers_;  // silence, scratch (delay reads), crossfade (kMaxChannels), then the pool
    std::vector<float*> pointers_;  // every buffer id of the plan -> its samples (inputs and outputs set per block)
    std::vector<EdgeGain> edges_;
    std::vector<DelayLine> delays_;
    std::atomic<bool> edgesSettled_{true};
    uint64_t handOverFrom_ = 0;  // serial of the rack whose state this one takes over, 0 = none
    std::vector<std::pair<uint32_t, uint32_t>> delayHandOver_;     // (this rack's line, the previous rack's)
    std::vector<std::pair<uint32_t, uint32_t>> feedbackHandOver_;  // (this rack's copy, the previous rack's)
    float masterPeak_[2] = {0.0f, 0.0f};  // largest |x| of output channels 1 and 2 since the last meter frame
    uint32_t maxBlockFrames_;
    uint32_t stride_ = 0;  // floats between channel buffers (64-byte aligned)
    float* base_ = nullptr;  // first 64-byte aligned float of buffers_
    double sampleRate_;
    uint32_t bypassRampFrames_;
    uint32_t diagnose_ = 0;  // [audio] blocks left to time node by node (after a block over its period)
    uint64_t serial_;
    ParamFrame control_;                // control thread's copy
    rt::TripleBuffer<ParamFrame> shared_;
    const ParamFrame* current_ = nullptr;  // audio thread's view
};

}  // namespace rackterm::engine
