// Values with units, and the command language run against a real runtime
// (real modules, real player file), offline.
#include "support/LiveLoop.hpp"
#include "support/Support.hpp"

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Values.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

using namespace rackterm;

namespace {
const rackterm_param_info kHz{"frequency_hz", "Frequency", "Hz", 20.0f, 20000.0f, 1000.0f, RACKTERM_PARAM_LOG, nullptr};
const rackterm_param_info kDb{"gain_db", "Gain", "dB", -60.0f, 24.0f, 0.0f, 0u, nullptr};
const rackterm_param_info kMs{"time_ms", "Time", "ms", 1.0f, 2000.0f, 250.0f, 0u, nullptr};
const rackterm_param_info kMix{"mix", "Mix", "", 0.0f, 1.0f, 0.3f, 0u, nullptr};
const rackterm_param_info kType{"type", "Type", "", 0.0f, 3.0f, 0.0f, RACKTERM_PARAM_INTEGER, "sine|saw|square|triangle"};
}  // namespace

TEST(Values, UnitsParse) {
    EXPECT_FLOAT_EQ(app::parseValue(kHz, "1k").value(), 1000.0f);
    EXPECT_FLOAT_EQ(app::parseValue(kHz, "1.5kHz").value(), 1500.0f);
    EXPECT_FLOAT_EQ(app::parseValue(kHz, "440Hz").value(), 440.0f);
    EXPECT_FLOAT_EQ(app::parseValue(kDb, "-6dB").value(), -6.0f);
    EXPECT_FLOAT_EQ(app::parseValue(kMs, "0.25s").value(), 250.0f);
    EXPECT_FLOAT_EQ(app::parseValue(kMix, "50%").value(), 0.5f);
    EXPECT_FLOAT_EQ(app::parseValue(kType, "saw").value(), 1.0f);
}

TEST(Values, ErrorsSayWhatIsExpected) {
    auto wrongUnit = app::parseValue(kHz, "3dB");
    ASSERT_FALSE(wrongUnit);
    EXPECT_NE(wrongUnit.error().find("takes Hz"), std::string::npos);
    auto range = app::parseValue(kDb, "30");
    ASSERT_FALSE(range);
    EXPECT_NE(range.error().find("outside -60.0 dB .. 24.0 dB"), std::string::npos) << range.error();
    EXPECT_FALSE(app::parseValue(kType, "1.5"));
    EXPECT_FALSE(app::parseValue(kDb, "loud"));
}

TEST(Values, Format) {
    EXPECT_EQ(app::formatValue(kDb, -12.0f), "-12.0 dB");
    EXPECT_EQ(app::formatValue(kHz, 1500.0f), "1.50 kHz");
    EXPECT_EQ(app::formatValue(kType, 3.0f), "triangle");
}

class CommandsTest : public ::testing::Test {
protected:
    void SetUp() override {
        setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
        auto s = config::parseSession(R"([session]
name = "cmd"
[[node]]
id = "src"
processor = "player"
file = "/usr/share/sounds/alsa/Front_Left.wav"
[[node]]
id = "gain"
processor = "gain"
)", "cmd.toml");
        ASSERT_TRUE(s) << s.error();
        auto r = app::Runtime::open(s.value(), 48000, 256);
        ASSERT_TRUE(r) << r.error();
        rt = std::move(r.value());
    }
    /// Run a line as the live control loop does (the audio thread played here).
    app::Reply exec(const std::string& line) {
        app::CommandContext ctx{*rt};
        return test::run(ctx, line);
    }
    std::unique_ptr<app::Runtime> rt;
};

TEST_F(CommandsTest, SetGetAndApplied) {
    auto r = exec("set gain.gain_db -12dB");
    ASSERT_TRUE(r.ok) << r.text;
    EXPECT_EQ(r.text, "gain.gain_db = -12.0 dB");
    EXPECT_EQ(exec("get gain.gain_db").text, "gain.gain_db = -12.0 dB");
    EXPECT_TRUE(rt->dirty());
    float l[64] = {}, rr[64] = {};
    float* out[2] = {l, rr};
    rt->engine().process(nullptr, out, 64);  // plays the audio thread's part
    EXPECT_TRUE(exec("wait applied").ok);
}

TEST_F(CommandsTest, DidYouMean) {
    EXPECT_EQ(exec("sett gain.gain_db 1").text, "unknown command 'sett' (did you mean 'set'?); `help` lists them");
    EXPECT_NE(exec("set gian.gain_db 1").text.find("(did you mean 'gain'?)"), std::string::npos);
    EXPECT_NE(exec("set gain.gain 1").text.find("(did you mean 'gain_db'?)"), std::string::npos);
    EXPECT_EQ(exec("set gain.gain_db").text, "usage: set NODE.PARAM VALUE");
}

TEST_F(CommandsTest, BypassListStatusQuit) {
    EXPECT_EQ(exec("bypass gain on").text, "gain bypassed");
    EXPECT_TRUE(rt->bypassed(1));
    EXPECT_EQ(exec("list nodes").text, "src=player(active) gain=gain(active, bypassed)");
    EXPECT_NE(exec("status").text.find("2 nodes, 48000 Hz"), std::string::npos);
    auto q = exec("quit");
    EXPECT_FALSE(q.ok);
    EXPECT_FALSE(q.quit);
    EXPECT_TRUE(exec("quit!").quit);
}

TEST_F(CommandsTest, NudgeByStepsAndByValue) {
    EXPECT_EQ(exec("nudge gain.gain_db").text, "gain.gain_db = 0.5 dB");
    EXPECT_EQ(exec("nudge gain.gain_db -3").text, "gain.gain_db = -1.0 dB");
    EXPECT_EQ(exec("nudge gain.gain_db +2.5dB").text, "gain.gain_db = 1.5 dB");
    EXPECT_EQ(exec("nudge gain.gain_db +100dB").text, "gain.gain_db = 24.0 dB") << "clamped to the range";
    EXPECT_FALSE(exec("nudge gain.gain_db 3Hz").ok);
}

TEST_F(CommandsTest, AddRemoveAndLoad) {
    auto added = exec("add lp biquad after src");
    ASSERT_TRUE(added.ok) << added.text;
    EXPECT_EQ(added.text, "added lp (biquad) at position 2");
    EXPECT_EQ(exec("list nodes").text, "src=player(active) lp=biquad(active) gain=gain(active)");
    EXPECT_EQ(exec("set lp.frequency_hz 2k").text, "lp.frequency_hz = 2.00 kHz");
    EXPECT_NE(exec("add lp gain").text.find("exists already"), std::string::npos);
    EXPECT_NE(exec("add x gian").text.find("did you mean 'gain'"), std::string::npos);
    app::CommandContext ctx{*rt};
    ctx.runtime.setOffline(true);
    EXPECT_EQ(app::execute(ctx, "remove src").text, "removed src");
    EXPECT_EQ(exec("list nodes").text, "lp=biquad(active) gain=gain(active)");
    EXPECT_EQ(exec("get lp.frequency_hz").text, "lp.frequency_hz = 2.00 kHz") << "values of the others stay";
    EXPECT_FALSE(exec("load " + test::sourceDir() + "/examples/demo.toml").ok) << "unsaved changes";
    auto loaded = exec("load " + test::sourceDir() + "/examples/demo.toml !");
    ASSERT_TRUE(loaded.ok) << loaded.text;
    EXPECT_EQ(exec("list nodes").text, "src=player(active) eq=biquad(active) drive=saturator(active) gain=gain(active)");
    EXPECT_EQ(exec("get drive.drive_db").text, "drive.drive_db = 12.0 dB");
}

TEST_F(CommandsTest, AddAndRemoveWithoutAClick) {
    // A sine plays through the rack on a thread of its own while a -20 dB
    // gain node is added and removed; the largest step stays that of the sine.
    exec("bypass src on");  // the sine alone (the recording has steps of its own)
    test::SineThread audio(*rt, 20);
    app::CommandContext ctx{*rt};
    auto live = [&](const std::string& line) { return test::await(*rt, app::execute(ctx, line)); };
    for (int i = 0; i < 10; ++i) {
        auto a = live("add quiet gain");
        ASSERT_TRUE(a.ok) << a.text;
        ASSERT_TRUE(live("set quiet.gain_db -20").ok);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (i % 2) {  // a bypass and a remove in one turn: the remove waits for the bypass ramp
            ASSERT_TRUE(app::execute(ctx, "bypass quiet on").ok);
            ASSERT_TRUE(live("remove quiet").ok);
        } else {
            ASSERT_TRUE(live("remove quiet").ok);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    audio.stop();
    EXPECT_LE(audio.largestStep(), 2.0f * test::SineThread::cleanStep()) << "a click when a node came or went";
}

TEST_F(CommandsTest, RecordStartStop) {
    const std::string dir = test::tempDir("rec");
    const std::string file = dir + "/take.wav";
    app::CommandContext ctx{*rt};
    ctx.runtime.setOffline(true);
    ASSERT_EQ(app::execute(ctx, "record start " + file).text, "recording to " + file);
    EXPECT_FALSE(app::execute(ctx, "record start " + file).ok) << "one recording at a time";
    std::vector<float> l(256), r(256);
    float* outs[2] = {l.data(), r.data()};
    for (int b = 0; b < 375; ++b) rt->engine().process(nullptr, outs, 256);  // 2 s of the player
    auto stop = app::execute(ctx, "record stop");
    ASSERT_TRUE(stop.ok) << stop.text;
    EXPECT_EQ(stop.text, "recorded " + file + " (2.00 s)");
    const auto take = test::readSound(file);
    EXPECT_EQ(take.frames(), 96000u);
    EXPECT_EQ(take.channels, 2);
    EXPECT_GT(test::rmsDb(take.channel(0)), -40.0) << "the player was recorded";
    EXPECT_EQ(app::execute(ctx, "record stop").text, "not recording") << "a second stop is refused, not a crash";
    EXPECT_FALSE(app::execute(ctx, "record start /nonexistent/x.wav").ok);
    std::filesystem::remove_all(dir);
}
