// The session document and its journal, through the real Runtime and
// engine (this thread plays the audio thread unless a test starts one):
// parameter mapping on hot swap (a pure function), meter ballistics, the
// bounded journal with merged held keys, undo and redo of every edit (heard,
// at the node's place, click-free), the unsaved flag following the journal,
// and pending replies that hold only their own socket client.
#include "support/LiveLoop.hpp"
#include "support/Support.hpp"

#include <rackterm/app/ControlSocket.hpp>
#include <rackterm/app/Journal.hpp>
#include <rackterm/app/Meters.hpp>
#include <rackterm/app/ParamMapping.hpp>

#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

using namespace rackterm;

namespace {

const rackterm_param_info kGain{"gain_db", "Gain", "dB", -60.0f, 24.0f, 0.0f, 0u, nullptr};
const rackterm_param_info kMix{"mix", "Mix", "", 0.0f, 1.0f, 0.3f, 0u, nullptr};
const rackterm_param_info kFreq{"freq", "Frequency", "Hz", 20.0f, 20000.0f, 1000.0f, RACKTERM_PARAM_LOG, nullptr};

std::unique_ptr<app::Runtime> openText(const std::string& text) {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    auto s = config::parseSession(text, "model.toml");
    EXPECT_TRUE(s) << s.error();
    auto r = app::Runtime::open(s.value(), 48000, 64);
    EXPECT_TRUE(r) << r.error();
    return std::move(r.value());
}

const char* kThreeGains =
    "[[node]]\nid = \"a\"\nprocessor = \"gain\"\n"
    "[[node]]\nid = \"b\"\nprocessor = \"gain\"\nparams = { gain_db = -6.0 }\nbypass = true\n"
    "[[node]]\nid = \"c\"\nprocessor = \"gain\"\n";

/// RMS (dBFS) of a 1 kHz sine at amplitude 0.5 through the rack, over the
/// last 20 of `blocks` blocks of 64 frames (the first ones let ramps settle).
double levelDb(app::Runtime& rt, int blocks = 60) {
    std::vector<float> in(64), l(64), r(64), tail;
    static uint64_t phase = 0;
    for (int b = 0; b < blocks; ++b) {
        for (float& x : in) x = 0.5f * static_cast<float>(std::sin(2 * M_PI * 1000.0 * static_cast<double>(phase++) / 48000.0));
        const float* ins[2] = {in.data(), in.data()};
        float* outs[2] = {l.data(), r.data()};
        rt.engine().process(ins, outs, 64);
        rt.tick();
        if (b >= blocks - 20) tail.insert(tail.end(), l.begin(), l.end());
    }
    return test::rmsDb(tail);
}

}  // namespace

// ---- parameter mapping (pure) -------------------------------------------

TEST(ParamMapping, KeepsClampsAddsAndDropsById) {
    const rackterm_param_info before[] = {kGain, kMix, kFreq};
    rackterm_param_info narrowGain = kGain, narrowFreq = kFreq;
    narrowGain.min = -24.0f;
    narrowGain.max = 12.0f;
    narrowFreq.max = 2000.0f;
    const rackterm_param_info tone{"tone", "Tone", "", 0.0f, 1.0f, 0.25f, 0u, nullptr};
    const rackterm_param_info after[] = {narrowFreq, narrowGain, tone};  // another order
    const float current[] = {20.0f, 0.5f, 5000.0f};
    const app::ParamMapping m = app::mapParameters(before, after, current);
    EXPECT_EQ(m.values, (std::vector<float>{2000.0f, 12.0f, 0.25f}));
    EXPECT_EQ(m.report.params, 3u);
    EXPECT_EQ(m.report.added, 1u);
    EXPECT_EQ(m.report.removed, 1u);
    ASSERT_EQ(m.report.clamped.size(), 2u);
    EXPECT_EQ(m.report.clamped[0], "freq: 5.00 kHz -> 2.00 kHz");
    EXPECT_EQ(m.report.clamped[1], "gain_db: 20.0 dB -> 12.0 dB");
    EXPECT_EQ(m.report.summary(), "3 parameters (+1 new, -1 removed); clamped freq: 5.00 kHz -> 2.00 kHz; clamped gain_db: 20.0 dB -> 12.0 dB");
}

TEST(ParamMapping, TheSameTableChangesNothing) {
    const rackterm_param_info table[] = {kGain, kMix};
    const float current[] = {-7.5f, 0.9f};
    const app::ParamMapping m = app::mapParameters(table, table, current);
    EXPECT_EQ(m.values, (std::vector<float>{-7.5f, 0.9f}));
    EXPECT_EQ(m.report.summary(), "2 parameters (+0 new, -0 removed)");
    const app::ParamMapping empty = app::mapParameters({}, table, {});
    EXPECT_EQ(empty.values, (std::vector<float>{0.0f, 0.3f})) << "a processor with no table before: defaults";
    EXPECT_EQ(empty.report.added, 2u);
}

// ---- meter ballistics --------------------------------------------------

TEST(MeterBallistics, PeakFallsTwentyDbASecondHoldStaysTwoSecondsRmsFollows) {
    app::MeterBallistics m;
    const float full[2] = {1.0f, 1.0f}, silence[2] = {0.0f, 0.0f};
    m.update(full, full, 0.0, 100.0);
    EXPECT_FLOAT_EQ(m.reading().peakDb[0], 0.0f);
    EXPECT_FLOAT_EQ(m.reading().holdDb[1], 0.0f);
    m.update(silence, silence, 0.5, 100.5);
    EXPECT_NEAR(m.reading().peakDb[0], -10.0f, 1e-4f);
    EXPECT_FLOAT_EQ(m.reading().holdDb[0], 0.0f) << "the hold stays";
    m.update(silence, silence, 1.0, 101.5);
    EXPECT_NEAR(m.reading().peakDb[0], -30.0f, 1e-4f);
    EXPECT_FLOAT_EQ(m.reading().holdDb[0], 0.0f);
    m.update(silence, silence, 1.0, 102.5);
    EXPECT_FLOAT_EQ(m.reading().holdDb[0], -120.0f) << "after 2 s the hold follows the signal";
    app::MeterBallistics r;
    const float half[2] = {0.5f, 0.5f};
    r.update(half, half, 0.3, 1.0);  // one time constant from -120 dB towards -6.02 dB
    EXPECT_NEAR(r.reading().rmsDb[0], -120.0 + (120.0 - 6.0206) * (1.0 - std::exp(-1.0)), 0.01);
}

// ---- the journal ---------------------------------------------------------

namespace {
app::Edit setEdit(const std::string& param, std::optional<double> before, double after) {
    app::Edit e;
    e.kind = app::Edit::Kind::SetValue;
    e.node = "g";
    e.param = param;
    e.before = before;
    e.after = after;
    return e;
}
}  // namespace

TEST(Journal, UndoRedoAndTheSavedState) {
    app::Journal j;
    j.markSaved("s.toml");
    EXPECT_TRUE(j.atSaved("s.toml"));
    j.record(setEdit("gain_db", std::nullopt, -6), 1.0);
    j.record(setEdit("gain_db", -6, -12), 5.0);
    EXPECT_FALSE(j.atSaved("s.toml"));
    ASSERT_NE(j.undoStep(), nullptr);
    EXPECT_EQ(j.undoStep()->after, -12);
    j.stepBack();
    j.stepBack();
    EXPECT_TRUE(j.atSaved("s.toml")) << "undone back to the saved state";
    EXPECT_EQ(j.undoStep(), nullptr);
    j.stepForward();
    EXPECT_FALSE(j.atSaved("s.toml"));
    j.record(setEdit("mix", std::nullopt, 0.5), 9.0);  // a new edit drops the redo step
    EXPECT_EQ(j.redoStep(), nullptr);
    EXPECT_EQ(j.size(), 2u);
}

TEST(Journal, HeldChangesMergeWithinASecondButNotIntoASavedStep) {
    app::Journal j;
    double t = 10.0;
    for (int i = 0; i < 60; ++i, t += 1.0 / 60.0) j.record(setEdit("gain_db", i ? std::optional<double>(i - 1) : std::nullopt, i), t, true);
    ASSERT_EQ(j.size(), 1u) << "a held key for a second is one step";
    EXPECT_EQ(j.undoStep()->before, std::nullopt);
    EXPECT_EQ(j.undoStep()->after, 59);
    j.record(setEdit("mix", std::nullopt, 1), t, true);
    EXPECT_EQ(j.size(), 2u) << "another parameter is another step";
    j.record(setEdit("mix", 1, 0.5), t + 1.5, true);
    EXPECT_EQ(j.size(), 3u) << "after a pause, a new step";
    j.markSaved("s.toml");
    j.record(setEdit("mix", 0.5, 0.4), t + 1.6, true);
    EXPECT_EQ(j.size(), 4u) << "a saved step is never changed";
    j.stepBack();
    EXPECT_TRUE(j.atSaved("s.toml"));
    j.record(setEdit("gain_db", 59, 1), t + 2, false);
    EXPECT_EQ(j.size(), 4u);
}

TEST(Journal, BoundedToTheNewestSteps) {
    app::Journal j;
    ASSERT_GE(j.capacity(), 1000u);
    j.markSaved("s.toml");
    for (int i = 0; i < 3000; ++i) j.record(setEdit("gain_db", i, i + 1), i * 10.0);
    EXPECT_EQ(j.size(), j.capacity());
    size_t undone = 0;
    while (j.undoStep()) {
        EXPECT_EQ(j.undoStep()->after, 3000 - static_cast<double>(undone));
        j.stepBack();
        ++undone;
    }
    EXPECT_EQ(undone, j.capacity());
    EXPECT_FALSE(j.atSaved("s.toml")) << "the saved state fell out of the journal";
}

// ---- undo and redo through the runtime --------------------------------

TEST(Undo, SetIsUndoneAndHeardThenRedone) {
    auto rt = openText("[[node]]\nid = \"gain\"\nprocessor = \"gain\"\n");
    app::CommandContext ctx{*rt};
    const double clean = levelDb(*rt);
    EXPECT_NEAR(clean, -9.03, 0.1);
    ASSERT_TRUE(test::run(ctx, "set gain.gain_db -20").ok);
    EXPECT_NEAR(levelDb(*rt), clean - 20.0, 0.1);
    const app::Reply undo = test::run(ctx, "undo");
    ASSERT_TRUE(undo.ok) << undo.text;
    EXPECT_EQ(undo.text, "undo set gain.gain_db: gain.gain_db = 0.0 dB");
    EXPECT_NEAR(levelDb(*rt), clean, 0.1) << "the undone value is heard";
    EXPECT_TRUE(rt->nodeSpec(0).params.empty()) << "back to the default, not written";
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    EXPECT_NEAR(levelDb(*rt), clean - 20.0, 0.1);
    EXPECT_EQ(test::run(ctx, "redo").text, "nothing to redo");
    EXPECT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_EQ(test::run(ctx, "undo").text, "nothing to undo");
}

TEST(Undo, RemoveComesBackAtItsPlaceWithItsValuesAndBypass) {
    auto rt = openText(kThreeGains);
    app::CommandContext ctx{*rt};
    levelDb(*rt, 4);
    ASSERT_TRUE(test::run(ctx, "set b.gain_db -12").ok);
    ASSERT_EQ(test::run(ctx, "remove b").text, "removed b");
    EXPECT_EQ(test::run(ctx, "list nodes").text, "a=gain(active) c=gain(active)");
    const app::Reply undo = test::run(ctx, "undo");
    ASSERT_TRUE(undo.ok) << undo.text;
    EXPECT_EQ(test::run(ctx, "list nodes").text, "a=gain(active) b=gain(active, bypassed) c=gain(active)");
    EXPECT_EQ(test::run(ctx, "get b.gain_db").text, "b.gain_db = -12.0 dB");
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_EQ(test::run(ctx, "get b.gain_db").text, "b.gain_db = -6.0 dB");
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    EXPECT_EQ(test::run(ctx, "list nodes").text, "a=gain(active) c=gain(active)");
}

TEST(Undo, AddIsTakenAwayAndLoadBringsThePreviousRackBack) {
    auto rt = openText(kThreeGains);
    app::CommandContext ctx{*rt};
    levelDb(*rt, 4);
    ASSERT_TRUE(test::run(ctx, "add x biquad after a").ok);
    ASSERT_TRUE(test::run(ctx, "set x.frequency_hz 2k").ok);
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_EQ(test::run(ctx, "list nodes").text, "a=gain(active) b=gain(active, bypassed) c=gain(active)");
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    EXPECT_EQ(test::run(ctx, "list nodes").text, "a=gain(active) x=biquad(active) b=gain(active, bypassed) c=gain(active)");
    EXPECT_EQ(test::run(ctx, "get x.frequency_hz").text, "x.frequency_hz = 1.00 kHz");
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    EXPECT_EQ(test::run(ctx, "get x.frequency_hz").text, "x.frequency_hz = 2.00 kHz");
    const app::Reply load = test::run(ctx, "load " + test::sourceDir() + "/examples/demo.toml !");
    ASSERT_TRUE(load.ok) << load.text;
    EXPECT_EQ(test::run(ctx, "list nodes").text, "src=player(active) eq=biquad(active) drive=saturator(active) gain=gain(active)");
    EXPECT_FALSE(rt->dirty()) << "a loaded session is its file";
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_EQ(test::run(ctx, "list nodes").text, "a=gain(active) x=biquad(active) b=gain(active, bypassed) c=gain(active)");
    EXPECT_EQ(test::run(ctx, "get x.frequency_hz").text, "x.frequency_hz = 2.00 kHz");
    EXPECT_EQ(rt->path(), "") << "the document before the load had no file";
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    EXPECT_EQ(test::run(ctx, "list nodes").text, "src=player(active) eq=biquad(active) drive=saturator(active) gain=gain(active)");
}

TEST(Undo, TheUnsavedFlagFollowsTheJournal) {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    const std::string dir = test::tempDir("model");
    test::writeText(dir + "/s.toml", "# my gains\n[[node]]\nid = \"g\"  # the only one\nprocessor = \"gain\"\n");
    auto s = config::loadSession(dir + "/s.toml");
    ASSERT_TRUE(s) << s.error();
    auto r = app::Runtime::open(s.value(), 48000, 64);
    ASSERT_TRUE(r) << r.error();
    app::Runtime& rt = *r.value();
    app::CommandContext ctx{rt};
    EXPECT_FALSE(rt.dirty());
    ASSERT_TRUE(test::run(ctx, "set g.gain_db -3").ok);
    ASSERT_TRUE(test::run(ctx, "bypass g on").ok);
    EXPECT_TRUE(rt.dirty());
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_FALSE(rt.dirty()) << "undone back to the file";
    EXPECT_NE(test::run(ctx, "status").text.find(", saved"), std::string::npos);
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    EXPECT_TRUE(rt.dirty());
    ASSERT_TRUE(test::run(ctx, "save").ok);
    EXPECT_FALSE(rt.dirty());
    EXPECT_EQ(test::readText(dir + "/s.toml"),
              "# my gains\n[[node]]\nid = \"g\"  # the only one\nprocessor = \"gain\"\nparams = { gain_db = -3.0 }\n")
        << "the comments stay";
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_TRUE(rt.dirty()) << "the file now holds -3 dB";
    ASSERT_TRUE(test::run(ctx, "redo").ok);
    EXPECT_FALSE(rt.dirty());
    // Saved under another name of the same file (a symbolic link): still the own file.
    std::filesystem::create_symlink(dir + "/s.toml", dir + "/link.toml");
    ASSERT_TRUE(test::run(ctx, "set g.gain_db -4").ok);
    ASSERT_TRUE(test::run(ctx, "save " + dir + "/link.toml").ok);
    EXPECT_FALSE(rt.dirty());
    std::filesystem::remove_all(dir);
}

TEST(Undo, AThousandStepsBack) {
    auto rt = openText("[[node]]\nid = \"gain\"\nprocessor = \"gain\"\n");
    app::CommandContext ctx{*rt};
    for (int i = 1; i <= 1000; ++i) ASSERT_TRUE(test::run(ctx, "set gain.gain_db " + std::to_string(-(i % 50) - 1)).ok);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(test::run(ctx, "undo").ok) << "step " << i;
    EXPECT_EQ(test::run(ctx, "get gain.gain_db").text, "gain.gain_db = 0.0 dB");
    EXPECT_EQ(test::run(ctx, "undo").text, "nothing to undo");
    EXPECT_FALSE(rt->dirty());
}

TEST(Undo, AHeldKeyIsOneStep) {
    auto rt = openText("[[node]]\nid = \"gain\"\nprocessor = \"gain\"\n");
    app::CommandContext ctx{*rt};
    for (int i = 1; i <= 60; ++i) ASSERT_TRUE(rt->setValue(0, 0, static_cast<float>(i) * 0.25f, app::Merge::Run));
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(test::run(ctx, "nudge gain.gain_db").ok);
    EXPECT_EQ(rt->journal().size(), 1u);
    ASSERT_TRUE(test::run(ctx, "undo").ok);
    EXPECT_EQ(test::run(ctx, "get gain.gain_db").text, "gain.gain_db = 0.0 dB");
    EXPECT_EQ(test::run(ctx, "undo").text, "nothing to undo");
}

TEST(Undo, GoesThroughTheCrossfadedPathsWithoutAClick) {
    // A sine plays on a thread of its own while a -20 dB node is removed, and
    // the remove is undone (the node comes back) and redone (it goes again);
    // each is a 20 dB jump without its fade. The largest step stays the sine's.
    auto rt = openText("[[node]]\nid = \"a\"\nprocessor = \"gain\"\n");
    test::SineThread audio(*rt);
    app::CommandContext ctx{*rt};
    auto live = [&](const std::string& line) { return test::await(*rt, app::execute(ctx, line)); };
    ASSERT_TRUE(live("add quiet gain").ok);
    ASSERT_TRUE(live("set quiet.gain_db -20").ok);
    for (int i = 0; i < 8; ++i) {
        for (const char* line : {"remove quiet", "undo", "redo", "undo"}) {
            const app::Reply r = live(line);
            ASSERT_TRUE(r.ok) << line << ": " << r.text;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    audio.stop();
    EXPECT_LE(audio.largestStep(), 2.0f * test::SineThread::cleanStep())
        << "a click when an undo took a node away or brought it back";
}

// ---- pending replies ----------------------------------------------------

namespace {
int connectTo(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}
std::string readSome(int fd) {
    std::string out;
    char buf[4096];
    while (true) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) break;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}
void sendText(int fd, const std::string& text) { ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size())); }
}  // namespace

TEST(Pending, AWaitHoldsOnlyItsOwnClientAndItsLaterLines) {
    const std::string dir = test::tempDir("pending");
    setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
    auto rt = openText("[[node]]\nid = \"gain\"\nprocessor = \"gain\"\n");
    levelDb(*rt, 4);  // the audio ran; from here on it is held back
    auto sock = app::ControlSocket::open("pendtest");
    ASSERT_TRUE(sock) << sock.error();
    auto turn = [&] {
        rt->tick();
        return sock.value()->service([&](const std::string& line) {
            app::CommandContext ctx{*rt};
            return app::execute(ctx, line);
        });
    };
    const int a = connectTo(sock.value()->path()), b = connectTo(sock.value()->path());
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    sendText(a, "set gain.gain_db -3\nwait applied\nget gain.gain_db\n");
    for (int i = 0; i < 5; ++i) turn();
    EXPECT_EQ(readSome(a), "ok gain.gain_db = -3.0 dB\n") << "the wait holds the get behind it";
    sendText(b, "set gain.gain_db -9\nget gain.gain_db\n");
    turn();  // one turn of the control loop
    EXPECT_EQ(readSome(b), "ok gain.gain_db = -9.0 dB\nok gain.gain_db = -9.0 dB\n") << "another client is not held up";
    EXPECT_EQ(readSome(a), "");
    levelDb(*rt, 1);  // the audio moves on
    turn();
    const std::string rest = readSome(a);
    EXPECT_EQ(rest.rfind("ok applied ", 0), 0u) << rest;
    EXPECT_NE(rest.find("\nok gain.gain_db = -9.0 dB\n"), std::string::npos) << "then the get, in order: " << rest;
    ::close(a);
    ::close(b);
    sock.value().reset();
    std::filesystem::remove_all(dir);
}

TEST(Pending, AnAddNextToANodeFindsItWhenItRuns) {
    auto rt = openText(kThreeGains);
    app::CommandContext ctx{*rt};
    levelDb(*rt, 4);
    app::Reply removed = app::execute(ctx, "remove a");
    ASSERT_TRUE(removed.waiting());
    app::Reply added = app::execute(ctx, "add x gain after b");  // queued behind the remove
    ASSERT_TRUE(added.waiting());
    EXPECT_EQ(test::settle(*rt, std::move(removed)).text, "removed a");
    EXPECT_EQ(test::settle(*rt, std::move(added)).text, "added x (gain) at position 2");
    EXPECT_EQ(test::run(ctx, "list nodes").text, "b=gain(active, bypassed) x=gain(active) c=gain(active)") << "after b as it is then";
}

TEST(Pending, ARemoveRepliesWhenItsFadeIsOver) {
    auto rt = openText(kThreeGains);
    app::CommandContext ctx{*rt};
    levelDb(*rt, 4);
    app::Reply r = app::execute(ctx, "remove a");
    ASSERT_TRUE(r.waiting()) << "live, a remove waits for its fade-out: " << r.text;
    EXPECT_EQ(rt->nodeCount(), 3u);
    EXPECT_EQ(app::execute(ctx, "get c.gain_db").text, "c.gain_db = 0.0 dB") << "other commands answer meanwhile";
    r = test::settle(*rt, std::move(r));
    EXPECT_EQ(r.text, "removed a");
    EXPECT_EQ(rt->nodeCount(), 2u);
}

TEST(Pending, RecordStopTwiceWhileTheFirstWaits) {
    auto rt = openText("[[node]]\nid = \"gain\"\nprocessor = \"gain\"\n");
    const std::string dir = test::tempDir("stop2");
    app::CommandContext ctx{*rt};
    ASSERT_TRUE(app::execute(ctx, "record start " + dir + "/take.wav").ok);
    levelDb(*rt, 20);
    app::Reply first = app::execute(ctx, "record stop");
    ASSERT_TRUE(first.waiting()) << "live, the stop waits two blocks: " << first.text;
    EXPECT_EQ(app::execute(ctx, "record stop").text, "not recording") << "the second stop is refused, not a crash";
    EXPECT_TRUE(app::execute(ctx, "record start " + dir + "/next.wav").ok) << "a new take may start at once";
    first = test::settle(*rt, std::move(first));
    EXPECT_EQ(first.text.rfind("recorded " + dir + "/take.wav (", 0), 0u) << first.text;
    EXPECT_TRUE(test::settle(*rt, app::execute(ctx, "record stop")).ok);
    EXPECT_TRUE(std::filesystem::exists(dir + "/take.wav"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/next.wav"));
    std::filesystem::remove_all(dir);
}
