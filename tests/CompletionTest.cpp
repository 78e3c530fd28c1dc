// Tab completion candidates for the command line, against a real runtime.
#include "support/Support.hpp"

#include <rackterm/tui/Completion.hpp>

#include <gtest/gtest.h>

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
    EXPECT_EQ(tui::complete(*rt, "", "se").words, V({"set"}));
    EXPECT_EQ(tui::complete(*rt, "", "w").words, V({"wait", "w", "wq"}));
    EXPECT_EQ(tui::complete(*rt, "set ", "g").words, V({"gain."}));
    EXPECT_EQ(tui::complete(*rt, "set ", "eq.").words, V({"eq.type", "eq.frequency_hz", "eq.q", "eq.gain_db"}));
    EXPECT_EQ(tui::complete(*rt, "set ", "eq.f").words, V({"eq.frequency_hz"}));
    EXPECT_EQ(tui::complete(*rt, "set eq.type ", "h").words, V({"highpass", "highshelf"}));
    EXPECT_EQ(tui::complete(*rt, "bypass ", "d").words, V({"drive"}));
    EXPECT_EQ(tui::complete(*rt, "bypass drive ", "o").words, V({"on", "off"}));
    EXPECT_EQ(tui::complete(*rt, "list ", "p").words, V({"params", "processors", "ports"}));
    EXPECT_EQ(tui::complete(*rt, "list params ", "").words, V({"src", "eq", "drive", "gain"}));
    EXPECT_TRUE(tui::complete(*rt, "save ", "/tm").files);
    EXPECT_TRUE(tui::complete(*rt, "set ", "zz").words.empty());
}
