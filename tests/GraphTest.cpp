// The processing graph: the planner (Kahn order, channel rules, dual mono,
// loops, limits), session files with connections and their errors, offline
// renders of real recordings through graphs checked sample by sample against
// references (sox -m for a sum, separate mono renders for dual mono, a
// reference computed here for feedback and for delay compensation), live
// edits through the real Runtime (connect, disconnect, undo, redo, splices,
// save), and connecting and disconnecting under a sine without a click.
#include "support/LiveLoop.hpp"
#include "support/Support.hpp"

#include <rackterm/config/Session.hpp>
#include <rackterm/engine/Graph.hpp>
#include <rackterm/loader/Loader.hpp>

#include <sndfile.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>

using namespace rackterm;
using engine::kGraphInput;
using engine::kGraphOutput;

namespace {

engine::GraphEdge edge(uint32_t from, uint32_t to, bool feedback = false) {
    engine::GraphEdge e;
    e.from = from;
    e.to = to;
    e.feedback = feedback;
    return e;
}

engine::GraphSpec stereoNodes(std::initializer_list<const char*> ids) {
    engine::GraphSpec g;
    for (const char* id : ids) g.nodes.push_back({id, 2, 2, 0});
    return g;
}

}  // namespace

// ---- the planner ----------------------------------------------------------

TEST(GraphPlan, TopologicalOrderOfASixteenNodeGraph) {
    // n0..n15 listed out of signal order: a fan-out at n3, fan-ins at n9 and n15, a feedback edge.
    engine::GraphSpec g;
    for (int i = 0; i < 16; ++i) g.nodes.push_back({"n" + std::to_string(i), 2, 2, 0});
    const std::vector<std::pair<uint32_t, uint32_t>> links = {
        {15, 14}, {3, 12}, {3, 7}, {3, 9}, {12, 9}, {7, 9},  {9, 0},   {0, 5},  {5, 15}, {1, 15},
        {2, 1},   {4, 2},  {6, 4}, {8, 6}, {10, 8}, {11, 10}, {13, 11}, {9, 13}, {14, 6}};
    g.edges.push_back(edge(kGraphInput, 3));
    for (auto [a, b] : links) g.edges.push_back(edge(a, b, a == 14 && b == 6 ? false : false));
    g.edges.push_back(edge(14, kGraphOutput));
    // 14 -> 6 closes a loop (6 -> 4 -> 2 -> 1 -> 15 -> 14): refused without feedback...
    auto refused = engine::planGraph(g);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().find("closes a loop"), std::string::npos) << refused.error();
    // ... planned with it.
    for (auto& e : g.edges)
        if (e.from == 14 && e.to == 6) e.feedback = true;
    auto plan = engine::planGraph(g);
    ASSERT_TRUE(plan) << plan.error();
    const auto& order = plan.value().order;
    ASSERT_EQ(order.size(), 16u);
    std::vector<size_t> at(16);
    for (size_t i = 0; i < order.size(); ++i) at[order[i]] = i;
    for (const auto& e : g.edges)
        if (!e.feedback && e.from < 16 && e.to < 16) EXPECT_LT(at[e.from], at[e.to]) << e.from << " -> " << e.to;
    // Kahn with the lowest-numbered ready node first: one exact order.
    const std::vector<uint32_t> expected = {3, 7, 12, 9, 0, 5, 13, 11, 10, 8, 6, 4, 2, 1, 15, 14};
    EXPECT_EQ(order, expected);
    EXPECT_EQ(plan.value().feedbackCopies.size(), 2u) << "two channels of n14 are carried to the next block";
}

TEST(GraphPlan, ALoopIsRefusedWithItsPath) {
    auto g = stereoNodes({"eq", "comp"});
    g.edges = {edge(kGraphInput, 0), edge(0, 1), edge(1, 0), edge(1, kGraphOutput)};
    uint32_t bad = 99;
    auto p = engine::planGraph(g, &bad);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), "connection comp -> eq closes a loop eq -> comp -> eq; mark one connection feedback = true");
    EXPECT_EQ(bad, 2u);
    g.edges[2].feedback = true;
    EXPECT_TRUE(engine::planGraph(g));
    // The newest connection of the loop comes first in signal order: it is still the one named.
    auto back = stereoNodes({"eq", "comp"});
    back.edges = {edge(kGraphInput, 0), edge(1, 0), edge(0, 1), edge(1, kGraphOutput)};
    auto b = engine::planGraph(back, &bad);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error(), "connection eq -> comp closes a loop comp -> eq -> comp; mark one connection feedback = true");
    EXPECT_EQ(bad, 2u);
    auto self = stereoNodes({"x"});
    self.edges = {edge(kGraphInput, 0), edge(0, 0), edge(0, kGraphOutput)};
    auto s = engine::planGraph(self);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), "connection x -> x closes a loop x -> x; mark one connection feedback = true");
}

TEST(GraphPlan, ChannelRulesAndTheirErrors) {
    // 1 -> 2 copies, 2 -> 1 sums.
    engine::GraphSpec g = stereoNodes({"st"});
    g.inputs = 1;
    g.outputs = 1;
    g.edges = {edge(kGraphInput, 0), edge(0, kGraphOutput)};
    auto p = engine::planGraph(g);
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p.value().mixes[p.value().firstOutputMix].termCount, 2u) << "two channels summed into one output";
    // 6 -> 2: names both ends.
    g.inputs = 6;
    auto m = engine::planGraph(g);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error(), "port count mismatch: input:out_1..out_6 (6 channels) -> st:in_1..in_2 (2 channels); connect "
                         "single ports, e.g. input:out_1 -> st:in_1");
    // A port that does not exist.
    g.inputs = 2;
    g.edges[0].toPort = 2;
    auto port = engine::planGraph(g);
    ASSERT_FALSE(port);
    EXPECT_EQ(port.error(), "st has 2 inputs; there is no in_3");
    // The same ports twice.
    g.edges[0].toPort = -1;
    g.edges.push_back(edge(kGraphInput, 0));
    auto twice = engine::planGraph(g);
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error(), "connection input:out_1..out_2 -> st:in_1..in_2 is made twice; remove one");
}

TEST(GraphPlan, AMonoProcessorOnAStereoConnectionRunsDualMono) {
    engine::GraphSpec g;
    g.nodes = {{"eq", 2, 2, 0}, {"mono", 1, 1, 0}, {"solo", 1, 1, 0}};
    g.edges = {edge(kGraphInput, 0), edge(0, 1), edge(1, kGraphOutput), edge(kGraphInput, 2)};
    g.edges.back().fromPort = 0;
    g.edges.push_back(edge(2, kGraphOutput));
    auto p = engine::planGraph(g);
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p.value().copies[1], 2u);
    EXPECT_EQ(p.value().outWidth[1], 2u);
    EXPECT_EQ(p.value().copies[2], 1u) << "one channel in: one instance";
}

TEST(GraphPlan, BuffersAreReusedAlongAChain) {
    engine::GraphSpec g;
    for (int i = 0; i < 64; ++i) g.nodes.push_back({"n" + std::to_string(i), 2, 2, 0});
    g.edges = engine::GraphSpec::chain(64);
    auto p = engine::planGraph(g);
    ASSERT_TRUE(p);
    EXPECT_LE(p.value().pooledBuffers, 4u) << "a chain needs two stereo buffers in turn, not one per node";
    EXPECT_TRUE(p.value().mixes.size() == p.value().firstOutputMix + 2) << "a plain chain has no sums but the output";
}

TEST(GraphPlan, TheConnectionLimitHolds) {
    engine::GraphSpec g = stereoNodes({"a"});
    for (size_t i = 0; i <= kMaxConnections; ++i) g.edges.push_back(edge(kGraphInput, 0));
    auto p = engine::planGraph(g);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error(), "a session holds at most 1024 connections; this would make 1025");
}

TEST(GraphPlan, LatencyIsCompensatedAtEveryFanIn) {
    engine::GraphSpec g;
    g.nodes = {{"slow", 2, 2, 100}, {"fast", 2, 2, 0}, {"sum", 2, 2, 0}};
    g.edges = {edge(kGraphInput, 0), edge(kGraphInput, 1), edge(0, 2), edge(1, 2), edge(2, kGraphOutput)};
    auto p = engine::planGraph(g);
    ASSERT_TRUE(p) << p.error();
    EXPECT_EQ(p.value().totalLatency, 100u);
    EXPECT_EQ(p.value().outLatency[2], 100u);
    ASSERT_EQ(p.value().delayFrames.size(), 2u) << "the fast path's two channels";
    EXPECT_EQ(p.value().delayFrames[0], 100u);
    EXPECT_EQ(p.value().delayEdge[0], 3u);
}

// ---- session files --------------------------------------------------------

namespace {

Result<config::Session> parse(const std::string& text) { return config::parseSession(text, "g.toml"); }

const char* kTwoGains = "[[node]]\nid = \"eq\"\nprocessor = \"gain\"\n[[node]]\nid = \"rev\"\nprocessor = \"gain\"\n";

std::unique_ptr<app::Runtime> open(const std::string& text, std::string* error = nullptr) {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto s = config::parseSession(text, "g.toml");
    if (!s) {
        if (error) *error = s.error();
        return nullptr;
    }
    auto r = app::Runtime::open(s.value(), 48000, 64);
    if (!r) {
        if (error) *error = r.error();
        return nullptr;
    }
    r.value()->setOffline(true);
    return std::move(r.value());
}

std::string fixtureNode(const std::string& id, const std::string& fixture, const std::string& params = "") {
    return "[[node]]\nid = \"" + id + "\"\npath = \"" + test::fixtureDir() + "/libfixture_" + fixture + ".so\"\n" +
           (params.empty() ? "" : "params = { " + params + " }\n");
}

std::string connection(const std::string& from, const std::string& to, const std::string& extra = "") {
    return "[[connection]]\nfrom = \"" + from + "\"\nto = \"" + to + "\"\n" + extra;
}

}  // namespace

TEST(GraphSession, ConnectionsParseWithTheirLevelsAndFeedback) {
    auto s = parse(std::string(kTwoGains) +
                   "[[connection]]\nfrom = \"input\"\nto = \"eq\"\n"
                   "[[connection]]\nfrom = \"eq:out_1\"\nto = \"rev:in_2\"\ngain_db = -12.0\n"
                   "[[connection]]\nfrom = \"rev\"\nto = \"eq\"\nfeedback = true\n");
    ASSERT_TRUE(s) << s.error();
    ASSERT_EQ(s.value().connections.size(), 3u);
    EXPECT_EQ(s.value().connections[1].gainDb, -12.0);
    EXPECT_TRUE(s.value().connections[2].feedback);
    auto e = config::parseEndpoint("rev:in_2", false);
    ASSERT_TRUE(e);
    EXPECT_EQ(e.value().node, "rev");
    EXPECT_EQ(e.value().port, 1);
}

TEST(GraphSession, ErrorsNameTheFileLineAndColumn) {
    const std::string base = kTwoGains;
    auto unknown = parse(base + "[[connection]]\nfrom = \"eqq\"\nto = \"rev\"\n");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error(), "g.toml:8:8: no node 'eqq' (did you mean 'eq'?)");
    auto port = parse(base + "[[connection]]\nfrom = \"eq:in_1\"\nto = \"rev\"\n");
    ASSERT_FALSE(port);
    EXPECT_EQ(port.error(),
              "g.toml:8:8: 'eq:in_1': the port of a connection's from is out_K (an output port), K from 1 to 32");
    auto backwards = parse(base + "[[connection]]\nfrom = \"output\"\nto = \"rev\"\n");
    ASSERT_FALSE(backwards);
    EXPECT_EQ(backwards.error(), "g.toml:8:8: 'output' is where the graph ends; it cannot be a connection's from");
    auto reserved = parse("[[node]]\nid = \"input\"\nprocessor = \"gain\"\n");
    ASSERT_FALSE(reserved);
    EXPECT_NE(reserved.error().find("is reserved for the JACK ports"), std::string::npos);
    auto ports = parse("[engine]\ninput_ports = 40\n");
    ASSERT_FALSE(ports);
    EXPECT_EQ(ports.error(), "g.toml:2:15: input_ports must be a whole number of ports from 1 to 32, e.g. 6");

    // What needs the processors is checked when the session opens: port counts, loops.
    std::string why;
    EXPECT_FALSE(open(base + "[[connection]]\nfrom = \"input\"\nto = \"eq\"\n[[connection]]\nfrom = \"eq\"\nto = \"rev:in_3\"\n", &why));
    EXPECT_EQ(why, "g.toml:10:1: rev has 2 inputs; there is no in_3");
    EXPECT_FALSE(open(base + "[[connection]]\nfrom = \"eq\"\nto = \"rev\"\n[[connection]]\nfrom = \"rev\"\nto = \"eq\"\n", &why));
    EXPECT_EQ(why, "g.toml:10:1: connection rev -> eq closes a loop eq -> rev -> eq; mark one connection feedback = true");
    EXPECT_FALSE(open("[engine]\ninput_ports = 3\n" + base + "[[connection]]\nfrom = \"input\"\nto = \"eq\"\n", &why));
    EXPECT_EQ(why, "g.toml:9:1: port count mismatch: input:out_1..out_3 (3 channels) -> eq:in_1..in_2 (2 channels); "
                   "connect single ports, e.g. input:out_1 -> eq:in_1");
}

TEST(GraphSession, ASessionWithoutConnectionsIsTheChainItAlwaysWas) {
    auto rt = open(kTwoGains);
    ASSERT_TRUE(rt);
    EXPECT_TRUE(rt->isChain());
    app::CommandContext ctx{*rt};
    const app::Reply r = test::run(ctx, "list connections");
    EXPECT_EQ(r.text, "chain: input -> eq; eq -> rev; rev -> output");
    EXPECT_EQ(rt->graph().order, (std::vector<size_t>{0, 1}));
}

// ---- live edits through the Runtime ------------------------------------------

TEST(GraphEdits, ConnectDisconnectUndoRedoAndSaveKeepingComments) {
    const std::string dir = test::tempDir("graphedit");
    const std::string path = dir + "/s.toml";
    test::writeText(path, "# my send\n[session]\nname = \"g\"\n\n# the eq\n" + std::string(kTwoGains));
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto s = config::loadSession(path);
    ASSERT_TRUE(s);
    auto opened = app::Runtime::open(s.value(), 48000, 64);
    ASSERT_TRUE(opened);
    app::Runtime& rt = *opened.value();
    rt.setOffline(true);
    app::CommandContext ctx{rt};
    app::Reply r = test::run(ctx, "connect eq output -12");
    ASSERT_TRUE(r.ok) << r.text;
    EXPECT_EQ(r.text, "connect eq -> output (-12 dB)");
    EXPECT_FALSE(rt.isChain()) << "the chain is written out, then the send added";
    EXPECT_EQ(test::run(ctx, "list connections").text,
              "input -> eq; eq -> rev; rev -> output; eq -> output (-12 dB)");
    r = test::run(ctx, "connect rev eq");
    ASSERT_FALSE(r.ok);
    EXPECT_EQ(r.text, "connection rev -> eq closes a loop eq -> rev -> eq; mark one connection feedback = true");
    ASSERT_TRUE(test::run(ctx, "connect rev eq -6 feedback").ok);
    ASSERT_TRUE(test::run(ctx, "disconnect eq output").ok);
    EXPECT_EQ(test::run(ctx, "list connections").text, "input -> eq; eq -> rev; rev -> output; rev -> eq (-6 dB) (feedback)");
    r = test::run(ctx, "disconnect eq nothing");
    ASSERT_FALSE(r.ok);
    EXPECT_EQ(r.text, "no connection eq -> nothing; connected are: eq -> rev");
    // Undo walks back through all three, to the chain; redo comes forward again.
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_TRUE(rt.isChain());
    EXPECT_FALSE(rt.dirty()) << "back to what the file holds";
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    ASSERT_TRUE(test::run(ctx, "connect eq output -3").ok) << "a new level of an existing connection";
    EXPECT_EQ(test::run(ctx, "list connections").text, "input -> eq; eq -> rev; rev -> output; eq -> output (-3 dB)");
    ASSERT_TRUE(test::run(ctx, "save").ok);
    const std::string saved = test::readText(path);
    EXPECT_EQ(saved.rfind("# my send\n[session]\nname = \"g\"\n\n# the eq\n[[node]]", 0), 0u) << saved;
    EXPECT_NE(saved.find("[[connection]]\nfrom = \"eq\"\nto = \"output\"\ngain_db = -3.0\n"), std::string::npos) << saved;
    auto back = config::loadSession(path);
    ASSERT_TRUE(back) << back.error();
    ASSERT_EQ(back.value().connections.size(), 4u);
    EXPECT_EQ(back.value().connections[3].gainDb, -3.0);
    // A removed connection leaves the file with only its own table.
    ASSERT_TRUE(test::run(ctx, "disconnect eq output").ok);
    ASSERT_TRUE(test::run(ctx, "save").ok);
    const std::string again = test::readText(path);
    EXPECT_EQ(again.find("to = \"output\"\ngain_db"), std::string::npos) << again;
    EXPECT_EQ(again.rfind("# my send\n", 0), 0u);
    std::filesystem::remove_all(dir);
}

TEST(GraphEdits, AddAfterSplicesAndRemoveSplicesOut) {
    auto rt = open(std::string(kTwoGains) +
                   "[[connection]]\nfrom = \"input\"\nto = \"eq\"\n"
                   "[[connection]]\nfrom = \"eq\"\nto = \"rev\"\ngain_db = -6.0\n"
                   "[[connection]]\nfrom = \"eq\"\nto = \"output\"\n"
                   "[[connection]]\nfrom = \"rev\"\nto = \"output\"\n");
    ASSERT_TRUE(rt);
    app::CommandContext ctx{*rt};
    ASSERT_TRUE(test::run(ctx, "add tone biquad after eq").ok);
    EXPECT_EQ(test::run(ctx, "list connections").text,
              "input -> eq; tone -> rev (-6 dB); tone -> output; rev -> output; eq -> tone");
    EXPECT_EQ(rt->graph().order, (std::vector<size_t>{0, 1, 2})) << "eq, tone, rev";
    ASSERT_TRUE(test::run(ctx, "remove tone").ok);
    EXPECT_EQ(test::run(ctx, "list connections").text, "input -> eq; rev -> output; eq -> rev (-6 dB); eq -> output");
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_EQ(test::run(ctx, "list connections").text,
              "input -> eq; tone -> rev (-6 dB); tone -> output; rev -> output; eq -> tone");
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_EQ(test::run(ctx, "list connections").text,
              "input -> eq; eq -> rev (-6 dB); eq -> output; rev -> output");
    EXPECT_FALSE(rt->dirty());
}

TEST(GraphEdits, ARemoveThatWouldLeaveAGraphThatDoesNotFitIsRefused) {
    // x feeds the mono m, which runs dual mono because of it; m:out_2 is connected.
    auto rt = open("[[node]]\nid = \"x\"\nprocessor = \"gain\"\n" + fixtureNode("m", "mono_gain") +
                   connection("input:in_1", "x:in_1") + connection("input:in_2", "x:in_2") + connection("x", "m") +
                   connection("m:out_1", "output:out_1") + connection("m:out_2", "output:out_2"));
    ASSERT_TRUE(rt);
    app::CommandContext ctx{*rt};
    const app::Reply r = test::run(ctx, "remove x");
    ASSERT_FALSE(r.ok);
    EXPECT_EQ(r.text, "cannot remove x: the graph without it does not fit: g.toml:19:1: m has 1 output; there is no out_2; change its "
                      "connections first");
    EXPECT_EQ(rt->nodeCount(), 2u);
}

TEST(GraphEdits, ALevelChangeBelowTheFloatsResolutionStillSettles) {
    auto rt = open(kTwoGains);
    ASSERT_TRUE(rt);
    rt->setOffline(false);
    app::CommandContext ctx{*rt};
    for (const char* line : {"connect input output -6", "connect input output -6.000001", "connect input output -12"}) {
        const app::Reply r = test::settle(*rt, app::execute(ctx, line), 64, 2000);
        ASSERT_TRUE(r.ok) << line << ": " << r.text;
    }
}

TEST(GraphEdits, LatencyIsShownPerNodeAndInTotalAndAnOldBuildStillLoads) {
    auto rt = open("[[node]]\nid = \"la\"\npath = \"" + test::fixtureDir() + "/libfixture_latency100.so\"\n"
                   "[[node]]\nid = \"old\"\npath = \"" + test::fixtureDir() + "/libfixture_old_v2.so\"\n");
    ASSERT_TRUE(rt);
    app::CommandContext ctx{*rt};
    EXPECT_EQ(test::run(ctx, "list nodes").text,
              "la=latency100(active, latency 100 frames (2.08 ms)) old=old_v2(active); total latency 100 frames (2.08 ms)")
        << "the old build's latency_frames lies beyond its struct_size: never read";
    EXPECT_NE(test::run(ctx, "status").text.find("latency 100 frames (2.08 ms)"), std::string::npos);
}

// ---- renders of real recordings through graphs ------------------------------

namespace {

class GraphRender : public ::testing::Test {
protected:
    void SetUp() override { dir = test::tempDir("graphrender"); }
    void TearDown() override { std::filesystem::remove_all(dir); }

    test::RunResult render(const std::string& session, const std::string& in, const std::string& out) {
        const std::string path = dir + "/s.toml";
        test::writeText(path, "[session]\nname = \"r\"\n" + session);
        return test::run({test::binary(), "render", path, "-i", in, "-o", out},
                         {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    }
    /// A recording as 32-bit float (its 16-bit values exactly), `channels` copies side by side.
    std::string floatCopy(const std::string& from, const std::string& name) {
        test::Sound s = test::readSound(from);
        const std::string path = dir + "/" + name;
        test::writeSound(path, s, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        return path;
    }
    std::string dir;
};


}  // namespace

TEST_F(GraphRender, TwoRecordingsSummedIntoOneNodeEqualSoxMix) {
    const std::string a = floatCopy("/usr/share/sounds/alsa/Front_Left.wav", "a.wav");
    const std::string b = floatCopy("/usr/share/sounds/alsa/Rear_Right.wav", "b.wav");
    const std::string ab = dir + "/ab.wav", mixed = dir + "/sox.wav", out = dir + "/out.wav";
    // One stereo file holding both recordings (sox -M pads the shorter with silence).
    ASSERT_EQ(test::run({"sox", "-M", a, b, ab}).exitCode, 0);
    ASSERT_EQ(test::run({"sox", "-m", "-v", "1", a, "-v", "1", b, "-e", "floating-point", "-b", "32", mixed}).exitCode, 0);
    auto r = render("[engine]\noutput_ports = 1\n[[node]]\nid = \"mix\"\nprocessor = \"gain\"\n" +
                        connection("input:in_1", "mix:in_1") + connection("input:in_2", "mix:in_1") +
                        connection("mix:out_1", "output"),
                    ab, out);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto got = test::readSound(out), want = test::readSound(mixed);
    ASSERT_EQ(got.channels, 1);
    ASSERT_EQ(got.frames(), want.frames());
    size_t differing = 0;
    for (size_t i = 0; i < got.samples.size(); ++i) differing += got.samples[i] != want.samples[i];
    EXPECT_EQ(differing, 0u) << "the sum must equal sox -m sample for sample";
    EXPECT_GT(test::rmsDb(got.channel(0)), -40.0) << "and be a real signal";
}

TEST_F(GraphRender, DualMonoEqualsTwoSeparateMonoRenders) {
    const std::string a = floatCopy("/usr/share/sounds/alsa/Front_Left.wav", "a.wav");
    const std::string b = floatCopy("/usr/share/sounds/alsa/Front_Right.wav", "b.wav");
    const std::string ab = dir + "/ab.wav";
    ASSERT_EQ(test::run({"sox", "-M", a, b, ab}).exitCode, 0);
    const std::string node = fixtureNode("m", "mono_gain", "gain_db = -6.0");
    auto stereo = render(node, ab, dir + "/stereo.wav");  // a chain: input (2) -> m (1 in, 1 out) -> output
    ASSERT_EQ(stereo.exitCode, 0) << stereo.err;
    const std::string mono = "[engine]\ninput_ports = 1\noutput_ports = 1\n" + node;
    ASSERT_EQ(render(mono, a, dir + "/left.wav").exitCode, 0);
    ASSERT_EQ(render(mono, b, dir + "/right.wav").exitCode, 0);
    const auto st = test::readSound(dir + "/stereo.wav"), l = test::readSound(dir + "/left.wav"),
               rr = test::readSound(dir + "/right.wav");
    ASSERT_EQ(st.channels, 2);
    const auto left = l.channel(0), right = rr.channel(0), st0 = st.channel(0), st1 = st.channel(1);
    ASSERT_EQ(st0.size(), std::max(left.size(), right.size())) << "sox -M pads the shorter recording";
    for (size_t i = 0; i < left.size(); ++i) ASSERT_EQ(st0[i], left[i]) << i;
    for (size_t i = 0; i < right.size(); ++i) ASSERT_EQ(st1[i], right[i]) << i;
    const auto source = test::readSound(a).channel(0);
    EXPECT_NEAR(test::rmsDb(left) - test::rmsDb(source), -6.02, 0.05);
}

TEST_F(GraphRender, AFeedbackNetworkEqualsItsReferenceAndDecays) {
    // input -> mix -> output; mix -> fb; fb -> mix at -6 dB, one block late. Blocks of 256.
    const std::string in = floatCopy("/usr/share/sounds/alsa/Front_Center.wav", "in.wav");
    const std::string session = "[engine]\nblock = 256\ninput_ports = 1\noutput_ports = 1\n" +
                                fixtureNode("mix", "mono_gain") + fixtureNode("fb", "mono_gain") +
                                connection("input", "mix") + connection("mix", "output") + connection("mix", "fb") +
                                connection("fb", "mix", "gain_db = -6.0\nfeedback = true\n");
    for (int run = 0; run < 2; ++run) ASSERT_EQ(render(session, in, dir + "/fb" + std::to_string(run) + ".wav").exitCode, 0);
    const auto got = test::readSound(dir + "/fb0.wav"), again = test::readSound(dir + "/fb1.wav");
    EXPECT_EQ(got.samples, again.samples) << "deterministic";
    const auto x = test::readSound(in).channel(0);
    const float g = static_cast<float>(std::pow(10.0, -6.0 / 20.0));
    std::vector<float> y(x.size()), previous(256, 0.0f);
    for (size_t start = 0; start < x.size(); start += 256) {
        const size_t n = std::min<size_t>(256, x.size() - start);
        for (size_t i = 0; i < n; ++i) y[start + i] = x[start + i] + g * previous[i];
        std::copy_n(y.begin() + static_cast<long>(start), n, previous.begin());
    }
    ASSERT_EQ(got.frames(), y.size());
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, static_cast<double>(std::fabs(got.samples[i] - y[i])));
    EXPECT_LE(worst, 1e-6) << "feedback one block late, at -6 dB";
    // Blocks split by a script's `at` lines: the feedback is still exactly one rack block (256 frames) late.
    test::writeText(dir + "/split.script", "at 0.0101s set mix.gain_db 0\nat 0.0333s set fb.gain_db 0\nat 0.5s set mix.gain_db 0\n");
    {
        const std::string path = dir + "/s.toml";
        test::writeText(path, "[session]\nname = \"r\"\n" + session);
        auto split = test::run({test::binary(), "render", path, "-i", in, "-o", dir + "/split.wav", "--script", dir + "/split.script"},
                               {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
        ASSERT_EQ(split.exitCode, 0) << split.err;
        const auto cut = test::readSound(dir + "/split.wav");
        ASSERT_EQ(cut.frames(), y.size());
        double worstCut = 0;
        for (size_t i = 0; i < y.size(); ++i) worstCut = std::max(worstCut, static_cast<double>(std::fabs(cut.samples[i] - y[i])));
        EXPECT_LE(worstCut, 1e-6) << "blocks of other lengths change nothing";
    }
    // An impulse decays: each block later it is 6 dB lower.
    test::Sound impulse;
    impulse.rate = 48000;
    impulse.channels = 1;
    impulse.samples.assign(256 * 40, 0.0f);
    impulse.samples[0] = 1.0f;
    test::writeSound(dir + "/impulse.wav", impulse, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    ASSERT_EQ(render(session, dir + "/impulse.wav", dir + "/ring.wav").exitCode, 0);
    const auto ring = test::readSound(dir + "/ring.wav");
    for (int k = 1; k < 40; ++k) EXPECT_NEAR(ring.samples[256 * k], std::pow(g, k), 1e-6) << "block " << k;
    EXPECT_LT(std::fabs(ring.samples.back()), 1e-10);
}

TEST_F(GraphRender, UnequalPathLatenciesAreCompensatedSampleBySample) {
    // Two paths into one sum, one through a 100-frame delay that reports 100.
    const std::string in = floatCopy("/usr/share/sounds/alsa/Front_Center.wav", "in.wav");
    const std::string session = "[engine]\ninput_ports = 1\n" + fixtureNode("late", "latency100") +
                                "[[node]]\nid = \"sum\"\nprocessor = \"gain\"\n" + connection("input", "late") +
                                connection("input", "sum") + connection("late", "sum") + connection("sum", "output");
    auto r = render(session, in, dir + "/pdc.wav");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto got = test::readSound(dir + "/pdc.wav");
    const auto x = test::readSound(in).channel(0), left = got.channel(0), right = got.channel(1);
    ASSERT_EQ(got.frames(), x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        const float delayed = i >= 100 ? x[i - 100] : 0.0f;
        ASSERT_EQ(left[i], delayed + delayed) << "frame " << i;
        ASSERT_EQ(right[i], delayed + delayed) << "frame " << i;
    }
}

TEST_F(GraphRender, ChainSessionsRenderAsTheExplicitGraphOfTheSameChain) {
    // A chain session and the same chain written as connections give the same bits.
    const std::string in = "/usr/share/sounds/alsa/Front_Center.wav";
    const std::string nodes =
        "[[node]]\nid = \"eq\"\nprocessor = \"biquad\"\n[[node]]\nid = \"sat\"\nprocessor = \"saturator\"\n"
        "[[node]]\nid = \"d\"\nprocessor = \"delay\"\n[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { gain_db = -3.0 }\n";
    ASSERT_EQ(render(nodes, in, dir + "/chain.wav").exitCode, 0);
    ASSERT_EQ(render(nodes + connection("input", "eq") + connection("eq", "sat") + connection("sat", "d") +
                         connection("d", "g") + connection("g", "output"),
                     in, dir + "/graph.wav")
                  .exitCode,
              0);
    EXPECT_EQ(test::readSound(dir + "/chain.wav").samples, test::readSound(dir + "/graph.wav").samples);
}

// ---- live: no click ------------------------------------------------------------

TEST(GraphLive, ConnectAndDisconnectUnderASineMakeNoClick) {
    // A send at 0 dB doubles the level: without its fade it is a step of the
    // whole signal. Connect, change its level, disconnect, undo, redo.
    auto rt = open(std::string(kTwoGains));
    ASSERT_TRUE(rt);
    rt->setOffline(false);
    test::SineThread audio(*rt);
    app::CommandContext ctx{*rt};
    auto live = [&](const std::string& line) { return test::await(*rt, app::execute(ctx, line)); };
    for (int i = 0; i < 6; ++i) {
        for (const char* line : {"connect input output -6", "connect input output -12", "disconnect input output", "undo",
                                 "undo", "redo", "disconnect input output"}) {
            const app::Reply r = live(line);
            ASSERT_TRUE(r.ok) << line << ": " << r.text;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    audio.stop();
    EXPECT_LE(audio.largestStep(), 2.0f * test::SineThread::cleanStep()) << "a click when a connection came or went";
}

TEST(GraphLive, ARebuiltRackCarriesOnTheDelayLinesAndTheFeedback) {
    // Adding an unconnected node builds a new rack; what is in flight (100
    // frames in a compensating delay line, a block in a feedback connection)
    // must carry on into it, sample for sample.
    auto rt = open("[engine]\ninput_ports = 1\noutput_ports = 1\n" + fixtureNode("late", "latency100") +
                   fixtureNode("mix", "mono_gain") + fixtureNode("fb", "mono_gain") + connection("input", "late:in_1") +
                   connection("late:out_1", "mix") + connection("input", "mix") + connection("mix", "output") +
                   connection("mix", "fb") + connection("fb", "mix", "gain_db = -6.0\nfeedback = true\n"));
    ASSERT_TRUE(rt);
    app::CommandContext ctx{*rt};
    const float g = static_cast<float>(std::pow(10.0, -6.0 / 20.0));
    // An impulse at frame 0: y = x[n-100] + x[n-100] (compensated) + g * y one block back.
    std::vector<float> in(64, 0.0f), out(64), reference(64 * 40, 0.0f), got;
    std::vector<float> x(64 * 40, 0.0f);
    x[0] = 1.0f;
    x[300] = 1.0f;  // in the delay line (it leaves at frame 400) when the rack is rebuilt before frame 320
    for (size_t n = 0; n < reference.size(); ++n) {
        const float direct = n >= 100 ? 2.0f * x[n - 100] : 0.0f;
        reference[n] = direct + (n >= 64 ? g * reference[n - 64] : 0.0f);
    }
    for (int b = 0; b < 40; ++b) {
        if (b == 5 || b == 8) ASSERT_TRUE(test::run(ctx, "add spare" + std::to_string(b) + " gain").ok);
        std::copy_n(x.begin() + b * 64, 64, in.begin());
        const float* ins[1] = {in.data()};
        float* outs[1] = {out.data()};
        rt->engine().process(ins, outs, 64);
        rt->tick();
        got.insert(got.end(), out.begin(), out.end());
    }
    for (size_t n = 0; n < got.size(); ++n)
        ASSERT_NEAR(got[n], reference[n], 1e-5f * std::fabs(reference[n])) << "frame " << n;
    EXPECT_NEAR(got[400], 2.0f + g * got[336], 1e-6f) << "the impulse that was in the delay line";
    EXPECT_GT(got[64 * 12 + 100 - 64], 1e-4f) << "still ringing after both rebuilds";
}
