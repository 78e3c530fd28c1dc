// Parity: every built-in processor, fed the same real recording and the same
// parameter automation schedule through the static reference library and
// through the dlopen()ed module, gives the same output sample by sample.
#include "support/Support.hpp"

#include <Builtins.hpp>
#include <rackterm/engine/Player.hpp>
#include <rackterm/loader/Loader.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace rackterm;

namespace {

struct Automation {
    uint32_t block;
    uint32_t param;
    float value;
};

/// A deterministic schedule: every few blocks, one parameter jumps somewhere in its range.
std::vector<Automation> schedule(const rackterm_processor_v2& d, uint32_t blocks) {
    std::mt19937 rng(1234);
    std::vector<Automation> out;
    if (d.param_count == 0) return out;
    for (uint32_t b = 3; b < blocks; b += 1 + rng() % 9) {
        const uint32_t p = rng() % d.param_count;
        const auto& info = d.params[p];
        float v = info.min + (info.max - info.min) * std::uniform_real_distribution<float>(0, 1)(rng);
        if (info.flags & RACKTERM_PARAM_INTEGER) v = std::round(v);
        out.push_back({b, p, v});
    }
    return out;
}

std::vector<float> runThrough(const rackterm_processor_v2& d, rackterm_instance* inst,
                              const engine::AudioData& input, const std::vector<Automation>& autos) {
    std::vector<float> values(d.param_count);
    for (uint32_t i = 0; i < d.param_count; ++i) values[i] = d.params[i].default_value;
    std::vector<float> out(input.frames * 2);
    std::vector<float> l(256), r(256);
    size_t a = 0, pos = 0;
    uint32_t block = 0;
    const uint32_t sizes[] = {256, 64, 37, 128, 1, 200};
    while (pos < input.frames) {
        while (a < autos.size() && autos[a].block == block) {
            values[autos[a].param] = autos[a].value;
            d.apply_plain_values(inst, values.data(), values.size());
            ++a;
        }
        const uint32_t n = static_cast<uint32_t>(std::min<size_t>(sizes[block % 6], input.frames - pos));
        const float* in[2] = {input.left.data() + pos, input.right.data() + pos};
        float* o[2] = {l.data(), r.data()};
        d.process(inst, in, o, n);
        for (uint32_t i = 0; i < n; ++i) {
            out[2 * (pos + i)] = l[i];
            out[2 * (pos + i) + 1] = r[i];
        }
        pos += n;
        ++block;
    }
    return out;
}

}  // namespace

TEST(Parity, StaticReferenceEqualsDlopenPathSampleBySample) {
    auto input = engine::decodeFile("/usr/share/sounds/alsa/Front_Center.wav", 48000);
    ASSERT_TRUE(input) << input.error();
    for (const rackterm_processor_v2* const* p = processors::builtinDescriptors(); *p; ++p) {
        const rackterm_processor_v2& ref = **p;
        SCOPED_TRACE(ref.id);
        auto module = loader::loadModule(test::moduleDir() + "/lib" + ref.id + ".so");
        ASSERT_TRUE(module) << module.error();
        const rackterm_processor_v2& dyn = module.value()->descriptor();
        ASSERT_NE(&ref, &dyn) << "two separate code paths";
        ASSERT_EQ(ref.param_count, dyn.param_count);
        const auto autos = schedule(ref, static_cast<uint32_t>(input.value()->frames / 64));
        ASSERT_TRUE(ref.param_count == 0 || autos.size() > 20);

        rackterm_instance* a = ref.create(48000, 256);
        auto b = loader::createInstance(module.value(), 48000, 256);
        ASSERT_TRUE(a);
        ASSERT_TRUE(b) << b.error();
        const auto outA = runThrough(ref, a, *input.value(), autos);
        const auto outB = runThrough(dyn, b.value()->get(), *input.value(), autos);
        ref.destroy(a);
        ASSERT_EQ(outA.size(), outB.size());
        size_t firstDiff = outA.size();
        for (size_t i = 0; i < outA.size(); ++i)
            if (std::memcmp(&outA[i], &outB[i], sizeof(float)) != 0) {
                firstDiff = i;
                break;
            }
        EXPECT_EQ(firstDiff, outA.size()) << "outputs differ at sample " << firstDiff;
        double energy = 0;
        for (float v : outA) energy += static_cast<double>(v) * v;
        EXPECT_GT(energy, 1.0) << "the processor produced sound";
    }
}
