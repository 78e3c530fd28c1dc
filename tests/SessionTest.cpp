// Session files: parse errors with file:line:column, did-you-mean, bad bytes
// rejected before toml++ sees them, atomic save with backup, round trip.
#include "support/Support.hpp"

#include <rackterm/config/Session.hpp>

#include <gtest/gtest.h>

#include <filesystem>

using namespace rackterm;
using rackterm::config::parseSession;

namespace {
const char* kGood = R"([session]
name = "t1"

[engine]
sample_rate = 44100
block = 128
inputs = ["system:capture_1"]
outputs = ["system:playback_1", "system:playback_2"]

[[node]]
id = "src"
processor = "player"
file = "/usr/share/sounds/alsa/Front_Center.wav"
params = { level_db = -6.5 }

[[node]]
id = "eq"
processor = "biquad"
params = { type = 4, frequency_hz = 1234.5678, q = 0.7071, gain_db = -3.25 }
bypass = true

[[node]]
id = "mine"
path = "build/libmine.so"
watch = { source = "processors/mine", build = "make \"mine\"" }
)";
}

TEST(Session, ParsesEverySection) {
    auto s = parseSession(kGood, "good.toml");
    ASSERT_TRUE(s) << s.error();
    EXPECT_EQ(s->name, "t1");
    EXPECT_EQ(*s->engine.sampleRate, 44100);
    EXPECT_EQ(*s->engine.block, 128u);
    ASSERT_EQ(s->nodes.size(), 3u);
    EXPECT_EQ(s->nodes[1].params[1].id, "frequency_hz");  // file order kept
    EXPECT_TRUE(s->nodes[1].bypass);
    EXPECT_EQ(s->nodes[2].watch->build, "make \"mine\"");
    EXPECT_EQ(s->nodes[1].params[0].where.str(), "good.toml:19:12");
}

TEST(Session, RoundTripKeepsEveryValue) {
    auto a = parseSession(kGood, "a.toml");
    ASSERT_TRUE(a);
    auto b = parseSession(config::formatSession(a.value()), "b.toml");
    ASSERT_TRUE(b) << b.error();
    EXPECT_EQ(config::formatSession(a.value()), config::formatSession(b.value()));
    for (size_t n = 0; n < a->nodes.size(); ++n) {
        ASSERT_EQ(a->nodes[n].params.size(), b->nodes[n].params.size());
        for (size_t p = 0; p < a->nodes[n].params.size(); ++p)
            EXPECT_EQ(a->nodes[n].params[p].value, b->nodes[n].params[p].value);  // exact doubles
        EXPECT_EQ(a->nodes[n].bypass, b->nodes[n].bypass);
        EXPECT_EQ(a->nodes[n].path, b->nodes[n].path);
    }
    EXPECT_EQ(a->engine.outputs, b->engine.outputs);
}

TEST(Session, KeysThatAreNotBareAreSavedQuoted) {
    // Found by fuzz_session: a quoted key was written bare, and the saved file did not load.
    auto a = parseSession("[[node]]\nid = \"d\"\nprocessor = \"delay\"\nparams = { \"time ms\" = 1.0, \"a.b\" = 2.0, "
                          "\"\u00e9\" = 3.0, mix = 0.5 }\n",
                          "q.toml");
    ASSERT_TRUE(a) << a.error();
    const std::string saved = config::formatSession(a.value());
    EXPECT_NE(saved.find("{ \"time ms\" = 1.0, \"a.b\" = 2.0, \"\xc3\xa9\" = 3.0, mix = 0.5 }"), std::string::npos) << saved;
    auto b = parseSession(saved, "saved.toml");
    ASSERT_TRUE(b) << b.error();
    EXPECT_EQ(config::formatSession(b.value()), saved);
}

TEST(Session, AFloatWhereAWholeNumberGoesIsAnErrorNotAnOverflow) {
    // Found by fuzz_session (UBSan): toml++ converted block = 6.7e29 to a long.
    for (const char* text : {"[engine]\nblock = 666666666666666666666666666662.5\n", "[engine]\nblock = 256.0\n",
                             "[engine]\nblock = -1e300\n"}) {
        auto s = parseSession(text, "b.toml");
        ASSERT_FALSE(s) << text;
        EXPECT_EQ(s.error(), "b.toml:2:9: block must be a whole number of frames from 1 to 8192, e.g. 256");
    }
}

TEST(Session, ErrorsNameLineColumnAndNearestKey) {
    auto s = parseSession("[session]\nname = \"x\"\n\n[[node]]\nid = \"g\"\nprocesor = \"gain\"\n", "s.toml");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "s.toml:6:1: unknown key 'procesor' in [[node]] (did you mean 'processor'?)");
}

TEST(Session, SyntaxErrorHasLocation) {
    auto s = parseSession("[session\nname = 1\n", "bad.toml");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().rfind("bad.toml:1:", 0), 0u) << s.error();
}

TEST(Session, DuplicateAndMalformedIds) {
    auto dup = parseSession("[[node]]\nid = \"a\"\nprocessor = \"gain\"\n[[node]]\nid = \"a\"\nprocessor = \"gain\"\n", "d.toml");
    ASSERT_FALSE(dup);
    EXPECT_NE(dup.error().find("used twice"), std::string::npos);
    auto bad = parseSession("[[node]]\nid = \"A-1\"\nprocessor = \"gain\"\n", "d.toml");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find("d.toml:2:6"), std::string::npos) << bad.error();
}

TEST(Session, NulAndInvalidUtf8RejectedBeforeParsing) {
    auto nul = parseSession(std::string("[\0", 2), "nul.toml");
    ASSERT_FALSE(nul);
    EXPECT_EQ(nul.error(), "nul.toml:1:2: NUL byte; a session file is UTF-8 text");
    auto bad = parseSession("name = \"\xff\"\n", "u.toml");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().find("u.toml:1:9: invalid UTF-8"), std::string::npos) << bad.error();
    auto overlong = parseSession("# \xc0\xaf\n", "o.toml");
    EXPECT_FALSE(overlong);
    EXPECT_TRUE(parseSession("# caf\xc3\xa9 \xe2\x82\xac\n", "ok.toml")) << "valid UTF-8 comment";
}

TEST(Session, SaveIsAtomicAndKeepsBackup) {
    const std::string dir = test::tempDir("save");
    const std::string path = dir + "/s.toml";
    test::writeText(path, kGood);
    auto s = config::loadSession(path);
    ASSERT_TRUE(s) << s.error();
    s->nodes[0].params[0].value = -12.0;
    ASSERT_TRUE(config::saveSession(s.value(), path));
    EXPECT_EQ(test::readText(path + "~"), kGood);
    auto again = config::loadSession(path);
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ(again->nodes[0].params[0].value, -12.0);
    for (const auto& e : std::filesystem::directory_iterator(dir))  // no temp files left behind
        EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
    std::filesystem::remove_all(dir);
}

TEST(Session, SaveIntoMissingFolderFailsAndChangesNothing) {
    auto s = parseSession(kGood, "a.toml");
    ASSERT_TRUE(s);
    auto r = config::saveSession(s.value(), "/nonexistent-rackterm-dir/s.toml");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("does not exist"), std::string::npos);
}
