// Hot swap through the real Runtime and engine (offline, this thread plays
// the audio thread): parameters survive, new ones start at their default,
// removed ones disappear, out-of-range values are clamped and reported; the
// swap is crossfaded (no step larger than the clean sine's), never silent,
// the new instance runs from the next block, and the old module is unloaded.
#include "support/Support.hpp"

#include <rackterm/engine/rt/Engine.hpp>

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Runtime.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <cmath>
#include <fstream>

using namespace rackterm;

namespace {

std::string fixture(int variant) { return test::fixtureDir() + "/libfixture_swap_" + std::to_string(variant) + ".so"; }

size_t mappedCount(const std::string& needle) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    size_t n = 0;
    while (std::getline(maps, line)) n += line.find(needle) != std::string::npos;
    return n;
}

std::unique_ptr<app::Runtime> open(const std::string& params, uint32_t block = 64) {
    auto s = config::parseSession("[[node]]\nid = \"sw\"\npath = \"" + fixture(1) + "\"\nparams = " + params + "\n",
                                  "swap.toml");
    EXPECT_TRUE(s) << s.error();
    auto r = app::Runtime::open(s.value(), 48000, block);
    EXPECT_TRUE(r) << r.error();
    return std::move(r.value());
}

/// Play `blocks` blocks of a 1 kHz sine (amplitude 0.5) through the runtime; append output (left).
void play(app::Runtime& rt, uint32_t blocks, uint64_t& phase, std::vector<float>& out, uint32_t block = 64) {
    std::vector<float> in(block), l(block), r(block);
    for (uint32_t b = 0; b < blocks; ++b) {
        for (uint32_t i = 0; i < block; ++i, ++phase)
            in[i] = 0.5f * static_cast<float>(std::sin(2 * M_PI * 1000.0 * static_cast<double>(phase) / 48000.0));
        const float* ins[2] = {in.data(), in.data()};
        float* outs[2] = {l.data(), r.data()};
        rt.engine().process(ins, outs, block);
        out.insert(out.end(), l.begin(), l.end());
        rt.tick();
    }
}

/// Swap node 0 to `path`; the rack has settled in these tests, so the swap goes out at once.
Result<app::SwapReport> swapNow(app::Runtime& rt, const std::string& path) {
    auto later = rt.swapNode(rt.nodeId(0), path);
    if (!later.ready()) return Error{"the swap is still pending"};
    return later.result();
}

float largestStep(const std::vector<float>& x) {
    float m = 0;
    for (size_t i = 1; i < x.size(); ++i) m = std::max(m, std::fabs(x[i] - x[i - 1]));
    return m;
}

}  // namespace

TEST(Swap, ParametersSurviveNewStartAtDefaultRemovedGoClampedReported) {
    auto rt = open("{ gain_db = 20.0, mix = 0.5 }");
    auto report = swapNow(*rt, fixture(2));
    ASSERT_TRUE(report) << report.error();
    EXPECT_EQ(report.value().added, 1u);
    EXPECT_EQ(report.value().removed, 1u);
    ASSERT_EQ(report.value().clamped.size(), 1u);
    EXPECT_EQ(report.value().clamped[0], "gain_db: 20.0 dB -> 12.0 dB");
    EXPECT_EQ(report.value().summary(), "2 parameters (+1 new, -1 removed); clamped gain_db: 20.0 dB -> 12.0 dB");
    EXPECT_STREQ(rt->descriptor(0).version, "2.0.0");
    EXPECT_FLOAT_EQ(rt->value(0, 0), 12.0f);  // survived, clamped
    EXPECT_FLOAT_EQ(rt->value(0, 1), 0.25f);  // tone: new, default
    const auto& params = rt->nodeSpec(0).params;
    ASSERT_EQ(params.size(), 1u) << "mix removed from the session";
    EXPECT_EQ(params[0].id, "gain_db");
    EXPECT_EQ(params[0].value, 12.0);
    EXPECT_TRUE(rt->dirty());
    EXPECT_NE(config::formatSession(rt->document()).find("params = { gain_db = 12.0 }"), std::string::npos);
}

TEST(Swap, CrossfadedNoClickNoGapNextBlock) {
    auto rt = open("{ gain_db = 0.0 }");
    uint64_t phase = 0;
    std::vector<float> clean, out;
    play(*rt, 200, phase, clean);
    const float cleanStep = largestStep(clean);
    ASSERT_GT(cleanStep, 0.05f);
    for (int swap = 0; swap < 100; ++swap) {
        const size_t before = out.size();
        auto r = swapNow(*rt, fixture(swap % 2 == 0 ? 2 : 1));
        ASSERT_TRUE(r) << r.error();
        play(*rt, 1, phase, out);
        // The next block already carries the new build: a swap to build 2 (-6 dB) lowers the level within it.
        play(*rt, 20, phase, out);
        float peakLate = 0;
        for (size_t i = out.size() - 64 * 5; i < out.size(); ++i) peakLate = std::max(peakLate, std::fabs(out[i]));
        EXPECT_NEAR(peakLate, swap % 2 == 0 ? 0.25f : 0.5f, 0.02f) << "swap " << swap << " took effect";
        for (size_t i = before; i + 64 <= out.size(); i += 64) {  // no block of silence
            float peak = 0;
            for (size_t k = i; k < i + 64; ++k) peak = std::max(peak, std::fabs(out[k]));
            ASSERT_GT(peak, 0.01f) << "silent block during swap " << swap;
        }
        EXPECT_FALSE(rt->swapping()) << "the crossfade finished and the clean rack went out";
    }
    EXPECT_LE(largestStep(out), 2.0f * cleanStep) << "a click: a step larger than twice the clean sine's";
}

TEST(Swap, WithoutCrossfadeTheHarnessSeesTheClick) {
    // The same harness with a crossfade of one frame: proves the step test can fail.
    auto s = config::parseSession("[engine]\ncrossfade_ms = 0.1\n[[node]]\nid = \"sw\"\npath = \"" + fixture(1) + "\"\n",
                                  "swap.toml");
    ASSERT_TRUE(s);
    auto r = app::Runtime::open(s.value(), 48000, 64);
    ASSERT_TRUE(r);
    auto& rt = *r.value();
    uint64_t phase = 12;  // start the swap near a peak of the sine
    std::vector<float> clean, out;
    play(rt, 50, phase, clean);
    for (int swap = 0; swap < 20; ++swap) {
        ASSERT_TRUE(swapNow(rt, fixture(swap % 2 == 0 ? 2 : 1)));
        play(rt, 3 + static_cast<uint32_t>(swap % 5), phase, out);
    }
    EXPECT_GT(largestStep(out), 2.0f * largestStep(clean));
}

TEST(Swap, ValuesTheMappingKeepsStayAsWrittenAndSaved) {
    // -6.3 is not a float: a swap that keeps it must not write 6.300000190734863 or mark the session unsaved.
    auto rt = open("{ gain_db = -6.3 }");
    ASSERT_TRUE(swapNow(*rt, fixture(1)));
    ASSERT_EQ(rt->nodeSpec(0).params.size(), 1u);
    EXPECT_EQ(rt->nodeSpec(0).params[0].value, -6.3);
    EXPECT_FALSE(rt->dirty());
}

TEST(Swap, ABypassedNodeSwapsWithoutHoldingLaterOperations) {
    // Fully bypassed, the node's crossfade has nothing to fade: it must end,
    // or every later add, remove and undo would wait behind it.
    auto rt = open("{ gain_db = 0.0 }");
    uint64_t phase = 0;
    std::vector<float> out;
    rt->setBypass(0, true);
    play(*rt, 10, phase, out);
    ASSERT_TRUE(swapNow(*rt, fixture(2)));
    play(*rt, 10, phase, out);
    EXPECT_FALSE(rt->swapping()) << "the swap's operation ended";
    auto added = rt->addNode("after", fixture(1));
    play(*rt, 10, phase, out);
    ASSERT_TRUE(added.ready());
    EXPECT_TRUE(added.result()) << added.result().error();
}

TEST(Swap, AnUndoStepTheNewProcessorCannotTakeIsSkippedAndLeavesTheSessionUnsaved) {
    auto rt = open("{ gain_db = 0.0 }");
    app::CommandContext ctx{*rt};
    ASSERT_TRUE(app::execute(ctx, "set sw.mix 0.5").ok);
    ASSERT_TRUE(swapNow(*rt, fixture(2)));  // build 2 has no mix
    const app::Reply undo = app::execute(ctx, "undo");
    EXPECT_FALSE(undo.ok);
    EXPECT_EQ(undo.text.rfind("undo set sw.mix failed (skipped): ", 0), 0u) << undo.text;
    EXPECT_TRUE(rt->dirty()) << "the document is not what the journal's state would be";
    EXPECT_EQ(app::execute(ctx, "undo").text, "nothing to undo");
}

TEST(Swap, FailedLoadKeepsTheOldProcessorPlaying) {
    auto rt = open("{ gain_db = 0.0 }");
    auto r = swapNow(*rt, test::fixtureDir() + "/libfixture_abi_v1.so");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("ABI v1"), std::string::npos);
    EXPECT_STREQ(rt->descriptor(0).version, "1.0.0");
    EXPECT_FALSE(rt->swapping());
}

TEST(Swap, OldModuleIsUnloadedOnceNothingReachesIt) {
    auto rt = open("{ gain_db = 0.0 }");
    uint64_t phase = 0;
    std::vector<float> out;
    play(*rt, 4, phase, out);
    EXPECT_EQ(mappedCount("-libfixture_swap_2.so"), 0u);
    ASSERT_TRUE(swapNow(*rt, fixture(2)));
    EXPECT_GT(mappedCount("-libfixture_swap_1.so"), 0u) << "still crossfading from build 1";
    play(*rt, 20, phase, out);  // fade over, clean rack published and taken
    play(*rt, 2, phase, out);
    rt->tick();
    EXPECT_GT(mappedCount("-libfixture_swap_1.so"), 0u) << "build 1 stays loaded while build 2 is watched";
    std::this_thread::sleep_for(std::chrono::duration<double>(app::kWatchSeconds + 0.1));
    rt->tick();
    play(*rt, 2, phase, out);
    rt->tick();
    EXPECT_EQ(mappedCount("-libfixture_swap_1.so"), 0u) << "build 1 was dlclose()d once the watch ended";
    EXPECT_GT(mappedCount("-libfixture_swap_2.so"), 0u);
}

TEST(Swap, ReloadCommand) {
    auto rt = open("{ gain_db = 3.0 }");
    app::CommandContext ctx{*rt};
    auto reply = app::execute(ctx, "reload sw");
    ASSERT_TRUE(reply.ok) << reply.text;
    EXPECT_EQ(reply.text, "sw: reloaded, 2 parameters (+0 new, -0 removed)");
    EXPECT_FLOAT_EQ(rt->value(0, 0), 3.0f);
    EXPECT_NE(app::execute(ctx, "reload nope").text.find("no node 'nope'"), std::string::npos);
}
