// What the rack benchmarks share: a noise block and the timed loop that runs
// an Engine as the audio thread does, draining meters as the console would.
#pragma once

#include <rackterm/engine/rt/Engine.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace rackterm::bench {

/// `n` samples of white noise in [-0.5, 0.5), the same every call.
inline std::vector<float> noise(size_t n) {
    std::vector<float> v(n);
    uint32_t s = 1;
    for (auto& x : v) x = static_cast<float>((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    return v;
}

/// Time `engine`'s process() on stereo noise blocks of `frames` frames (meters
/// on; drained every 64 blocks, the control side's work counted in).
inline void runEngine(benchmark::State& state, engine::Engine& engine, uint32_t frames) {
    auto l = noise(frames), r = noise(frames);
    std::vector<float> ol(frames), orr(frames);
    for (auto _ : state) {
        const float* in[2] = {l.data(), r.data()};
        float* out[2] = {ol.data(), orr.data()};
        engine.process(in, out, frames);
        benchmark::DoNotOptimize(ol.data());
        benchmark::ClobberMemory();
        if ((state.iterations() & 63) == 0) {
            engine::MeterFrame m;
            engine.latestMeters(m);
        }
    }
    state.SetItemsProcessed(state.iterations() * frames);
}

}  // namespace rackterm::bench
