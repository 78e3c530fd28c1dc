// Bad input through the real binary: each case gets one clear line on
// stderr, the right exit code, no crash, and no file lost or half written.
#include "support/Support.hpp"

#include <rackterm/common/Limits.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace rackterm;

namespace {

class BadInput : public ::testing::Test {
protected:
    void SetUp() override { dir = test::tempDir("bad"); }
    void TearDown() override { std::filesystem::remove_all(dir); }

    test::RunResult check(const std::string& text) {
        const std::string session = dir + "/s.toml";
        test::writeText(session, text);
        return test::run({test::binary(), "check", session}, {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    }
    test::RunResult checkModule(const std::string& path) {
        return check("[[node]]\nid = \"x\"\npath = \"" + path + "\"\n");
    }
    test::RunResult render(const std::vector<std::string>& args) {
        std::vector<std::string> argv = {test::binary(), "render", dir + "/s.toml"};
        argv.insert(argv.end(), args.begin(), args.end());
        return test::run(argv, {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, 20);
    }
    /// A FIFO, a bound Unix socket and (as root) a character device made with
    /// mknod in the temp folder (the memory device `minor`: 3 null, 5 zero).
    std::vector<std::string> nonRegular(const std::string& stem, unsigned minor) {
        std::vector<std::string> out = {dir + "/" + stem + "-fifo.wav", dir + "/" + stem + "-sock.wav"};
        EXPECT_EQ(::mkfifo(out[0].c_str(), 0600), 0);
        const int fd = test::bindUnixSocket(out[1]);
        EXPECT_GE(fd, 0);
        ::close(fd);
        if (test::makeMemoryDevice(dir + "/" + stem + "-dev.wav", minor)) out.push_back(dir + "/" + stem + "-dev.wav");
        return out;
    }
    static mode_t kind(const std::string& p) {
        struct stat st {};
        ::lstat(p.c_str(), &st);
        return st.st_mode & S_IFMT;
    }
    /// One line on stderr, no crash, exit `code`, containing `needle`.
    void expectError(const test::RunResult& r, int code, const std::string& needle) {
        EXPECT_EQ(r.exitCode, code) << r.err;
        EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
    }
    std::string dir;
};

std::string fixture(const std::string& name) { return test::fixtureDir() + "/lib" + name + ".so"; }

}  // namespace

TEST_F(BadInput, GoodSessionChecksOk) {
    auto r = test::run({test::binary(), "check", test::sourceDir() + "/examples/demo.toml"},
                       {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("ok: "), std::string::npos);
}

TEST_F(BadInput, EachBadArtifactHasItsOwnMessage) {
    test::writeText(dir + "/libtext.so", "not a shared object");
    expectError(checkModule(dir + "/libtext.so"), 1, "not a loadable shared object");
    expectError(checkModule(fixture("fixture_noentry")), 1, "no rackterm_processor_entry symbol");
    expectError(checkModule(fixture("fixture_abi_v1")), 1, "processor ABI v1 found, rackterm needs v2; rebuild");
    expectError(checkModule(fixture("fixture_bad_table")), 1, "invalid processor descriptor");
    expectError(checkModule(fixture("fixture_create_null")), 1, "create() returned NULL");
    expectError(checkModule(fixture("fixture_create_throws")), 1, "create() threw: out of coffee");
    auto r = checkModule(fixture("fixture_abi_v1"));
    EXPECT_EQ(r.err.find(dir + "/s.toml:3:8: " + fixture("fixture_abi_v1")), 10u) << r.err;  // after "rackterm: "
}

TEST_F(BadInput, MalformedSessions) {
    expectError(check(std::string("[\0", 2)), 1, "s.toml:1:2: NUL byte");
    expectError(check("[session]\nname = \"\xfe\"\n"), 1, "invalid UTF-8");
    expectError(check("[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { gain_db = -6.0\n"), 1, "s.toml:4:");
    expectError(check("[[node]]\nid = \"g\"\nprocessor = \"gian\"\n"), 1,
                "s.toml:3:13: unknown processor 'gian' (did you mean 'gain'?)");
    expectError(check("[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { gain = 1.0 }\n"), 1,
                "s.toml:4:12: node 'g' (gain) has no parameter 'gain' (did you mean 'gain_db'?)");
    expectError(check("[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { gain_db = 99.0 }\n"), 1,
                "is outside -60.0 dB .. 24.0 dB");
    expectError(check("[[node]]\nid = \"p\"\nprocessor = \"player\"\nfile = \"/nonexistent.wav\"\n"), 1,
                "s.toml:4:8: /nonexistent.wav: cannot read the sound file");
    expectError(test::run({test::binary(), "check", dir + "/missing.toml"}), 1, "cannot open the session file");
}

TEST_F(BadInput, RenderNeverLeavesAHalfWrittenFile) {
    const std::string session = dir + "/s.toml";
    test::writeText(session, "[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
    const std::string out = dir + "/keep.wav";
    test::writeText(out, "precious");
    auto unreadable = test::run({test::binary(), "render", session, "-i", dir + "/nope.wav", "-o", out},
                                {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    expectError(unreadable, 1, "nope.wav: cannot read the input");
    EXPECT_EQ(test::readText(out), "precious");
    auto noFolder = test::run({test::binary(), "render", session, "-i", "/usr/share/sounds/alsa/Noise.wav", "-o",
                               dir + "/no/such/dir/out.wav"},
                              {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    expectError(noFolder, 1, "does not exist");
    test::writeText(dir + "/afile", "x");
    auto notFolder = test::run({test::binary(), "render", session, "-i", "/usr/share/sounds/alsa/Noise.wav", "-o",
                                dir + "/afile/out.wav"},
                               {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    expectError(notFolder, 1, "out.wav");
    auto badExt = test::run({test::binary(), "render", session, "-i", "/usr/share/sounds/alsa/Noise.wav", "-o",
                             dir + "/out.xyz"},
                            {"RACKTERM_PROCESSOR_PATH=" + test::moduleDir()});
    expectError(badExt, 1, "unknown output format");
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << "left behind: " << e.path();
        EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << "left behind: " << e.path();
    }
}

TEST_F(BadInput, UsageErrorsExitTwo) {
    EXPECT_EQ(test::run({test::binary(), "render", "x.toml"}).exitCode, 2);
    EXPECT_EQ(test::run({test::binary(), "--no-such-flag"}).exitCode, 2);
}

TEST_F(BadInput, NoJackServerSaysSoAndExitsThree) {
    const std::string env = "JACK_DEFAULT_SERVER=rackterm_none_" + std::to_string(::getpid());
    for (const bool headless : {true, false}) {
        std::vector<std::string> argv = {test::binary()};
        if (headless) argv.push_back("--headless");
        argv.push_back(test::sourceDir() + "/examples/demo.toml");
        auto r = test::run(argv, {env, "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()}, 20);
        EXPECT_EQ(r.exitCode, 3) << r.err;
        EXPECT_NE(r.err.find("no JACK server is running"), std::string::npos) << r.err;
        EXPECT_TRUE(r.err.find("jackd -d dummy") != std::string::npos || r.err.find("jackd -d alsa") != std::string::npos);
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
}

TEST_F(BadInput, CheckReadsOnlyWholeRegularSessionFiles) {
    const auto start = std::chrono::steady_clock::now();
    for (const auto& path : nonRegular("session", 5)) {  // 5: a node like /dev/zero
        auto r = test::run({test::binary(), "check", path}, {}, 20);
        expectError(r, 1, "not a regular file; the session file must be a regular file");
    }
    expectError(test::run({test::binary(), "check", "/proc/self/mem"}, {}, 20), 1,
                "/proc/self/mem: cannot read the session file (");
    const std::string big = dir + "/big.toml";
    const int fd = ::open(big.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_EQ(::ftruncate(fd, 20 << 20), 0);
    ::close(fd);
    expectError(test::run({test::binary(), "check", big}, {}, 20), 1, "the session file is 20.0 MiB; rackterm reads at most 16.0 MiB");
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 15.0) << "nothing blocked";
}

TEST_F(BadInput, RenderNeverReplacesWhatIsNotARegularFile) {
    test::writeText(dir + "/s.toml", "[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
    for (const auto& out : nonRegular("out", 3)) {  // 3: a node like /dev/null
        const mode_t before = kind(out);
        auto r = render({"-i", "/usr/share/sounds/alsa/Noise.wav", "-o", out});
        expectError(r, 1, "not a regular file; rackterm replaces only regular files: choose another path");
        EXPECT_EQ(kind(out), before) << out << " was replaced";
    }
    for (const auto& e : std::filesystem::directory_iterator(dir))
        EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << "left behind: " << e.path();
}

TEST_F(BadInput, RenderOntoItsOwnInputIsRefusedBeforeAnythingIsWritten) {
    test::writeText(dir + "/s.toml", "[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { gain_db = -20.0 }\n");
    const std::string in = dir + "/in.wav";
    std::filesystem::copy_file("/usr/share/sounds/alsa/Front_Center.wav", in);
    const std::string before = test::readText(in);
    std::filesystem::create_symlink(in, dir + "/sym.wav");
    std::filesystem::create_hard_link(in, dir + "/hard.wav");
    for (const std::string out : {in, dir + "/sym.wav", dir + "/hard.wav", dir + "/./in.wav"}) {
        auto r = render({"-i", in, "-o", out});
        expectError(r, 1, "is the input file");
        EXPECT_EQ(test::readText(in), before) << "the input was overwritten through " << out;
    }
}

TEST_F(BadInput, RenderRefusesInputsThatAreNotRegularFilesWithoutWaiting) {
    test::writeText(dir + "/s.toml", "[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
    const auto start = std::chrono::steady_clock::now();
    for (const auto& in : nonRegular("in", 5)) {  // a FIFO with no writer hung 0.1 forever
        auto r = render({"-i", in, "-o", dir + "/out.wav"});
        expectError(r, 1, "not a regular file; the input must be a regular file");
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 15.0);
    EXPECT_FALSE(std::filesystem::exists(dir + "/out.wav"));
}

TEST_F(BadInput, CheckRunsNoBuildCommand) {
    const std::string marker = dir + "/built";
    test::writeText(dir + "/s.toml", "[[node]]\nid = \"p\"\npath = \"build/libp.so\"\nwatch = { source = \".\", build = "
                                     "\"touch " + marker + "\" }\n");
    auto r = test::run({test::binary(), "check", dir + "/s.toml"});
    expectError(r, 1, "s.toml:3:8: node 'p': its module build/libp.so does not exist; build it with `touch " + marker +
                          "` in the session's folder, or run `rackterm check --build`");
    EXPECT_FALSE(std::filesystem::exists(marker)) << "check ran the build command";
    auto built = test::run({test::binary(), "check", "--build", dir + "/s.toml"});
    EXPECT_TRUE(std::filesystem::exists(marker)) << "check --build runs it" << built.err;
    EXPECT_EQ(built.exitCode, 1) << "the command made no module";
}

TEST_F(BadInput, ADescriptorSmallerThanV2IsRefusedNotReadAfterUnload) {
    auto r = checkModule(fixture("fixture_small_struct"));
    expectError(r, 1, "descriptor is 16 bytes, ABI v2 needs ");
}

TEST_F(BadInput, TooManyNodesIsOneLimitWithOneMessage) {
    std::string text;
    for (size_t i = 0; i <= kMaxNodes; ++i) text += "[[node]]\nid = \"g" + std::to_string(i) + "\"\nprocessor = \"gain\"\n";
    expectError(check(text), 1, "s.toml:" + std::to_string(3 * kMaxNodes + 1) + ":1: " + nodeLimitMessage(kMaxNodes + 1));
}

TEST_F(BadInput, LongAndControlValuesAreQuotedShortOnOneLine) {
    auto r = check("[[node]]\nid = \"g\"\nprocessor = \"" + std::string(10'000'000, 'z') + "\"\n");
    expectError(r, 1, "unknown processor 'zzzz");
    EXPECT_LT(r.err.size(), 400u) << "a 10 MB value is cut, not echoed";
    auto key = check("[[node]]\nid = \"g\"\nprocessor = \"gain\"\nparams = { \"a\\u0007b\" = 1.0 }\n");
    expectError(key, 1, "has no parameter 'a\\x07b'");
    test::writeText(dir + "/s.toml", "[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
    test::writeText(dir + "/long.txt", "set g.gain_db " + std::string(2'000'000, '7') + "dB\n");
    auto script = render({"-i", "/usr/share/sounds/alsa/Noise.wav", "-o", dir + "/o.wav", "--script", dir + "/long.txt"});
    expectError(script, 1, "long.txt:1: '7777");
    EXPECT_LT(script.err.size(), 400u);
}

TEST_F(BadInput, InputsWithMoreChannelsThanTheRackSaySoByName) {
    test::Sound eight;
    eight.rate = 48000;
    eight.channels = 8;
    eight.samples.assign(48000 * 8 / 10, 0.1f);
    test::writeSound(dir + "/eight.wav", eight);
    test::writeText(dir + "/s.toml", "[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
    auto r = render({"-i", dir + "/eight.wav", "-o", dir + "/o.wav"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("rackterm: warning: " + dir + "/eight.wav has 8 channels; rendering channels 1 to 2 (the session's input has 2)"),
              std::string::npos)
        << r.err;
    auto p = check("[[node]]\nid = \"src\"\nprocessor = \"player\"\nfile = \"" + dir + "/eight.wav\"\n");
    EXPECT_EQ(p.exitCode, 0) << p.err;
    EXPECT_NE(p.err.find("has 8 channels; node 'src' plays channels 1 and 2"), std::string::npos) << p.err;
}

TEST_F(BadInput, CtlGivesUpAfterItsTimeoutWithItsOwnExitCode) {
    // A "session" that accepts and never answers, and one whose queue is full.
    const std::string runtime = dir + "/run";
    std::filesystem::create_directories(runtime + "/rackterm");
    ::chmod((runtime + "/rackterm").c_str(), 0700);
    ::chmod(runtime.c_str(), 0700);
    const int mute = test::bindUnixSocket(runtime + "/rackterm/mute.sock", 4);
    const int full = test::bindUnixSocket(runtime + "/rackterm/full.sock", 0);
    ASSERT_GE(mute, 0);
    ASSERT_GE(full, 0);
    std::vector<int> fillers;  // fill the queue of `full`
    for (int i = 0; i < 8; ++i) {
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s/rackterm/full.sock", runtime.c_str());
        const int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
        fillers.push_back(c);
    }
    const std::vector<std::string> env = {"XDG_RUNTIME_DIR=" + runtime};
    for (const std::string name : {"mute", "full"}) {
        const auto start = std::chrono::steady_clock::now();
        auto r = test::run({test::binary(), "ctl", "--session", name, "--timeout", "1", "status"}, env, 20);
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        expectError(r, 4, "within 1 s");
        EXPECT_NE(r.err.find("--timeout"), std::string::npos) << r.err;
        EXPECT_LT(took, 5.0) << name;
    }
    auto dflt = test::run({test::binary(), "ctl", "--session", "mute", "status"}, env, 30);
    EXPECT_EQ(dflt.exitCode, 4) << "the default time-out (10 s) ends it too: " << dflt.err;
    for (int c : fillers) ::close(c);
    ::close(mute);
    ::close(full);
}
