#include <rackterm/engine/Graph.hpp>

#include <algorithm>
#include <functional>
#include <queue>
#include <set>
#include <tuple>

namespace rackterm::engine {

namespace {

std::string portName(bool output, int32_t port) { return (output ? "out_" : "in_") + std::to_string(port + 1); }

/// "eq:out_1..out_3" for a run of ports, "eq" for all of them.
std::string portsText(const std::string& node, bool output, int32_t port, uint32_t count) {
    if (port >= 0) return node + ":" + portName(output, port);
    if (count == 1) return node + ":" + portName(output, 0);
    return node + ":" + portName(output, 0) + ".." + portName(output, static_cast<int32_t>(count) - 1);
}

}  // namespace

namespace {
/// FNV-1a over `text`, continuing from `h`.
uint64_t hashText(uint64_t h, const std::string& text) {
    for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return (h ^ 0xffu) * 1099511628211ull;  // a separator: "ab","c" differs from "a","bc"
}
}  // namespace

std::vector<GraphEdge> GraphSpec::chain(size_t nodeCount) {
    std::vector<GraphEdge> edges;
    uint32_t from = kGraphInput;
    for (size_t i = 0; i < nodeCount; ++i) {
        edges.push_back(GraphEdge{from, static_cast<uint32_t>(i), -1, -1, 1.0f, 1.0f, false});
        from = static_cast<uint32_t>(i);
    }
    edges.push_back(GraphEdge{from, kGraphOutput, -1, -1, 1.0f, 1.0f, false});
    return edges;
}

std::string endpointName(const GraphSpec& g, uint32_t e) {
    if (e == kGraphInput) return "input";
    if (e == kGraphOutput) return "output";
    return e < g.nodes.size() ? g.nodes[e].id : "?";
}

Result<GraphPlan> planGraph(const GraphSpec& g, uint32_t* badEdge) {
    if (badEdge) *badEdge = UINT32_MAX;
    auto fail = [&](uint32_t edge, std::string message) -> Result<GraphPlan> {
        if (badEdge) *badEdge = edge;
        return Error{std::move(message)};
    };
    const auto n = static_cast<uint32_t>(g.nodes.size());
    const auto edgeCount = static_cast<uint32_t>(g.edges.size());
    if (n > kMaxNodes) return fail(UINT32_MAX, nodeLimitMessage(n));
    if (g.inputs < 1 || g.inputs > kMaxIoPorts || g.outputs < 1 || g.outputs > kMaxIoPorts)
        return fail(UINT32_MAX, "the graph has " + std::to_string(g.inputs) + " inputs and " + std::to_string(g.outputs) +
                                    " outputs; each must be 1 to " + std::to_string(kMaxIoPorts));
    if (edgeCount > kMaxConnections) return fail(UINT32_MAX, connectionLimitMessage(edgeCount));
    for (const GraphNode& node : g.nodes)
        if (node.inputs < 1 || node.inputs > kMaxChannels || node.outputs < 1 || node.outputs > kMaxChannels)
            return fail(UINT32_MAX, "node '" + node.id + "' declares " + std::to_string(node.inputs) + " inputs and " +
                                        std::to_string(node.outputs) + " outputs; a processor has 1 to " +
                                        std::to_string(kMaxChannels) + " of each");
    auto name = [&](uint32_t e) { return endpointName(g, e); };
    auto connectionText = [&](const GraphEdge& e) { return name(e.from) + " -> " + name(e.to); };
    for (uint32_t i = 0; i < edgeCount; ++i) {
        const GraphEdge& e = g.edges[i];
        if (e.from == kGraphOutput) return fail(i, "'output' is where the graph ends; it cannot feed a connection");
        if (e.to == kGraphInput) return fail(i, "'input' is where the graph starts; nothing can connect into it");
        if ((e.from != kGraphInput && e.from >= n) || (e.to != kGraphOutput && e.to >= n))
            return fail(i, "connection " + std::to_string(i + 1) + " names a node that is not in the graph");
        if (e.feedback && e.from == kGraphInput)
            return fail(i, "connection " + connectionText(e) + " is marked feedback but starts at 'input'; only a node's output can be fed back");
    }

    GraphPlan plan;
    plan.inputs = g.inputs;
    plan.outputs = g.outputs;

    // ---- processing order: Kahn, preferring the lowest node index (file order) ----
    std::vector<std::vector<uint32_t>> into(n), outOf(n);  // non-feedback edges between nodes
    std::vector<uint32_t> indegree(n, 0);
    for (uint32_t i = 0; i < edgeCount; ++i) {
        const GraphEdge& e = g.edges[i];
        if (e.to != kGraphOutput) into[e.to].push_back(i);
        if (e.feedback || e.from == kGraphInput || e.to == kGraphOutput) continue;
        outOf[e.from].push_back(i);
        ++indegree[e.to];
    }
    std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> ready;
    for (uint32_t v = 0; v < n; ++v)
        if (indegree[v] == 0) ready.push(v);
    while (!ready.empty()) {
        const uint32_t v = ready.top();
        ready.pop();
        plan.order.push_back(v);
        for (uint32_t i : outOf[v])
            if (--indegree[g.edges[i].to] == 0) ready.push(g.edges[i].to);
    }
    if (plan.order.size() < n) {
        // Every node left has a predecessor left: walk back until one repeats.
        uint32_t v = 0;
        while (indegree[v] == 0) ++v;
        std::vector<uint32_t> walkEdges;  // edge taken into each node of the walk, backwards
        std::vector<int> seenAt(n, -1);
        std::vector<uint32_t> walk;
        while (seenAt[v] < 0) {
            seenAt[v] = static_cast<int>(walk.size());
            walk.push_back(v);
            for (uint32_t i : into[v]) {
                const GraphEdge& e = g.edges[i];
                if (e.feedback || e.from == kGraphInput || indegree[e.from] == 0) continue;
                walkEdges.push_back(i);
                v = e.from;
                break;
            }
        }
        // The loop's edges (walked backwards from walk[seenAt[v]]).
        std::vector<uint32_t> loop(walkEdges.begin() + seenAt[v], walkEdges.end());
        std::reverse(loop.begin(), loop.end());  // now in signal order
        const auto newestAt = std::max_element(loop.begin(), loop.end());
        const uint32_t newest = *newestAt;  // read before the rotation moves the elements
        std::rotate(loop.begin(), newestAt + 1, loop.end());  // starts after the newest: at its `to`
        std::string path = name(g.edges[loop.front()].from);
        for (uint32_t i : loop) path += " -> " + name(g.edges[i].to);
        return fail(newest, "connection " + connectionText(g.edges[newest]) + " closes a loop " + path +
                                "; mark one connection feedback = true");
    }

    // ---- channel counts (dual mono) ----
    plan.copies.assign(n, 1);
    plan.inWidth.resize(n);
    plan.outWidth.resize(n);
    for (uint32_t v = 0; v < n; ++v) {
        plan.inWidth[v] = g.nodes[v].inputs;
        plan.outWidth[v] = g.nodes[v].outputs;
    }
    auto sourceWidth = [&](uint32_t from) { return from == kGraphInput ? g.inputs : plan.outWidth[from]; };
    for (uint32_t v : plan.order) {
        if (g.nodes[v].inputs != 1 || g.nodes[v].outputs != 1) continue;
        uint32_t k = 1;
        for (uint32_t i : into[v]) {
            const GraphEdge& e = g.edges[i];
            if (e.feedback) continue;
            const uint32_t need = e.toPort >= 0 ? static_cast<uint32_t>(e.toPort) + 1
                                                : (e.fromPort >= 0 ? 1 : sourceWidth(e.from));
            if (need <= kMaxChannels) k = std::max(k, need);
        }
        plan.copies[v] = plan.inWidth[v] = plan.outWidth[v] = k;
    }

    // ---- every connection's channel pairs ----
    struct Contribution {
        uint32_t edge, sourceChannel, termIndex;  // termIndex: which of the edge's terms (for delay lines)
    };
    std::vector<std::vector<Contribution>> contributions(static_cast<size_t>(n) * kMaxChannels);
    std::vector<std::vector<Contribution>> outputContributions(g.outputs);
    std::set<std::tuple<uint32_t, int32_t, uint32_t, int32_t>> seen;
    for (uint32_t i = 0; i < edgeCount; ++i) {
        const GraphEdge& e = g.edges[i];
        const uint32_t sw = sourceWidth(e.from);
        const uint32_t dw = e.to == kGraphOutput ? g.outputs : plan.inWidth[e.to];
        if (e.fromPort >= static_cast<int32_t>(sw))
            return fail(i, name(e.from) + " has " + std::to_string(sw) + (sw == 1 ? " output" : " outputs") +
                               "; there is no " + portName(true, e.fromPort));
        if (e.toPort >= static_cast<int32_t>(dw))
            return fail(i, name(e.to) + " has " + std::to_string(dw) + (dw == 1 ? " input" : " inputs") +
                               "; there is no " + portName(false, e.toPort));
        if (!seen.insert({e.from, e.fromPort, e.to, e.toPort}).second)
            return fail(i, "connection " + portsText(name(e.from), true, e.fromPort, sw) + " -> " +
                               portsText(name(e.to), false, e.toPort, dw) + " is made twice; remove one");
        const uint32_t a = e.fromPort >= 0 ? 1 : sw, b = e.toPort >= 0 ? 1 : dw;
        if (a != b && a != 1 && b != 1)
            return fail(i, "port count mismatch: " + portsText(name(e.from), true, e.fromPort, sw) + " (" +
                               std::to_string(a) + " channels) -> " + portsText(name(e.to), false, e.toPort, dw) + " (" +
                               std::to_string(b) + " channels); connect single ports, e.g. " + name(e.from) +
                               ":out_1 -> " + name(e.to) + ":in_1");
        const uint32_t pairs = std::max(a, b);
        for (uint32_t k = 0; k < pairs; ++k) {
            const uint32_t src = (e.fromPort >= 0 ? static_cast<uint32_t>(e.fromPort) : 0) + (a == 1 ? 0 : k);
            const uint32_t dst = (e.toPort >= 0 ? static_cast<uint32_t>(e.toPort) : 0) + (b == 1 ? 0 : k);
            const Contribution c{i, src, k};
            if (e.to == kGraphOutput) outputContributions[dst].push_back(c);
            else contributions[static_cast<size_t>(e.to) * kMaxChannels + dst].push_back(c);
        }
    }

    // ---- latency: plugin delay compensation at every fan-in ----
    plan.latency.resize(n);
    plan.outLatency.assign(n, 0);
    std::vector<uint32_t> arrival(n, 0);
    auto sourceLatency = [&](uint32_t from) { return from == kGraphInput ? 0u : plan.outLatency[from]; };
    for (uint32_t v = 0; v < n; ++v) plan.latency[v] = std::min(g.nodes[v].latency, kMaxNodeLatencyFrames);
    for (uint32_t v : plan.order) {
        for (uint32_t i : into[v])
            if (!g.edges[i].feedback) arrival[v] = std::max(arrival[v], sourceLatency(g.edges[i].from));
        plan.outLatency[v] = arrival[v] + plan.latency[v];
    }
    for (const GraphEdge& e : g.edges)
        if (e.to == kGraphOutput && !e.feedback) plan.totalLatency = std::max(plan.totalLatency, sourceLatency(e.from));

    // ---- buffers: outputs live from their node's step to their last reader's ----
    const auto stepCount = static_cast<uint32_t>(plan.order.size());
    std::vector<uint32_t> position(n);
    for (uint32_t s = 0; s < stepCount; ++s) position[plan.order[s]] = s;
    const uint32_t kEnd = stepCount;  // the output mixes and feedback copies
    std::vector<uint32_t> lastUse(static_cast<size_t>(n) * kMaxChannels, 0);
    std::vector<uint8_t> fedBack(static_cast<size_t>(n) * kMaxChannels, 0);
    for (uint32_t v = 0; v < n; ++v)
        for (uint32_t c = 0; c < plan.outWidth[v]; ++c) lastUse[v * kMaxChannels + c] = position[v];
    auto noteReader = [&](const Contribution& c, uint32_t at) {
        const GraphEdge& e = g.edges[c.edge];
        if (e.from == kGraphInput) return;
        const size_t slot = static_cast<size_t>(e.from) * kMaxChannels + c.sourceChannel;
        if (e.feedback) {
            fedBack[slot] = 1;
            lastUse[slot] = kEnd;
        } else {
            lastUse[slot] = std::max(lastUse[slot], at);
        }
    };
    for (uint32_t v = 0; v < n; ++v)
        for (uint32_t c = 0; c < plan.inWidth[v]; ++c)
            for (const Contribution& k : contributions[v * kMaxChannels + c]) noteReader(k, position[v]);
    for (const auto& list : outputContributions)
        for (const Contribution& k : list) noteReader(k, kEnd);

    uint32_t nextBuffer = plan.firstPooled();
    std::vector<uint32_t> freeBuffers;  // kept sorted descending: the lowest id is taken first
    auto take = [&]() {
        if (freeBuffers.empty()) return nextBuffer++;
        const uint32_t b = freeBuffers.back();
        freeBuffers.pop_back();
        return b;
    };
    auto give = [&](uint32_t b) {
        freeBuffers.insert(std::lower_bound(freeBuffers.begin(), freeBuffers.end(), b, std::greater<>()), b);
    };
    std::vector<uint32_t> feedbackBuffer(static_cast<size_t>(n) * kMaxChannels, 0);
    for (size_t slot = 0; slot < fedBack.size(); ++slot)
        if (fedBack[slot]) feedbackBuffer[slot] = take();  // held for good: it carries a block to the next
    plan.nodeOut.assign(static_cast<size_t>(n) * kMaxChannels, 0);
    std::vector<std::vector<uint32_t>> releaseAfter(stepCount + 1);

    auto termFor = [&](const Contribution& c, uint32_t targetArrival) {
        const GraphEdge& e = g.edges[c.edge];
        GraphPlan::Term t;
        const size_t slot = e.from == kGraphInput ? 0 : static_cast<size_t>(e.from) * kMaxChannels + c.sourceChannel;
        if (e.feedback) t.source = feedbackBuffer[slot];
        else if (e.from == kGraphInput) t.source = 1 + c.sourceChannel;
        else t.source = plan.nodeOut[slot];
        if (!(e.gain == 1.0f && e.startGain == 1.0f)) t.edge = c.edge;
        if (!e.feedback) {
            const uint32_t lag = targetArrival - sourceLatency(e.from);
            if (lag > 0) {
                t.delay = static_cast<uint32_t>(plan.delayFrames.size());
                plan.delayFrames.push_back(lag);
                plan.delayEdge.push_back(c.edge);
                plan.delayChannel.push_back(c.termIndex);
                uint64_t key = hashText(1469598103934665603ull, name(e.from));
                key = hashText(key, name(e.to));
                key = hashText(key, std::to_string(e.fromPort) + "," + std::to_string(e.toPort) + "," +
                                        std::to_string(c.termIndex) + "," + std::to_string(lag));
                plan.delayKey.push_back(key);
            }
        }
        return t;
    };

    for (uint32_t s = 0; s < stepCount; ++s) {
        const uint32_t v = plan.order[s];
        GraphPlan::Step step;
        step.node = v;
        step.firstMix = static_cast<uint32_t>(plan.mixes.size());
        for (uint32_t c = 0; c < plan.inWidth[v]; ++c) {
            const auto& list = contributions[v * kMaxChannels + c];
            if (list.empty()) {
                step.in[c] = 0;
                continue;
            }
            std::vector<GraphPlan::Term> terms;
            for (const Contribution& k : list) terms.push_back(termFor(k, arrival[v]));
            if (terms.size() == 1 && terms[0].edge == UINT32_MAX && terms[0].delay == UINT32_MAX) {
                step.in[c] = terms[0].source;  // one plain connection: read its buffer in place
                continue;
            }
            GraphPlan::Mix mix;
            mix.target = take();
            mix.firstTerm = static_cast<uint32_t>(plan.terms.size());
            mix.termCount = static_cast<uint32_t>(terms.size());
            plan.terms.insert(plan.terms.end(), terms.begin(), terms.end());
            plan.mixes.push_back(mix);
            step.in[c] = mix.target;
            releaseAfter[s].push_back(mix.target);
        }
        step.mixCount = static_cast<uint32_t>(plan.mixes.size()) - step.firstMix;
        for (uint32_t c = 0; c < plan.outWidth[v]; ++c) {
            const size_t slot = static_cast<size_t>(v) * kMaxChannels + c;
            step.out[c] = plan.nodeOut[slot] = take();
            releaseAfter[lastUse[slot]].push_back(step.out[c]);
        }
        plan.steps.push_back(step);
        for (uint32_t b : releaseAfter[s]) give(b);
    }
    plan.firstOutputMix = static_cast<uint32_t>(plan.mixes.size());
    for (uint32_t c = 0; c < g.outputs; ++c) {
        GraphPlan::Mix mix;
        mix.target = 1 + g.inputs + c;
        mix.firstTerm = static_cast<uint32_t>(plan.terms.size());
        for (const Contribution& k : outputContributions[c]) plan.terms.push_back(termFor(k, plan.totalLatency));
        mix.termCount = static_cast<uint32_t>(plan.terms.size()) - mix.firstTerm;
        plan.mixes.push_back(mix);
    }
    for (size_t slot = 0; slot < fedBack.size(); ++slot)
        if (fedBack[slot]) {
            plan.feedbackCopies.push_back({plan.nodeOut[slot], feedbackBuffer[slot]});
            plan.feedbackKey.push_back(hashText(hashText(1469598103934665603ull, g.nodes[slot / kMaxChannels].id),
                                                std::to_string(slot % kMaxChannels)));
        }
    plan.pooledBuffers = nextBuffer - plan.firstPooled();
    for (const GraphEdge& e : g.edges) {
        plan.edgeStartGain.push_back(e.startGain);
        plan.edgeGain.push_back(e.gain);
    }
    return plan;
}

}  // namespace rackterm::engine
