#include <rackterm/loader/Trial.hpp>

#include <rackterm/loader/Loader.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace rackterm::loader {

TrialReport runTrial(const rackterm_processor_v2& d, rackterm_instance* instance, double sampleRateHz,
                     uint32_t blockFrames, const std::function<void(const char*, uint32_t)>& progress) {
    TrialReport report;
    const uint32_t ins = d.input_channels, outs = d.output_channels;
    std::vector<std::vector<float>> in(ins, std::vector<float>(blockFrames)), out(outs, std::vector<float>(blockFrames));
    std::vector<const float*> inPtr(ins);
    std::vector<float*> outPtr(outs);
    for (uint32_t c = 0; c < ins; ++c) inPtr[c] = in[c].data();
    for (uint32_t c = 0; c < outs; ++c) outPtr[c] = out[c].data();
    std::vector<double> times;
    uint32_t seed = 0x2545F491u;
    struct Stage {
        const char* name;
        uint32_t blocks;
    };
    for (const Stage stage : {Stage{"silence", kTrialSilenceBlocks}, Stage{"impulse", kTrialImpulseBlocks},
                              Stage{"noise", kTrialNoiseBlocks}}) {
        for (uint32_t b = 1; b <= stage.blocks; ++b) {
            for (auto& ch : in) {
                if (stage.name[0] == 'n') {
                    for (float& x : ch) {
                        seed = seed * 1664525u + 1013904223u;  // Numerical Recipes' LCG
                        x = static_cast<float>(seed >> 8) / static_cast<float>(1u << 24) - 0.5f;
                    }
                } else {
                    std::fill(ch.begin(), ch.end(), 0.0f);
                    if (stage.name[0] == 'i' && b == 1) ch[0] = 1.0f;
                }
            }
            if (progress) progress(stage.name, b);
            const auto t0 = std::chrono::steady_clock::now();
            d.process(instance, inPtr.data(), outPtr.data(), blockFrames);
            times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            ++report.blocks;
            for (uint32_t c = 0; c < outs && report.problem.empty(); ++c)
                for (float x : out[c])
                    if (!std::isfinite(x)) {
                        report.problem = std::string(std::isnan(x) ? "NaN" : "Inf") + " in output " + std::to_string(c + 1) +
                                         " at block " + std::to_string(b) + " of the " + stage.name;
                        break;
                    }
            if (!report.problem.empty()) break;
        }
        if (!report.problem.empty()) break;
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    report.medianBlockSeconds = sorted.empty() ? 0 : sorted[sorted.size() / 2];
    report.maxBlockSeconds = sorted.empty() ? 0 : sorted.back();
    const double period = blockFrames / sampleRateHz;
    if (report.problem.empty() && report.medianBlockSeconds > period) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "a block takes %.2f ms (median of %u), above the period of %.2f ms (%u frames at %.0f Hz)",
                      report.medianBlockSeconds * 1e3, report.blocks, period * 1e3, blockFrames, sampleRateHz);
        report.problem = buf;
    }
    return report;
}

Result<TrialReport> trialModule(const std::string& path, double sampleRateHz, uint32_t blockFrames,
                                const std::vector<std::pair<std::string, float>>& values,
                                const std::function<void(const char*, uint32_t)>& progress) {
    auto module = loadModule(path, sampleRateHz);
    if (!module) return Error{module.error()};
    auto instance = createInstance(module.value(), sampleRateHz, blockFrames);
    if (!instance) return Error{instance.error()};
    const rackterm_processor_v2& d = instance.value()->descriptor();
    const std::vector<float> v = valuesById(d, values);
    d.apply_plain_values(instance.value()->get(), v.data(), v.size());
    return runTrial(d, instance.value()->get(), sampleRateHz, blockFrames, progress);
}

std::vector<float> valuesById(const rackterm_processor_v2& d, const std::vector<std::pair<std::string, float>>& byId) {
    std::vector<float> v(d.param_count);
    for (uint32_t i = 0; i < d.param_count; ++i) {
        const rackterm_param_info& p = d.params[i];
        v[i] = p.default_value;
        for (const auto& [id, value] : byId)
            if (id == p.id && std::isfinite(value)) v[i] = std::clamp(value, p.min, p.max);
    }
    return v;
}

}  // namespace rackterm::loader
