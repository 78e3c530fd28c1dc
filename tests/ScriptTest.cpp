// Scripts: `at` automation rendered offline equals the same automation
// applied as a parameter schedule in-process (same frames, same block
// splits); errors name SCRIPT:LINE; `rackterm run` on a private jackd.
#include "support/Support.hpp"

#include <rackterm/engine/rt/Engine.hpp>
#include <rackterm/app/Runtime.hpp>
#include <rackterm/app/Script.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

using namespace rackterm;

namespace {
const char* kSession = "[session]\nname = \"scripted\"\n[engine]\nblock = 256\noutputs = []\n"
                       "[[node]]\nid = \"lp\"\nprocessor = \"biquad\"\nparams = { frequency_hz = 8000.0 }\n"
                       "[[node]]\nid = \"g\"\nprocessor = \"gain\"\n";

class Scripts : public ::testing::Test {
protected:
    void SetUp() override {
        dir = test::tempDir("script");
        test::writeText(dir + "/s.toml", kSession);
        auto in = test::readSound("/usr/share/sounds/alsa/Front_Center.wav");
        test::writeSound(dir + "/in.wav", in);  // float copy: output is float too, so the comparison is exact
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    test::RunResult render(const std::string& script) {
        test::writeText(dir + "/a.txt", script);
        return test::run({test::binary(), "render", dir + "/s.toml", "-i", dir + "/in.wav", "-o", dir + "/out.wav", "--script",
                          dir + "/a.txt"},
                         {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    }
    std::string dir;
};
}  // namespace

TEST(ScriptParse, TimesAndErrors) {
    EXPECT_DOUBLE_EQ(app::parseTime("1.5s").value(), 1.5);
    EXPECT_DOUBLE_EQ(app::parseTime("250ms").value(), 0.25);
    EXPECT_DOUBLE_EQ(app::parseTime("1:30").value(), 90.0);
    EXPECT_DOUBLE_EQ(app::parseTime("2").value(), 2.0);
    EXPECT_FALSE(app::parseTime("soon"));
    auto s = app::parseScript("# c\nset a.b 1\n\nat 1.5s set a.b 2   # later\nat x set a.b 3\n", "t.txt");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "t.txt:5: 'x' is not a time; write 1.5s, 250ms or 1:30");
    auto ok = app::parseScript("set a.b 1\nat 1.5s set a.b 2\n", "t.txt");
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->lines.size(), 2u);
    EXPECT_EQ(*ok->lines[1].atSeconds, 1.5);
    EXPECT_EQ(ok->lines[1].line, 2u);
}

TEST_F(Scripts, TimedAutomationRenderedEqualsTheSameScheduleInProcess) {
    auto r = render("set g.gain_db -6\nat 0.25s set lp.frequency_hz 1.5k\nat 0.5s set g.gain_db -20\n"
                    "at 0.777s bypass lp on\nat 1.0001s set g.gain_db 3dB\n");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto rendered = test::readSound(dir + "/out.wav");

    // The same changes, applied in-process at the same frames, blocks split there as well.
    auto s = config::loadSession(dir + "/s.toml");
    ASSERT_TRUE(s);
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto rt = app::Runtime::open(s.value(), 48000, 256);
    ASSERT_TRUE(rt) << rt.error();
    app::Runtime& x = *rt.value();
    struct Change {
        uint64_t frame;
        int kind;  // 0 value, 1 bypass
        size_t node, param;
        float value;
    };
    const std::vector<Change> schedule = {{0, 0, 1, 0, -6.0f},
                                          {12000, 0, 0, 1, 1500.0f},
                                          {24000, 0, 1, 0, -20.0f},
                                          {static_cast<uint64_t>(std::llround(0.777 * 48000)), 1, 0, 0, 1.0f},
                                          {static_cast<uint64_t>(std::llround(1.0001 * 48000)), 0, 1, 0, 3.0f}};
    const auto in = test::readSound(dir + "/in.wav");
    const auto mono = in.channel(0);
    std::vector<float> l(256), r2(256), out;
    size_t next = 0;
    for (uint64_t pos = 0; pos < mono.size();) {
        while (next < schedule.size() && schedule[next].frame <= pos) {
            const Change& c = schedule[next++];
            if (c.kind == 0) ASSERT_TRUE(x.setValue(c.node, c.param, c.value));
            else x.setBypass(c.node, true);
        }
        uint64_t n = std::min<uint64_t>(256, mono.size() - pos);
        if (next < schedule.size() && schedule[next].frame < pos + n) n = schedule[next].frame - pos;
        const float* ins[2] = {mono.data() + pos, mono.data() + pos};
        float* outs[2] = {l.data(), r2.data()};
        x.engine().process(ins, outs, static_cast<uint32_t>(n));
        for (uint64_t i = 0; i < n; ++i) {
            out.push_back(l[i]);
        }
        pos += n;
    }
    const auto left = rendered.channel(0);
    ASSERT_EQ(left.size(), out.size());
    size_t firstDiff = out.size();
    for (size_t i = 0; i < out.size(); ++i)
        if (std::memcmp(&left[i], &out[i], sizeof(float)) != 0) {
            firstDiff = i;
            break;
        }
    EXPECT_EQ(firstDiff, out.size()) << "render and schedule differ at frame " << firstDiff;
    EXPECT_NEAR(test::rmsDb(std::vector<float>(left.begin() + 30000, left.begin() + 40000)) -
                    test::rmsDb(std::vector<float>(mono.begin() + 30000, mono.begin() + 40000)),
                -20.0, 1.5)
        << "the -20 dB step is audible in the render";
}

TEST_F(Scripts, RenderStopsAtTheFirstErrorWithItsLine) {
    auto r = render("set g.gain_db -6\n\nsett g.gain_db 1\n");
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find(dir + "/a.txt:3: unknown command 'sett' (did you mean 'set'?)"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir + "/out.wav"));
    auto timed = render("at 0.5s set g.gain_db 99\n");
    EXPECT_EQ(timed.exitCode, 1);
    EXPECT_NE(timed.err.find("a.txt:1: gain_db = 99 is outside"), std::string::npos) << timed.err;
    EXPECT_FALSE(std::filesystem::exists(dir + "/out.wav")) << "no output when a timed command failed";
}

TEST_F(Scripts, RunOnJack) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    test::writeText(dir + "/ok.txt", "set g.gain_db -6\nat 0.2s get g.gain_db\nat 300ms status\n");
    auto ok = test::run({test::binary(), "run", dir + "/ok.txt", dir + "/s.toml"},
                        {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, 30);
    EXPECT_EQ(ok.exitCode, 0) << ok.err;
    EXPECT_NE(ok.out.find("ok g.gain_db = -6.0 dB\nok g.gain_db = -6.0 dB\nok session scripted"), std::string::npos) << ok.out;
    test::writeText(dir + "/bad.txt", "set g.gain_db -6\nat 0.1s set g.nope 1\nat 5s status\n");
    auto bad = test::run({test::binary(), "run", dir + "/bad.txt", dir + "/s.toml"},
                         {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, 30);
    EXPECT_EQ(bad.exitCode, 1);
    EXPECT_NE(bad.err.find(dir + "/bad.txt:2: node 'g' has no parameter 'nope'"), std::string::npos) << bad.err;
}
