// Engine overhead per block: a rack of 8 gain nodes (dlopen()ed modules, as
// live) run through Engine::process, against calling the same instances'
// process() directly in a loop. Also the cost of publishing a parameter
// change and of the audio side taking it.
#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/loader/Loader.hpp>

#include "EngineLoop.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace rackterm;

namespace {

struct Chain {
    std::vector<std::shared_ptr<loader::Instance>> instances;
    std::unique_ptr<engine::Engine> engine;
};

/// 8 nodes: all gain (-0.5 dB), or a mixed chain of real DSP at defaults.
Chain makeChain(uint32_t frames, bool mixed = false) {
    Chain c;
    const char* names[8] = {"gain", "gain", "gain", "gain", "gain", "gain", "gain", "gain"};
    const char* mix[8] = {"biquad", "saturator", "gain", "delay", "biquad", "saturator", "oscillator", "gain"};
    std::vector<engine::NodeSetup> nodes;
    for (int i = 0; i < 8; ++i) {
        auto module = loader::loadModule(std::string(RACKTERM_BENCH_MODULE_DIR) + "/lib" + (mixed ? mix[i] : names[i]) + ".so");
        if (!module) std::abort();
        auto inst = loader::createInstance(module.value(), 48000, frames);
        std::shared_ptr<loader::Instance> owned = std::move(inst.value());
        const auto& d = owned->descriptor();
        std::vector<float> values;
        for (uint32_t p = 0; p < d.param_count; ++p) values.push_back(d.params[p].default_value);
        if (!mixed) values[0] = -0.5f;
        d.apply_plain_values(owned->get(), values.data(), values.size());
        c.instances.push_back(owned);
        engine::NodeSetup setup;
        setup.id = "n" + std::to_string(i);
        setup.descriptor = &d;
        setup.instance = owned->get();
        setup.owner = owned;
        setup.values = values;
        nodes.push_back(std::move(setup));
    }
    c.engine = std::make_unique<engine::Engine>();
    c.engine->publish(std::make_unique<engine::Rack>(std::move(nodes), frames, 48000, 0));
    return c;
}

void BM_BareProcess(benchmark::State& state) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    Chain c = makeChain(frames, state.range(1) != 0);
    auto l = bench::noise(frames), r = bench::noise(frames);
    std::vector<float> al(frames), ar(frames), bl(frames), br(frames);
    engine::flushDenormals();
    for (auto _ : state) {
        const float* src[2] = {l.data(), r.data()};
        float* dst[2] = {al.data(), ar.data()};
        float* spare[2] = {bl.data(), br.data()};
        for (auto& inst : c.instances) {  // ping-pong, as the rack does
            inst->descriptor().process(inst->get(), src, dst, frames);
            src[0] = dst[0];
            src[1] = dst[1];
            std::swap(dst[0], spare[0]);
            std::swap(dst[1], spare[1]);
        }
        benchmark::DoNotOptimize(bl.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * frames);
}

void BM_RackProcess(benchmark::State& state) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    Chain c = makeChain(frames, state.range(1) != 0);
    bench::runEngine(state, *c.engine, frames);
}

void BM_SnapshotPublish(benchmark::State& state) {
    Chain c = makeChain(64);
    float v = -1.0f;
    for (auto _ : state) {
        benchmark::DoNotOptimize(c.engine->setValue(3, 0, v));
        v = v < -10.0f ? -1.0f : v - 0.25f;
    }
}

void BM_SnapshotPublishAndApply(benchmark::State& state) {
    Chain c = makeChain(64);
    std::vector<float> ol(64), orr(64);
    float* out[2] = {ol.data(), orr.data()};
    float v = -1.0f;
    for (auto _ : state) {
        c.engine->setValue(3, 0, v);
        c.engine->process(nullptr, out, 64);
        v = v < -10.0f ? -1.0f : v - 0.25f;
        if ((state.iterations() & 31) == 0) {
            engine::MeterFrame m;
            c.engine->latestMeters(m);
        }
    }
}

}  // namespace

// Args: frames per block, chain (0 = 8 gains, 1 = mixed real DSP).
BENCHMARK(BM_BareProcess)->ArgNames({"frames", "mixed"})->ArgsProduct({{64, 256}, {0, 1}});
BENCHMARK(BM_RackProcess)->ArgNames({"frames", "mixed"})->ArgsProduct({{64, 256}, {0, 1}});
BENCHMARK(BM_SnapshotPublish);
BENCHMARK(BM_SnapshotPublishAndApply);
BENCHMARK_MAIN();
