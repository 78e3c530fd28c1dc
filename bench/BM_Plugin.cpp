// An LV2 plugin's cost per block through the rack (the adapter behind the
// processor ABI, in an Engine with meters and the NaN guard, as live), and
// through the adapter alone (its process() called directly), against
// calling lilv_instance_run() directly on the same plugin, at 64 and 256
// frames. Target: at most 2 % more at 256 frames. Plugins: swh SC4
// (a compressor) and mda Delay, at their defaults, on stereo noise.
#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/loader/Loader.hpp>

#include "EngineLoop.hpp"

#include <benchmark/benchmark.h>
#include <lilv/lilv.h>
#include <lv2/core/lv2.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace rackterm;

namespace {

const char* const kPlugins[] = {"http://plugin.org.uk/swh-plugins/sc4", "http://drobilla.net/plugins/mda/Delay"};

/// lilv alone: a world, the plugin at its defaults, stereo noise in, run().
void BM_Lv2Direct(benchmark::State& state) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    LilvWorld* world = lilv_world_new();
    lilv_world_load_all(world);
    LilvNode* uri = lilv_new_uri(world, kPlugins[state.range(1)]);
    const LilvPlugin* plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
    if (!plugin) std::abort();
    LilvInstance* instance = lilv_plugin_instantiate(plugin, 48000, nullptr);
    const uint32_t ports = lilv_plugin_get_num_ports(plugin);
    std::vector<float> defaults(ports), controls(ports);
    lilv_plugin_get_port_ranges_float(plugin, nullptr, nullptr, defaults.data());
    LilvNode* audio = lilv_new_uri(world, LV2_CORE__AudioPort);
    LilvNode* input = lilv_new_uri(world, LV2_CORE__InputPort);
    auto l = bench::noise(frames), r = bench::noise(frames);
    std::vector<float> ol(frames), orr(frames);
    float* ins[2] = {l.data(), r.data()};
    float* outs[2] = {ol.data(), orr.data()};
    int in = 0, out = 0;
    for (uint32_t p = 0; p < ports; ++p) {
        const LilvPort* port = lilv_plugin_get_port_by_index(plugin, p);
        if (lilv_port_is_a(plugin, port, audio)) {
            const bool isIn = lilv_port_is_a(plugin, port, input);
            lilv_instance_connect_port(instance, p, isIn ? ins[in++ % 2] : outs[out++ % 2]);
        } else {
            controls[p] = std::isnan(defaults[p]) ? 0.0f : defaults[p];
            lilv_instance_connect_port(instance, p, &controls[p]);
        }
    }
    lilv_instance_activate(instance);
    engine::flushDenormals();
    for (auto _ : state) {
        lilv_instance_run(instance, frames);
        benchmark::DoNotOptimize(ol.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * frames);
    lilv_instance_deactivate(instance);
    lilv_instance_free(instance);
    for (LilvNode* n : {uri, audio, input}) lilv_node_free(n);
    lilv_world_free(world);
}

/// The same plugin as a node: loadModule("lv2:URI"), one node in an Engine.
void BM_Lv2InRack(benchmark::State& state) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    auto module = loader::loadModule(std::string("lv2:") + kPlugins[state.range(1)], 48000);
    if (!module) std::abort();
    auto inst = loader::createInstance(module.value(), 48000, frames);
    if (!inst) std::abort();
    std::shared_ptr<loader::Instance> owned = std::move(inst.value());
    const auto& d = owned->descriptor();
    std::vector<float> values;
    for (uint32_t p = 0; p < d.param_count; ++p) values.push_back(d.params[p].default_value);
    std::vector<engine::NodeSetup> nodes(1);
    nodes[0].id = "fx";
    nodes[0].descriptor = &d;
    nodes[0].instance = owned->get();
    nodes[0].owner = owned;
    nodes[0].values = values;
    engine::Engine engine;
    engine.publish(std::make_unique<engine::Rack>(std::move(nodes), frames, 48000, 0));
    engine::flushDenormals();
    bench::runEngine(state, engine, frames);
}

/// The adapter alone: the node's descriptor process() called directly, no rack around it.
void BM_Lv2Adapter(benchmark::State& state) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    auto module = loader::loadModule(std::string("lv2:") + kPlugins[state.range(1)], 48000);
    if (!module) std::abort();
    auto inst = loader::createInstance(module.value(), 48000, frames);
    if (!inst) std::abort();
    const auto& d = inst.value()->descriptor();
    auto l = bench::noise(frames), r = bench::noise(frames);
    std::vector<float> ol(frames), orr(frames);
    const float* ins[2] = {l.data(), r.data()};
    float* outs[2] = {ol.data(), orr.data()};
    engine::flushDenormals();
    for (auto _ : state) {
        d.process(inst.value()->get(), ins, outs, frames);
        benchmark::DoNotOptimize(ol.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations() * frames);
}

}  // namespace

// Args: frames per block, plugin (0 = swh SC4, 1 = mda Delay).
BENCHMARK(BM_Lv2Adapter)->ArgNames({"frames", "plugin"})->ArgsProduct({{64, 256}, {0, 1}});
BENCHMARK(BM_Lv2Direct)->ArgNames({"frames", "plugin"})->ArgsProduct({{64, 256}, {0, 1}});
BENCHMARK(BM_Lv2InRack)->ArgNames({"frames", "plugin"})->ArgsProduct({{64, 256}, {0, 1}});
BENCHMARK_MAIN();
