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
    EXPECT_EQ(app::complete(*rt, "", "u").words, V({"undo"}));
    EXPECT_EQ(app::complete(*rt, "", "q").words, V({"quit", "quit!", "q", "q!"}));
    EXPECT_EQ(app::complete(*rt, "set ", "g").words, V({"gain."}));
    EXPECT_EQ(app::complete(*rt, "set ", "eq.").words, V({"eq.type", "eq.frequency_hz", "eq.q", "eq.gain_db"}));
    EXPECT_EQ(app::complete(*rt, "set ", "eq.f").words, V({"eq.frequency_hz"}));
    EXPECT_EQ(app::complete(*rt, "set eq.type ", "h").words, V({"highpass", "highshelf"}));
    EXPECT_EQ(app::complete(*rt, "bypass ", "d").words, V({"drive"}));
    EXPECT_EQ(app::complete(*rt, "bypass drive ", "o").words, V({"on", "off"}));
    EXPECT_EQ(app::complete(*rt, "list ", "p").words, V({"params", "processors", "ports"}));
    EXPECT_EQ(app::complete(*rt, "list params ", "").words, V({"src", "eq", "drive", "gain"}));
    EXPECT_TRUE(app::complete(*rt, "save ", "/tm").files);
    EXPECT_TRUE(app::complete(*rt, "set ", "zz").words.empty());
    EXPECT_EQ(app::complete(*rt, "add x ", "ga").words, V({"gain"}));
    EXPECT_EQ(app::complete(*rt, "add x gain ", "a").words, V({"after"}));
    EXPECT_EQ(app::complete(*rt, "add x gain after ", "e").words, V({"eq"}));
    EXPECT_EQ(app::complete(*rt, "help ", "re").words, V({"remove", "redo", "reload", "record"}));
    EXPECT_TRUE(app::complete(*rt, "w ", "").files) << "the vim aliases are rows with their own completer";
    EXPECT_TRUE(app::complete(*rt, "undo ", "").words.empty()) << "undo takes no argument";
    EXPECT_TRUE(app::complete(*rt, "get gain.gain_db ", "").words.empty()) << "past the last argument: nothing";
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
