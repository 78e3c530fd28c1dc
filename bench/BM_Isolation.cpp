// The cost of running a processor isolated (rackterm-sandbox child, shared
// memory, one futex wake each way per block) against the same processor in
// process: one block of `frames` frames (2 channels in, 2 out) through the
// descriptor's process(), as the rack calls it. BM_*Idle leave 1 ms between
// blocks (the child sleeps in its futex wait, as live between periods) and
// time only the call (manual time); the others run blocks back to back.
// The round trip is isolated - in process, per node per block.
#include <rackterm/loader/Isolation.hpp>
#include <rackterm/loader/Loader.hpp>

#include "EngineLoop.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace rackterm;

namespace {

/// A gain (-0.5 dB) instance, in process or isolated.
std::unique_ptr<loader::Instance> gain(uint32_t frames, bool isolated) {
    auto module = loader::loadModule(std::string(RACKTERM_BENCH_MODULE_DIR) + "/libgain.so");
    if (!module) std::abort();
    const auto& d = module.value()->descriptor();
    std::vector<float> values;
    for (uint32_t p = 0; p < d.param_count; ++p) values.push_back(d.params[p].default_value);
    values[0] = -0.5f;
    std::unique_ptr<loader::Instance> inst;
    if (isolated) {
        auto r = loader::createIsolatedInstance(module.value(), 48000, frames, values,
                                                {RACKTERM_BENCH_SANDBOX, "bench", 0, false});
        if (!r) std::abort();
        inst = std::move(r.value());
    } else {
        auto r = loader::createInstance(module.value(), 48000, frames);
        if (!r) std::abort();
        inst = std::move(r.value());
    }
    inst->descriptor().apply_plain_values(inst->get(), values.data(), values.size());
    return inst;
}

void run(benchmark::State& state, bool isolated, bool idle) {
    const auto frames = static_cast<uint32_t>(state.range(0));
    auto inst = gain(frames, isolated);
    auto l = bench::noise(frames), r = bench::noise(frames);
    std::vector<float> ol(frames), orr(frames);
    const float* in[2] = {l.data(), r.data()};
    float* out[2] = {ol.data(), orr.data()};
    const auto& d = inst->descriptor();
    for (int i = 0; i < 100; ++i) d.process(inst->get(), in, out, frames);  // warm
    for (auto _ : state) {
        if (idle) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            const auto t0 = std::chrono::steady_clock::now();
            d.process(inst->get(), in, out, frames);
            state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        } else {
            d.process(inst->get(), in, out, frames);
        }
        benchmark::DoNotOptimize(ol.data());
    }
    if (isolated) {  // a late reply now and then is the machine's noise; a failed child is an error
        state.counters["late"] = static_cast<double>(inst->isolated()->lateBlocks());
        std::string why;
        for (const auto& l : inst->isolated()->supervise(0, false)) why += " " + l;
        if (inst->isolated()->failureCount() > 0) state.SkipWithError(("the child failed:" + why).c_str());
    }
}

void BM_InProcess(benchmark::State& state) { run(state, false, false); }
void BM_Isolated(benchmark::State& state) { run(state, true, false); }
void BM_InProcessIdle(benchmark::State& state) { run(state, false, true); }
void BM_IsolatedIdle(benchmark::State& state) { run(state, true, true); }

}  // namespace

BENCHMARK(BM_InProcess)->Arg(64)->Arg(256);
BENCHMARK(BM_Isolated)->Arg(64)->Arg(256);
BENCHMARK(BM_InProcessIdle)->Arg(256)->UseManualTime()->Iterations(2000);
BENCHMARK(BM_IsolatedIdle)->Arg(256)->UseManualTime()->Iterations(2000);

BENCHMARK_MAIN();
