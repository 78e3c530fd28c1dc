// The processing graph as the engine sees it, and its plan: the flat,
// precomputed schedule a Rack runs.
//
// A graph has nodes (processors, with their declared channel counts and
// latency), the reserved endpoints `input` (the JACK capture ports or the
// input file's channels) and `output` (the playback ports or the output
// file's channels), and connections between output ports and input ports.
// planGraph() checks it and works out everything the audio thread will need:
// the processing order (Kahn's algorithm), how many instances each node runs
// (dual mono), which buffer every channel lives in (buffers are reused once
// their last reader has run), the sums at every fan-in, the delay lines of
// plugin delay compensation, and the copies that carry feedback connections
// one block late. The audio thread then walks the steps in order, nothing else.
//
// Rules (SPEC section 2, docs/session-format.md):
//  - Fan-out is free; fan-in is summed, sample-exact (terms added in
//    connection order).
//  - A connection of a output channels to b input channels: a == b connects
//    1:1, a == 1 copies to every input, b == 1 sums every output; anything
//    else needs explicit ports.
//  - A processor declaring 1 input and 1 output fed a connection of k > 1
//    channels (or a port in_k) runs as k instances sharing its parameters
//    (dual mono for k = 2), and has k outputs.
//  - A loop of connections is refused unless one of its connections is
//    marked feedback. A feedback connection carries the signal of the
//    previous block (silence in the first one), as JACK does for a loop of
//    clients; it is left out of delay compensation.
//  - Latency: a node's output lags the graph input by the most any of its
//    inputs lags, plus its own latency; every input that lags less is
//    delayed to match (plugin delay compensation, as Ardour does).
//
// All functions here are [control]; nothing here is real-time.
#pragma once

#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Result.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace rackterm::engine {

/// Most channels a processor port set has (input or output): 8.
inline constexpr uint32_t kMaxChannels = static_cast<uint32_t>(rackterm::kMaxProcessorChannels);
/// Most ports of the `input` or `output` endpoint: 32.
inline constexpr uint32_t kMaxIoPorts = static_cast<uint32_t>(rackterm::kMaxIoChannels);
/// Endpoint index of the graph input (a connection's `from`) and output (its `to`).
inline constexpr uint32_t kGraphInput = UINT32_MAX - 1;
inline constexpr uint32_t kGraphOutput = UINT32_MAX;
/// The most latency one node may report, frames; more is clamped (about 5.5 s at 48 kHz).
inline constexpr uint32_t kMaxNodeLatencyFrames = 1u << 18;

/// One node as the graph sees it.
struct GraphNode {
    std::string id;         ///< node id, for messages
    uint32_t inputs = 2;    ///< declared input channels, 1..kMaxChannels
    uint32_t outputs = 2;   ///< declared output channels, 1..kMaxChannels
    uint32_t latency = 0;   ///< frames the processor delays its output (its latency_frames)
};

/// One connection. Ports are 0-based (out_1 is 0); -1 means every port of
/// the endpoint, in order.
struct GraphEdge {
    uint32_t from = kGraphInput;  ///< node index, or kGraphInput
    uint32_t to = kGraphOutput;   ///< node index, or kGraphOutput
    int32_t fromPort = -1;
    int32_t toPort = -1;
    float gain = 1.0f;       ///< linear gain the connection ramps to (a send level)
    float startGain = 1.0f;  ///< linear gain at the rack's first block; != gain ramps (connect, disconnect, a new level)
    bool feedback = false;   ///< carries the previous block's signal; may close a loop
};

/// A graph to plan.
struct GraphSpec {
    uint32_t inputs = 2;   ///< channels of the `input` endpoint, 1..kMaxIoPorts
    uint32_t outputs = 2;  ///< channels of the `output` endpoint, 1..kMaxIoPorts
    std::vector<GraphNode> nodes;
    std::vector<GraphEdge> edges;

    /// The chain of a session without connections: input -> nodes[0] -> ...
    /// -> nodes[n-1] -> output, every connection bare (all ports).
    static std::vector<GraphEdge> chain(size_t nodeCount);
};

/// The plan of a graph: what Rack runs. Buffer ids: 0 is silence (never
/// written), 1..inputs the input channels, then the output channels, then
/// the pool (kFirstPooled + k).
struct GraphPlan {
    /// One addend of a sum: buffer `source` times connection `edge`'s gain
    /// (UINT32_MAX: unity), read through delay line `delay` (UINT32_MAX: none).
    struct Term {
        uint32_t source = 0;
        uint32_t edge = UINT32_MAX;
        uint32_t delay = UINT32_MAX;
    };
    /// Buffer `target` = the sum of terms [firstTerm, firstTerm + termCount)
    /// (silence when there are none).
    struct Mix {
        uint32_t target = 0;
        uint32_t firstTerm = 0, termCount = 0;
    };
    /// Run node `node`: first mixes [firstMix, firstMix + mixCount), then the
    /// processor from buffers `in` to buffers `out`.
    struct Step {
        uint32_t node = 0;
        uint32_t firstMix = 0, mixCount = 0;
        uint32_t in[kMaxChannels] = {};
        uint32_t out[kMaxChannels] = {};
    };
    /// Copy buffer `source` to `target` at the end of the block (feedback).
    struct Copy {
        uint32_t source = 0, target = 0;
    };

    uint32_t inputs = 2, outputs = 2;
    std::vector<uint32_t> order;       ///< node indices in processing order
    std::vector<uint32_t> copies;      ///< instances per node (1, or k for dual mono)
    std::vector<uint32_t> inWidth;     ///< channels each node reads
    std::vector<uint32_t> outWidth;    ///< channels each node writes
    std::vector<uint32_t> latency;     ///< each node's own latency, frames (clamped)
    std::vector<uint32_t> outLatency;  ///< lag of each node's output behind the graph input, frames
    uint32_t totalLatency = 0;         ///< lag of the graph output, frames
    std::vector<Term> terms;
    std::vector<Mix> mixes;            ///< steps' mixes, then the output mixes
    std::vector<Step> steps;           ///< in processing order
    uint32_t firstOutputMix = 0;       ///< output channel c is mixes[firstOutputMix + c]
    std::vector<Copy> feedbackCopies;
    std::vector<uint32_t> delayFrames; ///< per delay line, its delay in frames
    std::vector<uint32_t> delayEdge;   ///< per delay line, the connection it delays
    std::vector<uint32_t> delayChannel;///< per delay line, the source channel (its index among the edge's terms)
    uint32_t pooledBuffers = 0;        ///< buffers the pool needs
    std::vector<uint32_t> nodeOut;     ///< buffer id of node n's output channel c: nodeOut[n * kMaxChannels + c]
    std::vector<uint64_t> delayKey;    ///< per delay line: its connection's ends and channel, hashed (matches across plans)
    std::vector<uint64_t> feedbackKey; ///< per feedback copy: the node and channel it carries, hashed
    std::vector<float> edgeStartGain;  ///< per connection, linear gain at the first block
    std::vector<float> edgeGain;       ///< per connection, linear gain it ramps to

    /// First pooled buffer id.
    uint32_t firstPooled() const noexcept { return 1 + inputs + outputs; }
};

/// Check `graph` and plan it. Errors: a node id is not an endpoint the
/// direction allows (to = input, from = output); a port that does not exist
/// ("eq has 2 outputs; there is no out_3"); channel counts that do not fit
/// ("eq:out_1..out_3 (3 channels) -> rev:in_1..in_2 (2 channels) ..."); the
/// same ports connected twice; more than kMaxConnections connections; a loop
/// without a feedback connection, with its path ("connection comp -> eq
/// closes a loop eq -> comp -> eq; mark one connection feedback = true",
/// naming the loop's connection written last). `badEdge` (may be nullptr)
/// gets the index in graph.edges of the connection an error is about, or
/// UINT32_MAX when it is about the whole graph; the caller prefixes the
/// connection's place in the session file.
Result<GraphPlan> planGraph(const GraphSpec& graph, uint32_t* badEdge = nullptr);

/// "input", "output" or the node's id.
std::string endpointName(const GraphSpec& graph, uint32_t endpoint);

}  // namespace rackterm::engine
