// Recovery: unsaved edits survive kill -9 and SIGHUP. In process: the
// journal a runtime writes, cut at every byte, reads back as one of the
// states the session went through (never a mix, never a crash). Live, on a
// private jackd: `rackterm --headless`, edits over the socket, kill -9 or
// SIGHUP, open again, `recover` (the values are back) or `discard`; a save
// or a quit removes the file; an older file is not offered; in tmux the
// console offers r / d.
#include "support/LiveLoop.hpp"
#include "support/Support.hpp"

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Recovery.hpp>
#include <rackterm/app/Runtime.hpp>
#include <rackterm/config/Session.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <utime.h>

#include <chrono>
#include <filesystem>
#include <thread>

using namespace rackterm;

namespace {

void sleepSeconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

/// Node ids, values and bypass of a session as one comparable text.
std::string stateOf(const config::Session& s) {
    std::string out;
    for (const auto& n : s.nodes) {
        out += n.id + (n.bypass ? "(b)" : "") + ":";
        for (const auto& p : n.params) out += p.id + "=" + std::to_string(p.value) + ",";
        out += ";";
    }
    for (const auto& c : s.connections) out += c.from + ">" + c.to + ";";
    return out;
}

}  // namespace

TEST(RecoveryFile, EveryPrefixOfTheJournalReadsAsAStateTheSessionWentThrough) {
    setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    const std::string dir = test::tempDir("recovery-prefix");
    const std::string path = dir + "/s.toml";
    test::writeText(path, "[session]\nname = \"s\"\n# kept\n[[node]]\nid = \"a\"\nprocessor = \"gain\"\n"
                          "[[node]]\nid = \"b\"\nprocessor = \"biquad\"\n");
    auto s = config::loadSession(path);
    ASSERT_TRUE(s) << s.error();
    auto rt = app::Runtime::open(s.value(), 48000, 64);
    ASSERT_TRUE(rt) << rt.error();
    app::Runtime& r = *rt.value();
    r.setOffline(true);
    app::RecoveryJournal journal(path);
    EXPECT_FALSE(journal.offered());
    double now = 100;
    std::vector<std::string> states;
    app::CommandContext ctx{r, app::Source::Socket};
    for (const char* cmd : {"set a.gain_db -3", "set a.gain_db -4.5", "bypass b on", "add c saturator after a",
                            "set c.drive_db 12", "set b.frequency_hz 2500", "connect a c -6", "set a.gain_db 1.25",
                            "remove b", "bypass a on"}) {
        const app::Reply reply = test::settle(r, app::execute(ctx, cmd));
        ASSERT_TRUE(reply.ok) << cmd << ": " << reply.text;
        now += 0.2;  // past the 0.1 s between looks
        journal.update(r, now);
        states.push_back(stateOf(r.document()));
    }
    const std::string file = app::recoveryPath(path);
    ASSERT_EQ(file, dir + "/.s.toml.recover");
    const std::string whole = test::readText(file);
    ASSERT_FALSE(whole.empty());
    auto full = app::readRecovery(file, path);
    ASSERT_TRUE(full) << full.error();
    EXPECT_EQ(stateOf(full->session), states.back());
    EXPECT_NE(full->session.sourceText.find("# kept"), std::string::npos) << "saving edits the file as it is on disk";
    // Cut at every byte: an error before the first complete record, then
    // the states in order, never one the session did not go through.
    size_t next = 0, errors = 0;
    const std::string cut = dir + "/cut";
    for (size_t len = 0; len <= whole.size(); ++len) {
        test::writeText(cut, whole.substr(0, len));
        auto got = app::readRecovery(cut, path);
        if (!got) {
            ++errors;
            EXPECT_EQ(next, 0u) << "an error after a complete record, at " << len << ": " << got.error();
            continue;
        }
        const std::string st = stateOf(got->session);
        while (next < states.size() && states[next] != st) ++next;
        ASSERT_LT(next, states.size()) << "at " << len << " bytes: a state the session never had: " << st;
    }
    EXPECT_GT(errors, 0u);
    EXPECT_EQ(next, states.size() - 1);
    // Undone back to what the file holds: the recovery file goes.
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(test::settle(r, app::execute(ctx, "undo")).ok);
    journal.update(r, now + 1);
    EXPECT_FALSE(std::filesystem::exists(file));
    std::filesystem::remove_all(dir);
}

TEST(RecoveryFile, AnOlderFileIsNotOfferedAndAForeignOneIsRefused) {
    const std::string dir = test::tempDir("recovery-old");
    const std::string path = dir + "/s.toml";
    test::writeText(path, "[session]\nname = \"s\"\n");
    const std::string file = app::recoveryPath(path);
    test::writeText(file, "rackterm-recovery 1\n");
    struct utimbuf old {1000000000, 1000000000};
    ASSERT_EQ(::utime(file.c_str(), &old), 0);
    EXPECT_FALSE(app::RecoveryJournal(path).offered()) << "the session was saved after it";
    ASSERT_EQ(::utime(file.c_str(), nullptr), 0);
    app::RecoveryJournal newer(path);
    EXPECT_TRUE(newer.offered());
    EXPECT_NE(newer.offerText().find("`recover` brings them back, `discard` drops them"), std::string::npos);
    auto empty = app::readRecovery(file, path);
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().find("holds no complete session"), std::string::npos) << empty.error();
    test::writeText(file, "[session]\nname = \"x\"\n");
    auto foreign = app::readRecovery(file, path);
    ASSERT_FALSE(foreign);
    EXPECT_NE(foreign.error().find("not a rackterm recovery file"), std::string::npos) << foreign.error();
    std::filesystem::remove_all(dir);
}

namespace {

class RecoveryLive : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_TRUE(server.ready()) << server.error();
        dir = test::tempDir("recovery-live");
        session = dir + "/rec.toml";
        test::writeText(session, "[session]\nname = \"rectest\"\n# a comment\n[[node]]\nid = \"osc\"\n"
                                 "processor = \"oscillator\"\n[[node]]\nid = \"g\"\nprocessor = \"gain\"\n");
        env = {server.envEntry(), "RACKTERM_PROCESSOR_PATH=" + test::moduleDir(), "XDG_RUNTIME_DIR=" + dir};
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    pid_t start() {
        const pid_t pid = test::spawn({test::binary(), "--headless", session}, env, dir + "/out", dir + "/err");
        for (int i = 0; i < 200 && test::readText(dir + "/err").find("live on JACK") == std::string::npos; ++i)
            sleepSeconds(0.05);
        return pid;
    }
    std::string ctl(const std::string& command) {
        auto r = test::run({test::binary(), "ctl", "--session", "rectest", command}, env, 20);
        return r.out + r.err;
    }
    std::string recoveryFile() const { return dir + "/.rec.toml.recover"; }
    test::JackServer server;
    std::string dir, session;
    std::vector<std::string> env;
};

}  // namespace

TEST_F(RecoveryLive, KillNineAfterEditsThenRecoverBringsTheValuesBack) {
    {
        test::Child rackterm(start());
        for (const char* cmd : {"set g.gain_db -7", "bypass osc on", "add g2 gain", "set g2.gain_db 3", "set g.gain_db -8.5"})
            ASSERT_EQ(ctl(cmd).rfind("ok", 0), 0u) << cmd << ": " << test::readText(dir + "/err");
        sleepSeconds(1.2);  // fsync'd within a second
        ASSERT_TRUE(std::filesystem::exists(recoveryFile()));
        rackterm.stop(SIGKILL);
    }
    test::Child again(start());
    EXPECT_NE(test::readText(dir + "/err").find("has unsaved edits from"), std::string::npos) << test::readText(dir + "/err");
    EXPECT_EQ(ctl("get g.gain_db"), "ok g.gain_db = 0.0 dB\n") << "the file's value until `recover`";
    EXPECT_EQ(ctl("recover").rfind("ok recovered the unsaved edits", 0), 0u);
    EXPECT_EQ(ctl("get g.gain_db"), "ok g.gain_db = -8.5 dB\n");
    EXPECT_EQ(ctl("get g2.gain_db"), "ok g2.gain_db = 3.0 dB\n");
    EXPECT_NE(ctl("list nodes").find("osc"), std::string::npos);
    EXPECT_NE(ctl("status").find("unsaved"), std::string::npos);
    EXPECT_EQ(ctl("recover").rfind("error: nothing to recover", 0), 0u) << "the offer is closed";
    EXPECT_EQ(ctl("save").rfind("ok saved", 0), 0u);
    sleepSeconds(0.3);
    EXPECT_FALSE(std::filesystem::exists(recoveryFile())) << "a clean save removes it";
    const std::string saved = test::readText(session);
    EXPECT_NE(saved.find("# a comment"), std::string::npos) << saved;
    EXPECT_NE(saved.find("gain_db = -8.5"), std::string::npos) << saved;
    EXPECT_NE(saved.find("bypass = true"), std::string::npos) << saved;
    EXPECT_EQ(again.stop(SIGTERM), 0);
}

TEST_F(RecoveryLive, SighupKeepsTheEditsAndExitsCleanlyAndDiscardDropsThem) {
    {
        test::Child rackterm(start());
        ASSERT_EQ(ctl("set g.gain_db -12").rfind("ok", 0), 0u);
        EXPECT_EQ(rackterm.stop(SIGHUP), 0) << "a dropped SSH link ends the session cleanly";
        EXPECT_NE(test::readText(dir + "/err").find("unsaved edits kept in"), std::string::npos) << test::readText(dir + "/err");
        ASSERT_TRUE(std::filesystem::exists(recoveryFile()));
        EXPECT_NE(test::readText(recoveryFile()).find("gain_db = -12.0"), std::string::npos);
    }
    {
        test::Child rackterm(start());
        EXPECT_EQ(ctl("discard").rfind("ok dropped the unsaved edits", 0), 0u);
        EXPECT_FALSE(std::filesystem::exists(recoveryFile()));
        EXPECT_EQ(ctl("get g.gain_db"), "ok g.gain_db = 0.0 dB\n");
        // A clean quit removes the file of this session's own edits.
        ASSERT_EQ(ctl("set g.gain_db -3").rfind("ok", 0), 0u);
        for (int i = 0; i < 40 && !std::filesystem::exists(recoveryFile()); ++i) sleepSeconds(0.05);
        ASSERT_TRUE(std::filesystem::exists(recoveryFile()));
        EXPECT_EQ(ctl("quit!").rfind("ok", 0), 0u);
        int status = 0;
        for (int i = 0; i < 100 && rackterm.running(&status); ++i) sleepSeconds(0.05);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        EXPECT_FALSE(std::filesystem::exists(recoveryFile())) << "quit removes it";
    }
}

TEST_F(RecoveryLive, SigtermKeepsTheEditsToo) {
    test::Child rackterm(start());
    ASSERT_EQ(ctl("set g.gain_db -5").rfind("ok", 0), 0u);
    EXPECT_EQ(rackterm.stop(SIGTERM), 0);
    ASSERT_TRUE(std::filesystem::exists(recoveryFile()));
    auto got = app::readRecovery(recoveryFile(), session);
    ASSERT_TRUE(got) << got.error();
    ASSERT_EQ(got->session.nodes.size(), 2u);
    ASSERT_EQ(got->session.nodes[1].params.size(), 1u);
    EXPECT_EQ(got->session.nodes[1].params[0].value, -5.0);
}
