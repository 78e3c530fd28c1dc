// Tab completion candidates for the command line, against a real runtime.
#include "support/Support.hpp"

#include <rackterm/app/Commands.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

using namespace rackterm;

namespace {
std::unique_ptr<app::Runtime> demo() {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto s = config::loadSession(test::sourceDir() + "/examples/demo.toml");
    EXPECT_TRUE(s);
    auto r = app::Runtime::open(s.value(), 48000, 256);
    EXPECT_TRUE(r) << r.error();
    return std::move(r.value());
}
using V = std::vector<std::string>;
}  // namespace

TEST(Completion, CommandsNodesParamsChoices) {
    auto rt = demo();
    EXPECT_EQ(app::complete(*rt, "", "se").words, V({"set"}));
    EXPECT_EQ(app::complete(*rt, "", "w").words, V({"wait", "w", "wq"}));
    EXPECT_EQ(app::complete(*rt, "", "u").words, V({"undo", "upgrade", "unload"}));
    EXPECT_EQ(app::complete(*rt, "", "q").words, V({"quit", "quit!", "q", "q!"}));
    EXPECT_EQ(app::complete(*rt, "set ", "g").words, V({"gain."}));
    EXPECT_EQ(app::complete(*rt, "set ", "eq.").words, V({"eq.type", "eq.frequency_hz", "eq.q", "eq.gain_db"}));
    EXPECT_EQ(app::complete(*rt, "set ", "eq.f").words, V({"eq.frequency_hz"}));
    EXPECT_EQ(app::complete(*rt, "set eq.type ", "h").words, V({"highpass", "highshelf"}));
    EXPECT_EQ(app::complete(*rt, "bypass ", "d").words, V({"drive"}));
    EXPECT_EQ(app::complete(*rt, "bypass drive ", "o").words, V({"on", "off"}));
    EXPECT_EQ(app::complete(*rt, "list ", "p").words, V({"params", "processors", "packages", "ports"}));
    EXPECT_EQ(app::complete(*rt, "list params ", "").words, V({"src", "eq", "drive", "gain"}));
    EXPECT_TRUE(app::complete(*rt, "save ", "/tm").files);
    EXPECT_TRUE(app::complete(*rt, "set ", "zz").words.empty());
    EXPECT_EQ(app::complete(*rt, "add x ", "ga").words, V({"gain"}));
    EXPECT_EQ(app::complete(*rt, "add x gain ", "a").words, V({"after"}));
    EXPECT_EQ(app::complete(*rt, "add x gain after ", "e").words, V({"eq"}));
    EXPECT_EQ(app::complete(*rt, "help ", "re").words, V({"remove", "redo", "reload", "recover", "record"}));
    EXPECT_TRUE(app::complete(*rt, "w ", "").files) << "the vim aliases are rows with their own completer";
    EXPECT_TRUE(app::complete(*rt, "undo ", "").words.empty()) << "undo takes no argument";
    EXPECT_TRUE(app::complete(*rt, "get gain.gain_db ", "").words.empty()) << "past the last argument: nothing";
}

TEST(Completion, PluginNamesForAdd) {
    auto rt = demo();
    EXPECT_EQ(app::complete(*rt, "add x ", "lv2:http://drobilla.net/plugins/mda/Del").words,
              V({"lv2:http://drobilla.net/plugins/mda/Delay"}));
    EXPECT_EQ(app::complete(*rt, "add x ", "ladspa:amp_").words, V({"ladspa:amp_mono", "ladspa:amp_stereo"}));
    const auto all = app::complete(*rt, "add x ", "lv2:").words;
    EXPECT_GT(all.size(), 50u) << "swh-lv2, mda-lv2 and lv2-examples";
    EXPECT_TRUE(std::all_of(all.begin(), all.end(), [](const std::string& w) { return w.rfind("lv2:", 0) == 0; }));
    EXPECT_EQ(app::complete(*rt, "add x ", "l").words, V({"lv2:", "ladspa:"})) << "the two prefixes first";
}

TEST(Completion, ConnectionEndsAndPorts) {
    auto rt = demo();
    EXPECT_EQ(app::complete(*rt, "connect ", "").words, V({"input", "src", "eq", "drive", "gain"}));
    EXPECT_EQ(app::complete(*rt, "connect ", "eq:").words, V({"eq:out_1", "eq:out_2"}));
    EXPECT_EQ(app::complete(*rt, "connect eq ", "").words, V({"output", "src", "eq", "drive", "gain"}));
    EXPECT_EQ(app::complete(*rt, "connect eq ", "gain:i").words, V({"gain:in_1", "gain:in_2"}));
    EXPECT_EQ(app::complete(*rt, "connect ", "input:").words, V({"input:in_1", "input:in_2"})) << "the JACK port names";
    EXPECT_EQ(app::complete(*rt, "connect eq gain ", "f").words, V({"feedback"}));
    EXPECT_EQ(app::complete(*rt, "disconnect ", "dr").words, V({"drive"}));
    EXPECT_EQ(app::complete(*rt, "list ", "c").words, V({"connections"}));
}

// Every row of the table completes, helps and runs through the same table:
// each name resolves to itself, and `help NAME` gives its usage.
TEST(Completion, TableDrivesHelpAndCompletion) {
    auto rt = demo();
    for (const auto& row : app::commandTable()) {
        const auto c = app::complete(*rt, "", row.name);
        EXPECT_NE(std::find(c.words.begin(), c.words.end(), row.name), c.words.end()) << row.name;
        app::CommandContext ctx{*rt, app::Source::Console};
        const app::Reply help = app::execute(ctx, std::string("help \"") + row.name + "\"");
        EXPECT_TRUE(help.ok) << row.name;
        EXPECT_EQ(help.text.rfind(row.usage, 0), 0u) << help.text;
    }
    // `rackterm ctl` completes exactly the commands the socket takes.
    const std::string script = app::bashCompletion();
    const std::string marker = "local commands=\"";
    const size_t from = script.find(marker);
    ASSERT_NE(from, std::string::npos);
    const size_t to = script.find('"', from + marker.size());
    const auto listed = app::splitWords(script.substr(from + marker.size(), to - from - marker.size()));
    V expected;
    for (const auto& row : app::commandTable())
        if (row.flags & app::kSocket) expected.emplace_back(row.name);
    EXPECT_EQ(listed, expected);
}

// The man page describes every command of the table: each name is a bold
// word of an entry under COMMAND LANGUAGE, each vim alias is listed (as
// :NAME) under KEYS.
TEST(ManPage, ListsEveryCommandOfTheTable) {
    const std::string man = test::readText(test::sourceDir() + "/man/rackterm.1");
    auto section = [&](const std::string& title) {
        const size_t from = man.find(".SH " + title + "\n");
        EXPECT_NE(from, std::string::npos) << title;
        const size_t to = man.find("\n.SH ", from + 1);
        return man.substr(from, to - from);
    };
    const std::string language = section("COMMAND LANGUAGE"), keys = section("KEYS");
    std::vector<std::string> entryWords;  // the words of .B/.BI/.BR lines that start an entry
    size_t pos = 0;
    while ((pos = language.find("\n.TP\n.B", pos)) != std::string::npos) {
        const size_t start = language.find(' ', pos + 5);
        const size_t end = language.find('\n', pos + 5);
        std::string line = language.substr(start, end - start);
        for (char& c : line)
            if (c == '"' || c == ',') c = ' ';
        for (const auto& w : app::splitWords(line)) entryWords.push_back(w);
        pos = end;
    }
    for (const auto& row : app::commandTable()) {
        if (row.flags & app::kAlias) {
            bool listed = false;
            const std::string alias = std::string(":") + row.name;
            for (size_t at = keys.find(alias); at != std::string::npos && !listed; at = keys.find(alias, at + 1))
                listed = at + alias.size() < keys.size() && std::string(" \",\n").find(keys[at + alias.size()]) != std::string::npos;
            EXPECT_TRUE(listed) << alias << " is not under KEYS";
            continue;
        }
        EXPECT_NE(std::find(entryWords.begin(), entryWords.end(), row.name), entryWords.end())
            << row.name << " has no entry under COMMAND LANGUAGE";
    }
}
