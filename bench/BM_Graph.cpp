// The graph schedule's cost: the same nodes run by Engine::process through
// a planned graph (the rack: parameter snapshot check, per-node NaN/Inf guard
// and exact peak, meter frames, sums, the feedback copy) and as bare
// process() calls in the same order with the same sums written as plain
// loops and nothing else. Two graphs, at 64 and 256 frames:
//   chain: the 8-node mixed chain of BM_Rack (biquad, saturator, gain, delay,
//          biquad, saturator, oscillator, gain), input -> ... -> output;
//   graph: 16 nodes with two fan-outs (n2, n5), two fan-ins (n13 from three
//          paths, n15 from two) and a feedback edge (n15 -> n8 at -20 dB).
// Report, do not assert: bench/README.md records the figures.
#include <rackterm/engine/Graph.hpp>
#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/loader/Loader.hpp>

#include "EngineLoop.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace rackterm;

namespace {

struct Setup {
    std::vector<std::shared_ptr<loader::Instance>> instances;
    engine::GraphPlan plan;
    std::unique_ptr<engine::Engine> engine;
};

engine::GraphEdge link(uint32_t from, uint32_t to, float gain = 1.0f, bool feedback = false) {
    engine::GraphEdge e;
    e.from = from;
    e.to = to;
    e.gain = e.startGain = gain;
    e.feedback = feedback;
    return e;
}

Setup make(uint32_t frames, bool graph) {
    const char* kinds[8] = {"biquad", "saturator", "gain", "delay", "biquad", "saturator", "oscillator", "gain"};
    const uint32_t count = graph ? 16 : 8;
    Setup s;
    engine::GraphSpec g;
    std::vector<engine::NodeSetup> nodes;
    for (uint32_t i = 0; i < count; ++i) {
        auto module = loader::loadModule(std::string(RACKTERM_BENCH_MODULE_DIR) + "/lib" + kinds[i % 8] + ".so");
        if (!module) std::abort();
        auto inst = loader::createInstance(module.value(), 48000, frames);
        if (!inst) std::abort();
        std::shared_ptr<loader::Instance> owned = std::move(inst.value());
        const auto& d = owned->descriptor();
        std::vector<float> values;
        for (uint32_t p = 0; p < d.param_count; ++p) values.push_back(d.params[p].default_value);
        d.apply_plain_values(owned->get(), values.data(), values.size());
        s.instances.push_back(owned);
        engine::NodeSetup setup;
        setup.id = "n" + std::to_string(i);
        setup.descriptor = &d;
        setup.instance = owned->get();
        setup.owner = owned;
        setup.values = values;
        nodes.push_back(std::move(setup));
        g.nodes.push_back({"n" + std::to_string(i), 2, 2, 0});
    }
    if (!graph) {
        g.edges = engine::GraphSpec::chain(count);
    } else {
        using engine::kGraphInput;
        using engine::kGraphOutput;
        g.edges = {link(kGraphInput, 0)};
        for (uint32_t i = 0; i < 7; ++i) g.edges.push_back(link(i, i + 1));
        g.edges.push_back(link(2, 8));  // fan-out 1
        g.edges.push_back(link(8, 9));
        g.edges.push_back(link(9, 10));
        g.edges.push_back(link(5, 11));  // fan-out 2
        g.edges.push_back(link(11, 12));
        g.edges.push_back(link(10, 13, 0.5f));  // fan-in 1: three paths
        g.edges.push_back(link(12, 13, 0.5f));
        g.edges.push_back(link(7, 13));
        g.edges.push_back(link(13, 14));
        g.edges.push_back(link(14, 15));
        g.edges.push_back(link(4, 15, 0.25f));  // fan-in 2
        g.edges.push_back(link(15, 8, 0.1f, true));  // feedback
        g.edges.push_back(link(15, kGraphOutput));
    }
    auto plan = engine::planGraph(g);
    if (!plan) std::abort();
    s.plan = plan.value();
    s.engine = std::make_unique<engine::Engine>();
    s.engine->publish(std::make_unique<engine::Rack>(std::move(nodes), plan.value(), frames, 48000, 0));
    return s;
}

/// The plan's steps as plain code: sums as loops, then the process() call.
void BM_GraphBare(benchmark::State& state) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    Setup s = make(frames, state.range(1) != 0);
    const engine::GraphPlan& p = s.plan;
    const size_t buffers = p.firstPooled() + p.pooledBuffers;
    std::vector<std::vector<float>> store(buffers, std::vector<float>(frames, 0.0f));
    std::vector<float*> ptr(buffers);
    for (size_t b = 0; b < buffers; ++b) ptr[b] = store[b].data();
    auto l = bench::noise(frames), r = bench::noise(frames);
    std::memcpy(ptr[1], l.data(), frames * sizeof(float));
    std::memcpy(ptr[2], r.data(), frames * sizeof(float));
    std::fill(store[0].begin(), store[0].end(), 0.0f);
    engine::flushDenormals();
    auto mix = [&](const engine::GraphPlan::Mix& m) {
        float* dst = ptr[m.target];
        if (m.termCount == 0) std::memset(dst, 0, frames * sizeof(float));
        for (uint32_t k = 0; k < m.termCount; ++k) {
            const auto& t = p.terms[m.firstTerm + k];
            const float* src = ptr[t.source];
            const float g = t.edge == UINT32_MAX ? 1.0f : p.edgeGain[t.edge];
            if (k == 0)
                for (uint32_t f = 0; f < frames; ++f) dst[f] = g * src[f];
            else
                for (uint32_t f = 0; f < frames; ++f) dst[f] += g * src[f];
        }
    };
    for (auto _ : state) {
        const float* ins[engine::kMaxChannels];
        float* outs[engine::kMaxChannels];
        for (const auto& step : p.steps) {
            for (uint32_t m = 0; m < step.mixCount; ++m) mix(p.mixes[step.firstMix + m]);
            for (uint32_t c = 0; c < 2; ++c) {
                ins[c] = ptr[step.in[c]];
                outs[c] = ptr[step.out[c]];
            }
            const auto& inst = s.instances[step.node];
            inst->descriptor().process(inst->get(), ins, outs, frames);
        }
        for (uint32_t c = 0; c < p.outputs; ++c) mix(p.mixes[p.firstOutputMix + c]);
        for (const auto& c : p.feedbackCopies) std::memcpy(ptr[c.target], ptr[c.source], frames * sizeof(float));
        benchmark::DoNotOptimize(ptr[3]);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * frames);
}

/// The same through Engine::process (meters on, as live).
void BM_GraphRack(benchmark::State& state) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    Setup s = make(frames, state.range(1) != 0);
    bench::runEngine(state, *s.engine, frames);
}

}  // namespace

// Args: frames per block, graph (0 = the 8-node mixed chain, 1 = the 16-node graph).
BENCHMARK(BM_GraphBare)->ArgNames({"frames", "graph"})->ArgsProduct({{64, 256}, {0, 1}});
BENCHMARK(BM_GraphRack)->ArgNames({"frames", "graph"})->ArgsProduct({{64, 256}, {0, 1}});
BENCHMARK_MAIN();
