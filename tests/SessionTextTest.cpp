// Saving keeps the user's file: sessionText edits the text a session was
// loaded from so that only changed values, added or removed keys and node
// tables differ; `diff` against the original shows nothing else, and the
// result loads back to the same session. What cannot be edited in place is
// written anew by formatSession, and says why.
#include "support/Support.hpp"

#include <rackterm/config/Session.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

using namespace rackterm;
using config::parseSession;
using config::sessionText;

namespace {

// A comment on every line that is not blank; keys in an order formatSession
// does not use; 'literal' and "basic" strings; numbers as a person types them.
const char* kHand = R"(# Thursday's live rig. Every line says why it is there.
# Saved by hand; rackterm must keep these words.

[session] # the JACK client
name = 'thursday' # a literal string

[engine] # offline render only
block = 256 # frames
crossfade_ms = 1e1 # written with an exponent

# The source: a looped drum take.
[[node]] # src
processor = "player" # the processor before the id
id = "src" # the id second
file = 'drums.wav' # a literal string
params = { level_db = -6.00 } # as the engineer typed it

# Equaliser: a peak at 1 kHz.
[[node]] # eq
id = "eq" # the equaliser
processor = "biquad" # RBJ cookbook
params = { type = 4, frequency_hz = 1e3, q = +3, gain_db = -6.00 } # numbers as typed
bypass = false # in the chain

# Old delay, to go.
# Two comment lines above it.
[[node]] # delay
id = "delay" # tape echo
processor = "delay" # built in
[node.params] # a sub-table
time_ms = 250 # a quarter second
mix = 0.3 # mostly dry

# Output stage.
[[node]] # out
id = "out" # the last gain
processor = "gain" # plain gain
[node.params] # its own table
gain_db = +3 # a little push
# End of the rig.
)";

// kHand after: src.level_db -12, eq.frequency_hz 2500, out.gain_db -1.5, eq
// bypassed, delay removed, gate added after eq, tail added at the end.
const char* kEdited = R"(# Thursday's live rig. Every line says why it is there.
# Saved by hand; rackterm must keep these words.

[session] # the JACK client
name = 'thursday' # a literal string

[engine] # offline render only
block = 256 # frames
crossfade_ms = 1e1 # written with an exponent

# The source: a looped drum take.
[[node]] # src
processor = "player" # the processor before the id
id = "src" # the id second
file = 'drums.wav' # a literal string
params = { level_db = -12.0 } # as the engineer typed it

# Equaliser: a peak at 1 kHz.
[[node]] # eq
id = "eq" # the equaliser
processor = "biquad" # RBJ cookbook
params = { type = 4, frequency_hz = 2500.0, q = +3, gain_db = -6.00 } # numbers as typed
bypass = true # in the chain

[[node]]
id = "gate"
processor = "gain"
params = { gain_db = -3.0 }
bypass = false

# Output stage.
[[node]] # out
id = "out" # the last gain
processor = "gain" # plain gain
[node.params] # its own table
gain_db = -1.5 # a little push
# End of the rig.

[[node]]
id = "tail"
processor = "gain"
params = { gain_db = 0.5 }
bypass = true
)";

/// The session as one comparable text: params sorted by id, values exact.
std::string describe(const config::Session& s) {
    std::string out = s.name + " | block " + std::to_string(s.engine.block.value_or(0)) + " | crossfade " +
                      std::to_string(s.engine.crossfadeMs.value_or(-1)) + "\n";
    for (const auto& n : s.nodes) {
        out += n.id + " " + n.processor + " " + n.path + " " + n.file + (n.bypass ? " bypassed" : "") +
               (n.watch ? " watch " + n.watch->source + " " + n.watch->build : "") + ":";
        auto params = n.params;
        std::sort(params.begin(), params.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
        for (const auto& p : params) {
            char value[40];
            std::snprintf(value, sizeof value, "%.17g", p.value);
            out += " " + p.id + "=" + value;
        }
        out += "\n";
    }
    return out;
}

config::Session parsed(const std::string& text) {
    auto s = parseSession(text, "t.toml");
    EXPECT_TRUE(s) << s.error();
    return s ? s.value() : config::Session{};
}

config::ParamSetting& param(config::Session& s, const std::string& node, const std::string& id) {
    auto& params = s.nodes[static_cast<size_t>(s.findNode(node))].params;
    return *std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.id == id; });
}

config::NodeSpec gainNode(const std::string& id, double gainDb, bool bypass) {
    config::NodeSpec n;
    n.id = id;
    n.processor = "gain";
    n.params.push_back({"gain_db", gainDb, {}});
    n.bypass = bypass;
    return n;
}

/// What `diff` reports between two texts: "-N TEXT" for each line N of `a` it
/// removes, "+N TEXT" for each line N of `b` it adds.
std::vector<std::string> diffLines(const std::string& a, const std::string& b) {
    const std::string dir = test::tempDir("difftext");
    test::writeText(dir + "/a", a);
    test::writeText(dir + "/b", b);
    const std::string cmd = "diff --unchanged-line-format= '--old-line-format=-%dn %L' '--new-line-format=+%dn %L' " +
                            dir + "/a " + dir + "/b";
    std::vector<std::string> out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char line[512];
        while (std::fgets(line, sizeof line, p)) out.emplace_back(line);
        EXPECT_EQ(::pclose(p), 1 << 8) << "diff exits 1 when the files differ";
    }
    std::filesystem::remove_all(dir);
    return out;
}

}  // namespace

TEST(SessionText, UntouchedSessionIsByteIdentical) {
    const config::Session s = parsed(kHand);
    EXPECT_EQ(s.sourceText, kHand);
    const auto out = sessionText(s);
    EXPECT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, kHand);
}

TEST(SessionText, DiffShowsOnlyTheChangedLines) {
    config::Session now = parsed(kHand);
    param(now, "src", "level_db").value = -12;
    param(now, "eq", "frequency_hz").value = 2500;
    param(now, "out", "gain_db").value = -1.5;
    now.nodes[1].bypass = true;
    now.nodes.erase(now.nodes.begin() + now.findNode("delay"));
    now.nodes.insert(now.nodes.begin() + now.findNode("eq") + 1, gainNode("gate", -3, false));
    now.nodes.push_back(gainNode("tail", 0.5, true));

    const auto out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, kEdited);
    EXPECT_EQ(describe(parsed(out.text)), describe(now)) << "loads back to the same session";

    // diff may pair the removed node's blank line 33 with the blank line after gate.
    const std::set<int> mayGo = {16, 22, 23, 25, 26, 27, 28, 29, 30, 31, 32, 33, 39};
    std::set<int> gone;
    std::multiset<std::string> added;
    for (const std::string& line : diffLines(kHand, out.text)) {
        const int number = std::stoi(line.substr(1));
        const std::string text = line.substr(line.find(' ') + 1);
        if (line[0] == '-') {
            EXPECT_TRUE(mayGo.count(number)) << "line " << number << " changed: " << text;
            gone.insert(number);
        } else {
            added.insert(text);
        }
    }
    for (int line : {16, 22, 23, 25, 26, 27, 28, 29, 30, 31, 32, 39}) EXPECT_TRUE(gone.count(line)) << line;
    std::multiset<std::string> expected = {
        "params = { level_db = -12.0 } # as the engineer typed it\n",
        "params = { type = 4, frequency_hz = 2500.0, q = +3, gain_db = -6.00 } # numbers as typed\n",
        "bypass = true # in the chain\n",
        "[[node]]\n", "id = \"gate\"\n", "processor = \"gain\"\n", "params = { gain_db = -3.0 }\n", "bypass = false\n",
        "\n",
        "gain_db = -1.5 # a little push\n",
        "\n", "[[node]]\n", "id = \"tail\"\n", "processor = \"gain\"\n", "params = { gain_db = 0.5 }\n", "bypass = true\n"};
    if (!gone.count(33)) expected.erase(expected.find("\n"));
    EXPECT_EQ(added, expected);
}

TEST(SessionText, ParamsAddedToAnInlineTableAnEmptyOneAndANodeWithout) {
    const std::string text = "[[node]] # a\n"
                             "id = \"a\" # gain\n"
                             "processor = \"gain\" # no params yet\n"
                             "# a comment after the keys\n"
                             "\n"
                             "[[node]]\n"
                             "processor = \"biquad\"\n"
                             "params = {  q = 2  } # spaced\n"
                             "id = \"b\"\n"
                             "[[node]]\n"
                             "id = \"c\"\n"
                             "processor = \"biquad\"\n"
                             "params = {} # empty\n";
    config::Session now = parsed(text);
    now.nodes[0].params.push_back({"gain_db", -2, {}});
    now.nodes[0].bypass = true;
    now.nodes[1].params.push_back({"type", 1, {}});
    now.nodes[1].params.push_back({"gain db", 0.25, {}});
    now.nodes[2].params.push_back({"q", 0.5, {}});
    const auto out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, "[[node]] # a\n"
                        "id = \"a\" # gain\n"
                        "processor = \"gain\" # no params yet\n"
                        "params = { gain_db = -2.0 }\n"
                        "bypass = true\n"
                        "# a comment after the keys\n"
                        "\n"
                        "[[node]]\n"
                        "processor = \"biquad\"\n"
                        "params = {  q = 2, type = 1.0, \"gain db\" = 0.25  } # spaced\n"
                        "id = \"b\"\n"
                        "[[node]]\n"
                        "id = \"c\"\n"
                        "processor = \"biquad\"\n"
                        "params = { q = 0.5 } # empty\n");
    EXPECT_EQ(describe(parsed(out.text)), describe(now));
}

TEST(SessionText, ParamsRemovedWithOneCommaOrTheirLine) {
    const std::string text = "[[node]]\n"
                             "id = \"eq\"\n"
                             "processor = \"biquad\"\n"
                             "params = { type = 4, \"frequency hz\" = 1e3, q = +3 } # three\n"
                             "[[node]]\n"
                             "id = \"d\"\n"
                             "processor = \"delay\"\n"
                             "params = { mix = 0.5 } # one\n"
                             "[[node]]\n"
                             "id = \"e\"\n"
                             "processor = \"delay\"\n"
                             "params = { mix = 0.5,feedback = 0.1 } # first goes\n"
                             "[[node]]\n"
                             "id = \"t\"\n"
                             "processor = \"delay\"\n"
                             "[node.params] # table\n"
                             "time_ms = 250 # goes\n"
                             "feedback = 0.5 # changes\n"
                             "# stays\n";
    config::Session now = parsed(text);
    auto drop = [&](const char* node, const char* id) {
        auto& p = now.nodes[static_cast<size_t>(now.findNode(node))].params;
        p.erase(std::find_if(p.begin(), p.end(), [&](const auto& s) { return s.id == id; }));
    };
    drop("eq", "frequency hz");
    drop("eq", "q");
    drop("d", "mix");
    drop("e", "mix");
    drop("t", "time_ms");
    param(now, "t", "feedback").value = 0.25;
    now.nodes[3].params.push_back({"mix", 0.0, {}});  // not in the file: a new line
    const auto out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, "[[node]]\n"
                        "id = \"eq\"\n"
                        "processor = \"biquad\"\n"
                        "params = { type = 4 } # three\n"
                        "[[node]]\n"
                        "id = \"d\"\n"
                        "processor = \"delay\"\n"
                        "params = {} # one\n"
                        "[[node]]\n"
                        "id = \"e\"\n"
                        "processor = \"delay\"\n"
                        "params = { feedback = 0.1 } # first goes\n"
                        "[[node]]\n"
                        "id = \"t\"\n"
                        "processor = \"delay\"\n"
                        "[node.params] # table\n"
                        "feedback = 0.25 # changes\n"
                        "mix = 0.0\n"
                        "# stays\n");
    EXPECT_EQ(describe(parsed(out.text)), describe(now));
}

TEST(SessionText, StringsHoldingBracesAndHashesStayIntact) {
    const std::string text = "[[node]]\n"
                             "id = \"m\"\n"
                             "path = 'build/lib}#.so' # }\n"
                             "watch = { source = \"src}\", build = 'make \"#}\" ' } # {\n"
                             "params = { \"a}#\" = 1.0, mix = 0.5 } # } #\n";
    config::Session now = parsed(text);
    auto& p = now.nodes[0].params;
    p.erase(p.begin());
    p[0].value = 0.125;
    const auto out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, "[[node]]\n"
                        "id = \"m\"\n"
                        "path = 'build/lib}#.so' # }\n"
                        "watch = { source = \"src}\", build = 'make \"#}\" ' } # {\n"
                        "params = { mix = 0.125 } # } #\n");
    EXPECT_EQ(describe(parsed(out.text)), describe(now));
}

TEST(SessionText, TheLastNodeGoesWithItsCommentsAndTheBlankLinesAbove) {
    config::Session now = parsed("[[node]]\nid = \"a\"\nprocessor = \"gain\"\n\n\n# b goes\n[[node]]\nid = \"b\"\nprocessor = \"gain\"\n");
    now.nodes.pop_back();
    auto out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, "[[node]]\nid = \"a\"\nprocessor = \"gain\"\n");

    // A node appended to a file whose last line has no newline.
    now = parsed("[[node]]\nid = \"a\"\nprocessor = \"gain\" # end");
    now.nodes.push_back(gainNode("b", 1, false));
    out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, "[[node]]\nid = \"a\"\nprocessor = \"gain\" # end\n\n[[node]]\nid = \"b\"\nprocessor = \"gain\"\n"
                        "params = { gain_db = 1.0 }\nbypass = false\n");
}

TEST(SessionText, ANodeWithANewProcessorIsReplacedWhereItStands) {
    config::Session now = parsed(kHand);
    const size_t out = static_cast<size_t>(now.findNode("out"));
    now.nodes[out].processor = "saturator";
    now.nodes[out].params = {{"drive_db", 6, {}}};
    const auto text = sessionText(now);
    ASSERT_TRUE(text.editedInPlace) << text.rewriteReason;
    const std::string head(kHand, std::string_view(kHand).find("# Output stage."));
    EXPECT_EQ(text.text, head + "[[node]]\nid = \"out\"\nprocessor = \"saturator\"\nparams = { drive_db = 6.0 }\n"
                                "bypass = false\n");
    EXPECT_EQ(describe(parsed(text.text)), describe(now));
}

TEST(SessionText, ARenamedSessionHasOnlyItsNameReplaced) {
    config::Session now = parsed(kHand);
    now.name = "friday";
    const auto out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    std::string expected = kHand;
    expected.replace(expected.find("'thursday'"), 10, "\"friday\"");
    EXPECT_EQ(out.text, expected);
}

TEST(SessionText, NodesInANewOrderAreWrittenAnewAndReadBack) {
    config::Session now = parsed(kHand);
    std::swap(now.nodes[0], now.nodes[1]);
    const auto out = sessionText(now);
    EXPECT_FALSE(out.editedInPlace);
    EXPECT_EQ(out.rewriteReason, "the nodes are in a new order");
    EXPECT_EQ(out.text, config::formatSession(now));
    EXPECT_EQ(describe(parsed(out.text)), describe(now));
}

TEST(SessionText, WhatHasNoPlaceInTheTextIsWrittenAnew) {
    config::Session now = parsed(kHand);
    now.engine.block = 512;
    auto out = sessionText(now);
    EXPECT_FALSE(out.editedInPlace);
    EXPECT_EQ(out.rewriteReason, "[engine] changed");
    EXPECT_EQ(describe(parsed(out.text)), describe(now));

    // Parameters as dotted keys: a value changes in place, a new key does not.
    now = parsed("[[node]]\nid = \"q\"\nprocessor = \"biquad\"\nparams.q = 1 # dotted\n");
    now.nodes[0].params[0].value = 2;
    out = sessionText(now);
    EXPECT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, "[[node]]\nid = \"q\"\nprocessor = \"biquad\"\nparams.q = 2.0 # dotted\n");
    now.nodes[0].params.push_back({"type", 1, {}});
    out = sessionText(now);
    EXPECT_FALSE(out.editedInPlace);
    EXPECT_EQ(out.rewriteReason, "node 'q' writes its parameters as dotted keys");
    EXPECT_EQ(describe(parsed(out.text)), describe(now));

    // A session built in memory has no text to keep.
    config::Session fresh;
    fresh.nodes.push_back(gainNode("g", -1, false));
    out = sessionText(fresh);
    EXPECT_FALSE(out.editedInPlace);
    EXPECT_EQ(out.rewriteReason, "");
    EXPECT_EQ(out.text, config::formatSession(fresh));
}

TEST(SessionText, NewLinesEndAsTheFilesLinesDo) {
    config::Session now = parsed("[[node]]\r\nid = \"a\"\r\nprocessor = \"gain\"\r\n");
    now.nodes[0].params.push_back({"gain_db", 1, {}});
    now.nodes[0].bypass = true;
    const auto out = sessionText(now);
    ASSERT_TRUE(out.editedInPlace) << out.rewriteReason;
    EXPECT_EQ(out.text, "[[node]]\r\nid = \"a\"\r\nprocessor = \"gain\"\r\nparams = { gain_db = 1.0 }\r\nbypass = true\r\n");
}

TEST(SessionText, AnEditThatDoesNotReadBackIsWrittenAnew) {
    // The last line of a multi-line string starts with '#', directly above b's
    // header: taken for b's comment, it would go with b and cut the string.
    config::Session now = parsed("[[node]]\nid = \"a\"\npath = \"a.so\"\n"
                                 "watch = { source = \"s\", build = \"\"\"\nmake\n# done\"\"\" }\n"
                                 "[[node]]\nid = \"b\"\nprocessor = \"gain\"\n");
    now.nodes.pop_back();
    const auto out = sessionText(now);
    EXPECT_FALSE(out.editedInPlace);
    EXPECT_EQ(out.rewriteReason, "the edited text did not read back the same");
    EXPECT_EQ(out.text, config::formatSession(now));
    EXPECT_EQ(describe(parsed(out.text)), describe(now));
}

TEST(SessionText, SaveWritesTheEditedTextAndKeepsTheOldBytesAsBackup) {
    const std::string dir = test::tempDir("savetext");
    const std::string path = dir + "/rig.toml";
    test::writeText(path, kHand);
    auto s = config::loadSession(path);
    ASSERT_TRUE(s) << s.error();
    param(s.value(), "src", "level_db").value = -12;
    auto written = config::saveSession(s.value(), path);
    ASSERT_TRUE(written) << written.error();
    EXPECT_EQ(test::readText(path), written.value());
    EXPECT_EQ(test::readText(path + "~"), kHand);
    EXPECT_NE(written.value().find("params = { level_db = -12.0 } # as the engineer typed it\n"), std::string::npos);
    EXPECT_NE(written.value().find("# Saved by hand; rackterm must keep these words.\n"), std::string::npos);

    // The caller adopts the written text; the next save edits it and backs it up.
    s->sourceText = written.value();
    param(s.value(), "out", "gain_db").value = 0;
    auto again = config::saveSession(s.value(), path);
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ(test::readText(path + "~"), written.value());
    EXPECT_NE(again.value().find("gain_db = 0.0 # a little push\n"), std::string::npos) << again.value();
    EXPECT_NE(again.value().find("level_db = -12.0"), std::string::npos) << again.value();
    std::filesystem::remove_all(dir);
}
