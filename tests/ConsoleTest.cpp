// The console in a real terminal: tmux (private socket) at 80x24 on a
// private jackd. Type `:set gain.gain_db -12` and `:w`; the screen shows
// -12.0 dB and the file holds it. Also: keys adjust and bypass, q asks when
// unsaved, and LANG=C falls back to ASCII.
#include "support/Support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

#include <sys/wait.h>

using namespace rackterm;

namespace {

/// True when an SGR escape sets a foreground or background colour (not the defaults 39/49).
bool hasColour(const std::string& screen) {
    for (size_t p = screen.find("\x1b["); p != std::string::npos; p = screen.find("\x1b[", p + 1)) {
        const size_t m = screen.find('m', p);
        if (m == std::string::npos) break;
        std::string params = screen.substr(p + 2, m - p - 2) + ";";
        for (size_t start = 0, semi; (semi = params.find(';', start)) != std::string::npos; start = semi + 1) {
            const std::string v = params.substr(start, semi - start);
            if (v.empty()) continue;
            const int n = std::atoi(v.c_str());
            if ((n >= 30 && n <= 38) || (n >= 40 && n <= 48) || (n >= 90 && n <= 97) || (n >= 100 && n <= 107)) return true;
        }
    }
    return false;
}

class Console : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(server.ready()) << server.error();
        dir = test::tempDir("console");
        session = dir + "/demo.toml";
        std::string demo = test::readText(test::sourceDir() + "/examples/demo.toml");
        test::writeText(session, demo);
        socket = "rackterm-test-" + std::to_string(::getpid());
    }
    void TearDown() override {
        tmux({"kill-server"});
        std::filesystem::remove_all(dir);
    }
    test::RunResult tmux(std::vector<std::string> args) {
        args.insert(args.begin(), {"tmux", "-L", socket});
        return test::run(args, {}, 20);
    }
    void start(const std::string& lang, int cols, int rows) {
        const std::string cmd = "env " + server.envEntry() + " XDG_RUNTIME_DIR=" + dir + " RACKTERM_PROCESSOR_PATH=" + test::moduleDir() +
                                " XDG_STATE_HOME=" + dir + " LANG=" + lang + " LC_ALL=" + lang + " TERM=xterm-256color " +
                                test::binary() + " " + session + "; echo EXITED:$?; sleep 60";
        auto r = tmux({"new-session", "-d", "-s", "t", "-x", std::to_string(cols), "-y", std::to_string(rows), cmd});
        ASSERT_EQ(r.exitCode, 0) << r.err;
        ASSERT_TRUE(waitFor("master")) << screen();
    }
    std::string screen() { return tmux({"capture-pane", "-p", "-t", "t"}).out; }
    bool waitFor(const std::string& text, double seconds = 10) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (std::chrono::steady_clock::now() < end) {
            if (screen().find(text) != std::string::npos) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return false;
    }
    void keys(const std::vector<std::string>& k) {
        std::vector<std::string> args = {"send-keys", "-t", "t"};
        args.insert(args.end(), k.begin(), k.end());
        tmux(args);
    }
    test::JackServer server;
    std::string dir, session, socket;
};

}  // namespace

TEST_F(Console, SetAndSaveAt80x24) {
    start("C.UTF-8", 80, 24);
    EXPECT_TRUE(hasColour(tmux({"capture-pane", "-p", "-e", "-t", "t"}).out)) << "meters are coloured by default";
    keys({":set gain.gain_db -12", "Enter"});
    ASSERT_TRUE(waitFor("gain.gain_db = -12.0 dB")) << screen();
    EXPECT_TRUE(waitFor("[+] unsaved")) << screen();
    keys({":w", "Enter"});
    ASSERT_TRUE(waitFor("saved " + session)) << screen();
    EXPECT_NE(screen().find("-12.0 dB"), std::string::npos);
    const std::string saved = test::readText(session);
    EXPECT_NE(saved.find("params = { gain_db = -12.0 }"), std::string::npos) << saved;
    EXPECT_TRUE(std::filesystem::exists(session + "~"));
    keys({":q", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, KeysAdjustBypassAndQuitAsksWhenUnsaved) {
    start("C", 80, 24);
    const std::string first = screen();
    EXPECT_EQ(first.find("\u2588"), std::string::npos) << "ASCII meters in LANG=C";
    EXPECT_NE(first.find("level_db"), std::string::npos);
    keys({"l", "l"});  // level_db -3.0 -> -2.0
    EXPECT_TRUE(waitFor("-2.0 dB")) << screen();
    keys({"Tab", "b"});
    EXPECT_TRUE(waitFor("eq bypassed")) << screen();
    keys({"q"});
    EXPECT_TRUE(waitFor("Save before quitting?")) << screen();
    keys({"n"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
    EXPECT_EQ(test::readText(session).find("level_db = -2.0"), std::string::npos) << "not saved when told no";
}

TEST_F(Console, BadCommandShowsErrorAndKeepsRunning) {
    start("C.UTF-8", 80, 24);
    keys({":sett gain.gain_db 3", "Enter"});
    EXPECT_TRUE(waitFor("did you mean 'set'")) << screen();
    keys({":set gain.gain_db 300", "Enter"});
    EXPECT_TRUE(waitFor("outside -60.0 dB .. 24.0 dB")) << screen();
    keys({"?"});
    EXPECT_TRUE(waitFor("Commands")) << screen();
    keys({"Escape"});
    keys({":q", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, LiveEditShowsBuildAndErrorsOnScreen) {
    // A watched node compiled by g++: a save shows "building", then the result; a syntax error shows the compiler's line.
    std::filesystem::create_directories(dir + "/proc/build");
    const std::string src = dir + "/proc/proc.cpp";
    auto source = [](const char* version) {
        return std::string("#include <rackterm/Processor.hpp>\nnamespace { struct P { static constexpr const char* kId = \"p\";"
                           " static constexpr const char* kName = \"P\"; static constexpr const char* kVersion = \"") +
               version +
               "\"; static constexpr std::array<rackterm_param_info, 1> kParams{{{\"gain_db\", \"Gain\", \"dB\", -60.0f, 24.0f, 0.0f, 0u, nullptr}}};"
               " P(double, uint32_t) {} void reset() noexcept {} void process(const float* const* in, float* const* out, uint32_t n, const float*) noexcept"
               " { for (uint32_t c = 0; c < 2; ++c) for (uint32_t i = 0; i < n; ++i) out[c][i] = in[c][i]; } }; }\nRACKTERM_PROCESSOR(P)\n";
    };
    test::writeText(src, source("1"));
    test::writeText(session, "[session]\nname = \"edit\"\n[engine]\noutputs = []\n[[node]]\nid = \"src\"\nprocessor = \"player\"\n"
                             "file = \"/usr/share/sounds/alsa/Front_Left.wav\"\n[[node]]\nid = \"p\"\npath = \"proc/build/libp.so\"\n"
                             "watch = { source = \"proc\", build = \"g++ -std=c++20 -fPIC -shared -fvisibility=hidden -I" +
                                 test::sourceDir() + "/src/sdk/include -o proc/build/libp.so proc/proc.cpp\" }\n");
    start("C.UTF-8", 80, 24);
    test::writeText(src, source("2"));
    EXPECT_TRUE(waitFor("p: build ok in", 60)) << screen();
    test::writeText(src, source("3") + "int broken(\n");
    EXPECT_TRUE(waitFor("error: expected", 60)) << screen();
    // The compiler's lines come first, the verdict when the build has ended.
    EXPECT_TRUE(waitFor("the old processor keeps playing", 60)) << screen();
    keys({":build status", "Enter"});
    EXPECT_TRUE(waitFor("p: failed, ")) << screen();
    keys({":q", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, TabCompletesCommandsNodesAndParameters) {
    start("C.UTF-8", 80, 24);
    keys({":se", "Tab"});
    keys({"ga", "Tab"});
    keys({"g", "Tab"});
    EXPECT_TRUE(waitFor(":set gain.gain_db")) << screen();  // capture-pane trims the trailing space
    keys({" -7", "Enter"});  // a leading space: tmux would read "-7" as an option
    EXPECT_TRUE(waitFor("gain.gain_db = -7.0 dB")) << screen();
    keys({":set eq.type high", "Tab", "Tab"});  // two matches: listed in the log
    EXPECT_TRUE(waitFor("highpass  highshelf")) << screen();
    keys({"Escape"});
    keys({":q!", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, EqualsTypesAValueDResetsSlashFinds) {
    start("C.UTF-8", 80, 24);
    keys({"/", "drive_db", "Enter"});
    EXPECT_TRUE(waitFor("found drive.drive_db")) << screen();
    keys({"="});
    EXPECT_TRUE(waitFor(":set drive.drive_db")) << screen();
    keys({"30", "Enter"});
    EXPECT_TRUE(waitFor("drive.drive_db = 30.0 dB")) << screen();
    keys({"d"});
    EXPECT_TRUE(waitFor("drive.drive_db = 0.0 dB (default)")) << screen();
    keys({"/", "gain", "Enter"});
    EXPECT_TRUE(waitFor("found node gain")) << screen();
    keys({":wq", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
    EXPECT_NE(test::readText(session).find("drive_db = 0.0"), std::string::npos) << ":wq wrote the file";
}

TEST_F(Console, LargeTerminalAndResize) {
    start("C.UTF-8", 200, 60);
    const std::string big = screen();
    EXPECT_NE(big.find("level_db"), std::string::npos);
    tmux({"resize-window", "-t", "t", "-x", "80", "-y", "24"});
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    keys({":set gain.gain_db -4", "Enter"});
    EXPECT_TRUE(waitFor("gain.gain_db = -4.0 dB")) << screen();
    const std::string small = screen();
    size_t rows = 0, widest = 0;
    for (size_t pos = 0, nl; (nl = small.find('\n', pos)) != std::string::npos; pos = nl + 1, ++rows)
        widest = std::max(widest, small.substr(pos, nl - pos).size());
    EXPECT_LE(rows, 24u);
    EXPECT_NE(small.find("master"), std::string::npos) << small;
    tmux({"resize-window", "-t", "t", "-x", "120", "-y", "40"});
    keys({"?"});
    EXPECT_TRUE(waitFor("scroll the log")) << screen();
    keys({"x", ":q!", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, NoColorAndLongNamesKeepTheLayout) {
    // NO_COLOR: no colour escapes on screen. A long node id and a long log line stay inside 80 columns.
    std::string demo = test::readText(session);
    const std::string longId = "a_node_id_that_is_much_longer_than_any_column_of_the_rack_pane_allows";
    demo += "\n[[node]]\nid = \"" + longId + "\"\nprocessor = \"gain\"\n";
    test::writeText(session, demo);
    const std::string cmd = "env " + server.envEntry() + " RACKTERM_PROCESSOR_PATH=" + test::moduleDir() +
                            " XDG_STATE_HOME=" + dir + " NO_COLOR=1 LANG=C.UTF-8 TERM=xterm-256color " + test::binary() + " " +
                            session + "; echo EXITED:$?; sleep 60";
    ASSERT_EQ(tmux({"new-session", "-d", "-s", "t", "-x", "80", "-y", "24", cmd}).exitCode, 0);
    ASSERT_TRUE(waitFor("master")) << screen();
    keys({":set " + longId + ".gain_db " + std::string(300, '9'), "Enter"});
    EXPECT_TRUE(waitFor("error: gain_db = 99999")) << screen();  // cut at the edge, not wrapped
    const std::string withEscapes = tmux({"capture-pane", "-p", "-e", "-t", "t"}).out;
    EXPECT_FALSE(hasColour(withEscapes)) << "colour despite NO_COLOR";
    const std::string plain = screen();
    size_t rows = 0;
    for (size_t pos = 0, nl; (nl = plain.find('\n', pos)) != std::string::npos; pos = nl + 1, ++rows) {
        // Count characters, not bytes (meters are UTF-8).
        size_t columns = 0;
        for (size_t i = pos; i < nl; ++i) columns += (static_cast<unsigned char>(plain[i]) & 0xC0) != 0x80;
        EXPECT_LE(columns, 80u) << "row " << rows << " overflows: " << plain.substr(pos, nl - pos);
    }
    EXPECT_NE(plain.find(" a_node_id~ "), std::string::npos) << "a long id is cut with ~, not wrapped";
    keys({":q!", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, UndoAndRedoKeysFollowTheSavedState) {
    start("C", 80, 24);
    keys({"l", "l"});  // level_db -3.0 -> -2.0, one held-key step
    ASSERT_TRUE(waitFor("-2.0 dB")) << screen();
    ASSERT_TRUE(waitFor("[+] unsaved")) << screen();
    keys({"u"});
    ASSERT_TRUE(waitFor("undo set src.level_db")) << screen();
    EXPECT_TRUE(waitFor("-3.0 dB")) << screen();
    EXPECT_EQ(screen().find("unsaved"), std::string::npos) << "undone back to the file: saved again\n" << screen();
    keys({"C-r"});
    ASSERT_TRUE(waitFor("redo set src.level_db")) << screen();
    EXPECT_TRUE(waitFor("[+] unsaved")) << screen();
    EXPECT_NE(screen().find("-2.0 dB"), std::string::npos) << screen();
    keys({":undo", "Enter"});
    ASSERT_TRUE(waitFor("| saved")) << screen();
    keys({"q"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen() << "no question: nothing unsaved";
}

TEST_F(Console, APendingWaitHoldsNeitherTheScreenNorOtherClients) {
    start("C", 80, 24);
    const std::vector<std::string> env = {server.envEntry(), "XDG_RUNTIME_DIR=" + dir};
    ASSERT_EQ(::kill(server.pid(), SIGSTOP), 0);  // the audio side is held back
    struct Resume {
        pid_t pid;
        ~Resume() { ::kill(pid, SIGCONT); }
    } resume{server.pid()};
    // A change the stopped audio thread cannot apply: the wait behind it stays pending.
    ASSERT_EQ(test::run({test::binary(), "ctl", "set gain.gain_db -1"}, env, 20).exitCode, 0);
    const pid_t waiter = test::spawn({test::binary(), "ctl", "--timeout", "30", "wait applied"}, env, dir + "/wait.out",
                                     dir + "/wait.err");
    ASSERT_GT(waiter, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto t0 = std::chrono::steady_clock::now();
    const test::RunResult other = test::run({test::binary(), "ctl", "--timeout", "3", "bypass gain on"}, env, 20);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(other.exitCode, 0) << other.out << other.err;
    EXPECT_EQ(other.out, "ok gain bypassed\n");
    EXPECT_LT(seconds, 3.0);
    EXPECT_TRUE(waitFor("BYP", 3)) << "the console still redraws\n" << screen();
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(waiter), &info, WEXITED | WNOHANG | WNOWAIT), 0);
    EXPECT_EQ(info.si_pid, 0) << "the wait is still pending while the audio stands still: " << test::readText(dir + "/wait.out");
    ASSERT_EQ(::kill(server.pid(), SIGCONT), 0);
    EXPECT_EQ(test::stop(waiter, 0, 20), 0) << test::readText(dir + "/wait.err");
    EXPECT_EQ(test::readText(dir + "/wait.out").rfind("ok applied ", 0), 0u) << test::readText(dir + "/wait.out");
    keys({":q!", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, TheGraphSessionListsInputsAndGOpensALayeredDrawing) {
    test::writeText(session, test::readText(test::sourceDir() + "/examples/graph.toml"));
    for (const std::string lang : {"C.UTF-8", "C"}) {
        SCOPED_TRACE(lang);
        start(lang, 80, 24);
        const std::string rack = screen();
        EXPECT_NE(rack.find("echo       delay      <- eq (-12 dB), fb"), std::string::npos) << rack;
        EXPECT_LT(rack.find("fb         biquad"), rack.find("master     gain")) << "processing order";
        keys({"g"});
        ASSERT_TRUE(waitFor("graph: 6 nodes, 9 connections")) << screen();
        const std::string drawing = screen();
        EXPECT_NE(drawing.find("[input"), std::string::npos) << drawing;
        EXPECT_NE(drawing.find("[eq"), std::string::npos) << drawing;
        EXPECT_NE(drawing.find("[echo*"), std::string::npos) << drawing;
        EXPECT_NE(drawing.find("* feedback fb -> echo (-6 dB), one block late"), std::string::npos) << drawing;
        if (lang == "C") {
            EXPECT_EQ(drawing.find("\u2500"), std::string::npos) << "ASCII lines under LANG=C";
            EXPECT_NE(drawing.find("---+->[echo*"), std::string::npos) << drawing;
        } else {
            EXPECT_NE(drawing.find("\u2500\u2500\u2500\u252c\u2500\u25b6[echo*"), std::string::npos) << drawing;
        }
        EXPECT_EQ(drawing.find("[output"), std::string::npos) << "80 columns show the first five layers";
        keys({"l", "l", "l", "l"});
        EXPECT_TRUE(waitFor("[output")) << "scrolled right: " << screen();
        keys({"g"});
        EXPECT_TRUE(waitFor("src (Player)")) << "g closes it: " << screen();
        EXPECT_EQ(screen().find("graph: 6 nodes"), std::string::npos) << "g closes it";
        keys({":q", "Enter"});
        ASSERT_TRUE(waitFor("EXITED:0")) << screen();
        tmux({"kill-server"});
    }
}

TEST_F(Console, AServerThatGoesAwayIsWaitedForAndEditsGoOn) {
    start("C.UTF-8", 80, 24);
    server.kill(SIGKILL);
    ASSERT_TRUE(waitFor("JACK server lost - waiting for it")) << screen();
    keys({":set gain.gain_db -7", "Enter"});  // edits go on while the server is away
    EXPECT_TRUE(waitFor("gain.gain_db = -7.0 dB")) << screen();
    ASSERT_TRUE(server.start()) << server.error();
    EXPECT_TRUE(waitFor("48000 Hz 256 fr")) << screen();
    const std::string shown = screen();
    EXPECT_EQ(shown.substr(0, shown.find('\n')).find("JACK server lost"), std::string::npos) << shown;
    EXPECT_TRUE(waitFor("JACK server back after")) << screen();
    keys({":q!", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
}

TEST_F(Console, OffersTheEditsARecoveryFileKeptAndRecoversThemWithR) {
    const std::string text = test::readText(session);
    test::writeText(dir + "/.demo.toml.recover", "rackterm-recovery 1\nsession " + session + "\ndoc " +
                                                     std::to_string(text.size()) + "\n" + text +
                                                     "\nset gain.gain_db -9\n");
    start("C.UTF-8", 80, 24);
    ASSERT_TRUE(waitFor("(r)ecover, (d)iscard")) << screen();
    keys({"r"});
    EXPECT_TRUE(waitFor("recovered the unsaved edits")) << screen();
    EXPECT_TRUE(waitFor("[+] unsaved")) << screen();
    keys({":get gain.gain_db", "Enter"});
    EXPECT_TRUE(waitFor("gain.gain_db = -9.0 dB")) << screen();
    keys({":q!", "Enter"});
    EXPECT_TRUE(waitFor("EXITED:0")) << screen();
    EXPECT_FALSE(std::filesystem::exists(dir + "/.demo.toml.recover")) << "taken, then a clean quit";
}
