// Rack: the immutable, fully pre-allocated chain the audio thread runs.
//
// Built on the control thread, published once through Engine::publish(), run
// by the audio thread, and freed on the control thread after the audio thread
// hands it back. Its structure (nodes, order, buffers) never changes after
// construction; the only state the audio thread writes is each node's
// runtime (applied generation, bypass ramp, timing), which the control thread
// reads only as relaxed atomics.
//
// Audio is stereo, non-interleaved: 2 x frames, frames <= maxBlockFrames().
#pragma once

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
    std::shared_ptr<void> owner;         ///< keeps instance and module alive; released on [control]
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
    /// [control] Build a rack of `nodes` (at most kMaxNodes) for blocks of at
    /// most `maxBlockFrames` frames at `sampleRateHz`; `generation` is the
    /// engine's generation at build time. Allocates everything the audio
    /// thread will need. Every node's values are applied at its first block.
    Rack(std::vector<NodeSetup> nodes, uint32_t maxBlockFrames, double sampleRateHz, uint64_t generation);
    ~Rack();
    Rack(const Rack&) = delete;
    Rack& operator=(const Rack&) = delete;

    uint32_t nodeCount() const noexcept { return static_cast<uint32_t>(nodes_.size()); }
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

    /// [control, any time] Times a node's output was muted for NaN/Inf.
    uint64_t nonFiniteCount(uint32_t node) const noexcept;

    /// [audio] Take the newest parameters (apply_plain_values for nodes whose
    /// generation moved), then run the chain: `in` (nullptr = silence) ->
    /// nodes -> `out`. The first node reads `in` and the last writes `out`
    /// directly. Node output with NaN/Inf is replaced by silence, the node is
    /// reset and counted. Fills `meters` (may be nullptr) with per-node and
    /// master peak/RMS, and per-node times when `timed`. Returns the
    /// generation now applied; `nonFiniteNode` gets the first muted node or
    /// UINT32_MAX.
    uint64_t process(const float* const* in, float* const* out, uint32_t frames, MeterFrame* meters, bool timed,
                     uint32_t& nonFiniteNode) noexcept;

private:
    /// One node. Nodes are built in place in one array and never move, so
    /// their audio-thread state (applied generation, bypass mix, fade
    /// position, counters) is never copied or dropped.
    struct Node {
        std::string id;
        const rackterm_processor_v2* descriptor = nullptr;
        rackterm_instance* instance = nullptr;
        uint32_t paramOffset = 0, paramCount = 0;
        // audio-thread runtime
        const rackterm_processor_v2* oldDescriptor = nullptr;  // crossfading from, or nullptr
        rackterm_instance* oldInstance = nullptr;
        uint32_t fadeLength = 0, fadePosition = 0;
        uint64_t appliedGeneration = UINT64_MAX;
        float bypassMix = 0.0f;  // 0 = processed, 1 = bypassed
        std::atomic<uint64_t> nonFinite{0};
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
    /// Run one node from `in` to `out` and measure its output into
    /// stats[2] (nullptr: only check it); false when that output was
    /// non-finite (and muted).
    bool runNode(Node& n, const float* const* in, float* const* out, uint32_t frames, uint8_t bypass,
                 rt::ChannelStats* stats) noexcept;
    /// Run the replaced instance beside the new one and crossfade into `out`.
    void crossfade(Node& n, const float* const* in, float* const* out, uint32_t frames) noexcept;

    NodeArray nodes_;
    std::vector<std::shared_ptr<void>> owners_;
    std::vector<float> buffers_;  // 2 stereo blocks (ping-pong), 1 of silence, 1 for crossfades
    uint32_t maxBlockFrames_;
    uint32_t stride_ = 0;  // floats between channel buffers (64-byte aligned)
    float* base_ = nullptr;  // first 64-byte aligned float of buffers_
    double sampleRate_;
    uint32_t bypassRampFrames_;
    uint64_t serial_;
    ParamFrame control_;                // control thread's copy
    rt::TripleBuffer<ParamFrame> shared_;
    const ParamFrame* current_ = nullptr;  // audio thread's view
};

}  // namespace rackterm::engine
