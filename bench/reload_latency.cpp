// Hot-reload latency on a copy of examples/processors: save drive.cpp, then
// time each stage of the pipeline: save -> build start (inotify and the
// control loop; the build starts on the first write), the compiler (the build
// command's wall time), loading + creating + publishing the new instance, and
// the wait for the first block that runs it; and save -> hearing, all of it. This thread plays
// the audio thread, one 256-frame block per millisecond of polling.
//
//   build/bench/reload_latency [RUNS]     (default 5; prints medians)
#include <rackterm/app/HotReload.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
    const fs::path dir = fs::temp_directory_path() / ("rackterm-reload-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    fs::copy(std::string(RACKTERM_BENCH_SOURCE_DIR) + "/examples/processors", dir / "processors",
             fs::copy_options::recursive);
    fs::remove_all(dir / "processors" / "build");
    const std::string sdk = std::string(RACKTERM_BENCH_SOURCE_DIR) + "/src/sdk/include";
    std::ofstream(dir / "s.toml") << "[[node]]\nid = \"drive\"\npath = \"processors/build/libdrive.so\"\n"
                                     "watch = { source = \"processors\", build = \"cmake -S processors -B processors/build "
                                     "-DRACKTERM_SDK_INCLUDE=" << sdk << " >/dev/null && cmake --build processors/build\" }\n";
    auto session = config::loadSession((dir / "s.toml").string());
    if (!session || !app::buildMissingModules(session.value(), [](const std::string&) {})) return 1;
    auto rt = app::Runtime::open(session.value(), 48000, 256);
    if (!rt) {
        std::fprintf(stderr, "%s\n", rt.error().c_str());
        return 1;
    }
    app::Runtime& runtime = *rt.value();
    double buildStart = 0, buildSeconds = 0, swapDone = 0;
    app::HotReload hot(
        runtime,
        [&](const std::string& l) {
            if (l.rfind("building ", 0) == 0) buildStart = now();
            if (l.find("build ok in ") != std::string::npos) swapDone = now();
        },
        [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); });
    hot.start();
    std::vector<float> in(256, 0.1f), l(256), r(256);
    const float* ins[2] = {in.data(), in.data()};
    float* outs[2] = {l.data(), r.data()};

    std::vector<double> toStart, compiler, swap, firstBlock, total, rest;
    const fs::path source = dir / "processors" / "drive.cpp";
    for (int run = 0; run < runs; ++run) {
        std::stringstream text;
        text << std::ifstream(source).rdbuf();
        std::string s = text.str();
        s += "\n// edit " + std::to_string(run) + "\n";
        buildStart = swapDone = 0;
        const double saved = now();
        std::ofstream(source) << s;
        const uint64_t servingSerial = runtime.engine().rack()->serial();
        double heard = 0;
        while (now() - saved < 120 && heard == 0) {
            auto fds = hot.pollFds();
            ::poll(fds.data(), fds.size(), 1);
            hot.onReadable(now());
            hot.tick(now());
            const bool published = swapDone > 0;
            runtime.engine().process(ins, outs, 256);  // one block, as the audio thread would
            if (published) {
                engine::MeterFrame m;
                runtime.engine().latestMeters(m);
                if (m.rackSerial != servingSerial) heard = now();
            }
            runtime.tick();
        }
        if (heard == 0) {
            std::fprintf(stderr, "no swap within 120 s\n");
            return 1;
        }
        buildSeconds = hot.lastBuildSeconds(0);
        toStart.push_back(buildStart - saved);
        compiler.push_back(buildSeconds);
        swap.push_back(swapDone - buildStart - buildSeconds);
        firstBlock.push_back(heard - swapDone);
        total.push_back(heard - saved);
        rest.push_back(heard - saved - buildSeconds);  // per run: medians do not subtract
        for (int i = 0; i < 50; ++i) {  // let the crossfade finish
            runtime.engine().process(ins, outs, 256);
            runtime.tick();
        }
    }
    // The swap alone, repeated: load a private copy, check, create, map values, publish.
    std::vector<double> swapOnly;
    for (int i = 0; i < 20; ++i) {
        const double t0 = now();
        const auto swapped = runtime.swapNode(runtime.nodeId(0), runtime.modulePath(0));
        if (!swapped.ready() || !swapped.result()) return 1;
        swapOnly.push_back(now() - t0);
        for (int k = 0; k < 50; ++k) {
            runtime.engine().process(ins, outs, 256);
            runtime.tick();
        }
    }
    std::printf("hot reload of examples/processors/drive.cpp, medians of %d runs:\n", runs);
    std::printf("  save -> build start (inotify, first write):      %7.1f ms\n", median(toStart) * 1e3);
    std::printf("  compiler (build command wall time):              %7.1f ms\n", median(compiler) * 1e3);
    std::printf("  build end -> swap published (load, create):      %7.1f ms\n", median(swap) * 1e3);
    std::printf("  swapNode() alone, 20 times:                      %7.2f ms\n", median(swapOnly) * 1e3);
    std::printf("  swap published -> first block of the new code:   %7.2f ms (at most one block)\n", median(firstBlock) * 1e3);
    std::printf("  save -> hearing the change:                      %7.1f ms\n", median(total) * 1e3);
    std::printf("  everything but the compiler:                     %7.1f ms\n", median(rest) * 1e3);
    fs::remove_all(dir);
    return 0;
}
