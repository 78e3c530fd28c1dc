// Small input rules and bounded framing, in process: values are decimal
// (0x10 is refused, -0 is 0), one node limit on every path a session grows
// by, replies are one line, repeated events are rate-limited, and the line
// framer of the socket and headless stdin stays bounded.
#include "support/Support.hpp"

#include <rackterm/engine/rt/Engine.hpp>

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/EventThrottle.hpp>
#include <rackterm/app/LineFramer.hpp>
#include <rackterm/app/Values.hpp>
#include <rackterm/common/Limits.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

using namespace rackterm;

namespace {
const rackterm_param_info kDb{"gain_db", "Gain", "dB", -60.0f, 24.0f, 0.0f, 0u, nullptr};
const rackterm_param_info kHz{"frequency_hz", "Frequency", "Hz", 20.0f, 20000.0f, 1000.0f, RACKTERM_PARAM_LOG, nullptr};

std::string gains(size_t count) {
    std::string text = "[session]\nname = \"big\"\n";
    for (size_t i = 0; i < count; ++i) text += "[[node]]\nid = \"g" + std::to_string(i) + "\"\nprocessor = \"gain\"\n";
    return text;
}
}  // namespace

TEST(InputRules, HexIsNotAValueAndMinusZeroIsZero) {
    auto hex = app::parseValue(kDb, "0x10");
    ASSERT_FALSE(hex) << "0x10 was read as " << hex.value();
    EXPECT_EQ(hex.error(), "'0x10' is not a value for gain_db; give a decimal number such as -6dB");
    EXPECT_FALSE(app::parseValue(kDb, "0x1p3"));
    EXPECT_FALSE(app::parseDelta(kDb, "+0x2"));
    EXPECT_FALSE(app::parseValue(kHz, "0x10k"));
    const auto zero = app::parseValue(kDb, "-0");
    ASSERT_TRUE(zero);
    EXPECT_FALSE(std::signbit(zero.value()));
    EXPECT_FLOAT_EQ(app::parseValue(kHz, "1e3").value(), 1000.0f);
    EXPECT_FLOAT_EQ(app::parseValue(kHz, "1.5e3Hz").value(), 1500.0f);
}

TEST(InputRules, NumbersBeyondWhatAFloatHoldsAreRefused) {
    // Found by fuzz_command: a delta of 1e100 became +inf on its way to a float.
    auto d = app::parseDelta(kDb, std::string(120, '1'));
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("is out of range for gain_db"), std::string::npos) << d.error();
    EXPECT_FALSE(app::parseValue(kHz, "1e300k"));
    EXPECT_FALSE(app::parseDelta(kDb, "-1e39"));
    EXPECT_TRUE(app::parseDelta(kDb, "-1e38"));
}

TEST(InputRules, ParserMessagesStayOneLine) {
    // Found by fuzz_session: toml++ quotes what it saw, newline included.
    auto s = config::parseSession("[engine]\ncrossfade_ms = tr\n", "n.toml");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().find('\n'), std::string::npos) << s.error();
    EXPECT_EQ(s.error().rfind("n.toml:2:", 0), 0u) << s.error();
}

TEST(InputRules, SessionFileValuesAreDecimalAndMinusZeroIsSavedAsZero) {
    auto hex = config::parseSession("[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { gain_db = 0x10 }\n", "h.toml");
    ASSERT_FALSE(hex);
    EXPECT_EQ(hex.error(), "h.toml:4:22: parameter 'gain_db': write the value as a decimal number, e.g. 16 or 16.0");
    auto neg = config::parseSession("[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { gain_db = -0.0 }\n", "z.toml");
    ASSERT_TRUE(neg) << neg.error();
    const std::string text = config::formatSession(neg.value());
    EXPECT_NE(text.find("gain_db = 0.0"), std::string::npos) << text;
    EXPECT_EQ(text.find("-0"), std::string::npos) << text;
}

TEST(InputRules, SetMinusZeroSavesZero) {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto s = config::parseSession("[[node]]\nid = \"g\"\nprocessor = \"gain\"\n", "m.toml");
    ASSERT_TRUE(s);
    auto rt = app::Runtime::open(s.value(), 48000, 256);
    ASSERT_TRUE(rt) << rt.error();
    app::CommandContext ctx{*rt.value()};
    ctx.runtime.setOffline(true);
    ASSERT_TRUE(app::execute(ctx, "set g.gain_db -0").ok);
    const std::string dir = test::tempDir("zero");
    ASSERT_TRUE(app::execute(ctx, "save " + dir + "/m.toml").ok);
    const std::string saved = test::readText(dir + "/m.toml");
    EXPECT_NE(saved.find("gain_db = 0.0"), std::string::npos) << saved;
    EXPECT_EQ(saved.find("-0.0"), std::string::npos) << saved;
    std::filesystem::remove_all(dir);
}

TEST(Limits, OneNodeLimitOnEveryPath) {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    const std::string message = nodeLimitMessage(kMaxNodes + 1);
    // The session file.
    auto big = config::parseSession(gains(kMaxNodes + 1), "big.toml");
    ASSERT_FALSE(big);
    EXPECT_NE(big.error().find("big.toml:"), std::string::npos) << big.error();
    EXPECT_NE(big.error().find(message), std::string::npos) << big.error();
    auto exact = config::parseSession(gains(kMaxNodes), "full.toml");
    ASSERT_TRUE(exact) << exact.error();
    // `add` to a full rack.
    auto rt = app::Runtime::open(exact.value(), 48000, 64);
    ASSERT_TRUE(rt) << rt.error();
    app::CommandContext ctx{*rt.value()};
    ctx.runtime.setOffline(true);
    const app::Reply add = app::execute(ctx, "add one_more gain");
    EXPECT_FALSE(add.ok);
    EXPECT_NE(add.text.find(message), std::string::npos) << add.text;
    // `load` of a session over the limit: refused, the rack unchanged.
    const std::string dir = test::tempDir("limit");
    test::writeText(dir + "/big.toml", gains(kMaxNodes + 100));
    const app::Reply load = app::execute(ctx, "load " + dir + "/big.toml !");
    EXPECT_FALSE(load.ok);
    EXPECT_NE(load.text.find(nodeLimitMessage(kMaxNodes + 100)), std::string::npos) << load.text;
    EXPECT_EQ(rt.value()->nodeCount(), kMaxNodes);
    EXPECT_TRUE(app::execute(ctx, "set g" + std::to_string(kMaxNodes - 1) + ".gain_db -3").ok);
    // A full rack runs every node: -3 dB on the last one is heard, and every node has a meter.
    std::vector<float> in(64, 0.5f), l(64), r(64);
    const float* ins[2] = {in.data(), in.data()};
    float* outs[2] = {l.data(), r.data()};
    for (int b = 0; b < 8; ++b) rt.value()->engine().process(ins, outs, 64);
    EXPECT_NEAR(l[63], 0.5f * std::pow(10.0f, -3.0f / 20.0f), 1e-4f);
    rt.value()->updateMeters(1.0);
    EXPECT_EQ(rt.value()->meters().nodes.size(), kMaxNodes);
    std::filesystem::remove_all(dir);
}

TEST(Replies, AreOneLineWhateverWasTyped) {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto s = config::parseSession("[[node]]\nid = \"g\"\nprocessor = \"gain\"\n", "r.toml");
    auto rt = app::Runtime::open(s.value(), 48000, 256);
    ASSERT_TRUE(rt);
    app::CommandContext ctx{*rt.value()};
    const app::Reply nul = app::execute(ctx, std::string("se\0t\x01 g.gain_db 1", 17));
    EXPECT_EQ(nul.line().rfind("error: unknown command 'se\\x00t\\x01'", 0), 0u) << nul.line();
    EXPECT_EQ(nul.line().find('\0'), std::string::npos);
    const app::Reply huge = app::execute(ctx, "set g.gain_db " + std::string(10'000'000, '9') + "x");
    EXPECT_FALSE(huge.ok);
    EXPECT_LT(huge.line().size(), 300u) << "a 10 MB value is quoted, not echoed";
    EXPECT_NE(huge.line().find("99999..."), std::string::npos) << huge.line();
    app::Reply multi{false, "first\nsecond\r", false};
    EXPECT_EQ(multi.line(), "error: first\\nsecond\\r");
}

TEST(EventThrottle, FirstAtOnceThenACountEveryInterval) {
    app::EventThrottle t(5.0);
    t.add("n", 1);
    auto r = t.due(0.0);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].first);
    EXPECT_EQ(r[0].count, 1u);
    uint64_t held = 0;
    for (int i = 1; i < 100; ++i) {  // ten a second for ~10 s
        const double now = i * 0.1;
        t.add("n", 1);
        for (const auto& x : t.due(now)) {
            EXPECT_FALSE(x.first);
            EXPECT_GE(x.seconds, 5.0);
            held += x.count;
            r.push_back(x);
        }
    }
    EXPECT_EQ(r.size(), 2u) << "one summary in ~10 s after the first";
    t.add("m", 3);
    const auto other = t.due(9.9);
    ASSERT_EQ(other.size(), 1u) << "keys are throttled apart";
    EXPECT_EQ(other[0].key, "m");
    const auto rest = t.due(15.0);
    ASSERT_EQ(rest.size(), 1u);
    EXPECT_EQ(held + rest[0].count, 99u) << "nothing is lost, only gathered";
}

TEST(LineFramer, BoundedLinesAndBudget) {
    app::LineFramer f;
    f.append("set a 1\r\nget a\n" + std::string(app::LineFramer::kMaxLine + 10, 'x'));
    auto items = f.take(256);
    ASSERT_EQ(items.size(), 3u);
    EXPECT_EQ(items[0].text, "set a 1");
    EXPECT_EQ(items[1].text, "get a");
    EXPECT_TRUE(items[2].tooLong);
    EXPECT_GT(f.room(), 0u);
    f.append(std::string(20000, 'y') + "\nstatus\n");  // the rest of the long line, then a good one
    items = f.take(256);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].text, "status");
    std::string many;
    for (int i = 0; i < 300; ++i) many += "l\n";
    f.append(many);
    EXPECT_EQ(f.take(256).size(), 256u);
    EXPECT_TRUE(f.hasLine());
    EXPECT_EQ(f.take(256).size(), 44u);
    f.append("last");
    EXPECT_TRUE(f.take(10).empty());
    f.finish();
    items = f.take(10);
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].text, "last");
}
