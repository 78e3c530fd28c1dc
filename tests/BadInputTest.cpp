// Bad input through the real binary: each case gets one clear line on
// stderr, the right exit code, no crash, and no file lost or half written.
#include "support/Support.hpp"

#include <gtest/gtest.h>

#include <filesystem>

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
    for (const auto& e : std::filesystem::directory_iterator(dir))
        EXPECT_EQ(e.path().filename().string().find(".part"), std::string::npos) << "left behind: " << e.path();
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
