// Processor packages (docs/packages.md), through the real binary and the
// real file system under a private XDG_DATA_HOME: manifest errors with
// line:column; validation that refuses path escapes, duplicate ids, a v1
// build and a foreign-architecture ELF before anything is copied; the
// install -> list -> verify -> uninstall round trip; tampering found by
// verify; kill -9 during 200 installs never leaving half a package; an
// upgrade under a session playing on a private jackd (crossfaded, values
// kept); uninstall refused while in use, --force unloading; `package new`
// building and hot-reloading; the activate/deactivate hooks, failing and
// hanging.
#include "support/JackCapture.hpp"
#include "support/LiveLoop.hpp"
#include "support/Support.hpp"

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Packages.hpp>
#include <rackterm/config/Manifest.hpp>
#include <rackterm/config/Session.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

/// A private data folder (packages) and runtime folder (sockets) for one test.
struct Sandbox {
    std::string dir, data, runtime;
    explicit Sandbox(const std::string& tag) : dir(test::tempDir(tag)), data(dir + "/data"), runtime(dir + "/run") {
        fs::create_directories(runtime);
        fs::permissions(runtime, fs::perms::owner_all, fs::perm_options::replace);
        setenv("XDG_DATA_HOME", data.c_str(), 1);
        setenv("XDG_RUNTIME_DIR", runtime.c_str(), 1);
        setenv("RACKTERM_PROCESSOR_PATH", test::moduleDir().c_str(), 1);
    }
    ~Sandbox() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::vector<std::string> env() const {
        return {"XDG_DATA_HOME=" + data, "XDG_RUNTIME_DIR=" + runtime, "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()};
    }
    std::string packages() const { return data + "/rackterm/packages"; }
    test::RunResult rackterm(std::vector<std::string> args, std::vector<std::string> extra = {}, double timeout = 60) const {
        args.insert(args.begin(), test::binary());
        auto e = env();
        e.insert(e.end(), extra.begin(), extra.end());
        return test::run(args, e, timeout);
    }
};

/// A package folder `dir` with one component `component` copied from `module`.
void makePackage(const std::string& dir, const std::string& id, const std::string& version, const std::string& component,
                 const std::string& module, const std::string& extra = "") {
    fs::create_directories(dir + "/lib");
    fs::remove(dir + "/lib/" + component + ".so");
    fs::copy_file(module, dir + "/lib/" + component + ".so", fs::copy_options::overwrite_existing);
    test::writeText(dir + "/rackterm-package.toml", "schema_version = 1\nid = \"" + id + "\"\nversion = \"" + version +
                                                        "\"\napi_version = 2\ndescription = \"test package\"\n\n"
                                                        "[[component]]\nid = \"" + component + "\"\npath = \"lib/" +
                                                        component + ".so\"\nkind = \"dsp\"\n" + extra);
}

std::string gainModule() { return test::moduleDir() + "/libgain.so"; }

/// Folders under packages/ that are not whole, intact packages.
std::vector<std::string> halfInstalled(const std::string& root) {
    std::vector<std::string> bad;
    std::error_code ec;
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name[0] == '.') continue;
        auto v = app::verifyPackage(name);
        if (!v) bad.push_back(name + ": " + v.error());
        else if (!v.value().empty()) bad.push_back(name + ": " + v.value().front());
    }
    return bad;
}

/// The lines of the lifecycle fixture's log this process wrote, without
/// their process id (a trial's sandbox runs an instance of its own).
std::string linesOfThisProcess(const std::string& log) {
    std::string out, line;
    std::istringstream in(test::readText(log));
    const std::string me = std::to_string(::getpid()) + " ";
    while (std::getline(in, line))
        if (line.rfind(me, 0) == 0) out += line.substr(me.size()) + "\n";
    return out;
}

}  // namespace

TEST(Manifest, ErrorsNamePlaceAndRemedy) {
    auto bad = [](const std::string& text) {
        auto m = config::parseManifest(text, "m.toml");
        EXPECT_FALSE(m) << text;
        return m ? std::string() : m.error();
    };
    const std::string head = "schema_version = 1\nid = \"p\"\nversion = \"1.0.0\"\napi_version = 2\n";
    const std::string comp = "[[component]]\nid = \"gain\"\npath = \"lib/gain.so\"\nkind = \"dsp\"\n";
    EXPECT_EQ(bad("schema_version = 3\n"), "m.toml:1:18: schema_version 3 is not supported; this rackterm reads schema_version 1 (the package needs a newer rackterm)");
    EXPECT_EQ(bad(head + "vesion = \"2\"\n" + comp), "m.toml:5:1: unknown key 'vesion' in the manifest (did you mean 'version'?)");
    EXPECT_EQ(bad("schema_version = 1\nid = \"p\"\nversion = \"1.2\"\napi_version = 2\n" + comp),
              "m.toml:3:11: version '1.2' is not a semantic version: needs MAJOR.MINOR.PATCH, e.g. 1.2.0");
    EXPECT_EQ(bad("schema_version = 1\nid = \"Bad Id\"\nversion = \"1.0.0\"\n"),
              "m.toml:2:6: id 'Bad Id' must be 1 to 64 of [a-z0-9_-] starting with a letter or digit, e.g. id = \"my-drive\"");
    EXPECT_EQ(bad(head + comp + comp), "m.toml:10:6: component id 'gain' is used twice (first at m.toml:5:1); give each component its own id");
    EXPECT_EQ(bad(head + "[[component]]\nid = \"gain\"\npath = \"lib/gain.so\"\nkind = \"dps\"\n"),
              "m.toml:8:8: kind 'dps' is not known; the kinds are: dsp (did you mean 'dsp'?)");
    EXPECT_NE(bad(head).find("m.toml:1:1: the manifest lists no [[component]]"), std::string::npos);
    EXPECT_NE(bad(head + "[[component]\n").find("m.toml:5:"), std::string::npos) << "TOML syntax errors have their place";

    auto ok = config::parseManifest(head + "description = \"d\"\n" + comp, "m.toml");
    ASSERT_TRUE(ok) << ok.error();
    EXPECT_EQ(ok.value().components.at(0).path, "lib/gain.so");
}

TEST(Manifest, SemanticVersionOrder) {
    auto v = [](const char* t) { return config::parseVersion(t).value(); };
    const char* order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                           "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"};
    for (size_t i = 0; i + 1 < std::size(order); ++i) {
        EXPECT_LT(config::compareVersions(v(order[i]), v(order[i + 1])), 0) << order[i] << " < " << order[i + 1];
        EXPECT_GT(config::compareVersions(v(order[i + 1]), v(order[i])), 0);
    }
    EXPECT_EQ(config::compareVersions(v("1.0.0+build5"), v("1.0.0")), 0) << "build metadata does not order";
    EXPECT_FALSE(config::parseVersion("01.0.0"));
    EXPECT_FALSE(config::parseVersion("1.0.0.0"));
    EXPECT_FALSE(config::parseVersion("1.0.0-"));
}

TEST(Package, InstallRefusesBadPackagesBeforeCopyingAnything) {
    Sandbox box("pkg-refuse");
    auto refused = [&](const std::string& dir, const std::string& expected) {
        const auto r = box.rackterm({"install", dir});
        EXPECT_EQ(r.exitCode, 1) << r.out << r.err;
        EXPECT_NE(r.err.find(expected), std::string::npos) << "expected: " << expected << "\nstderr: " << r.err;
        EXPECT_TRUE(halfInstalled(box.packages()).empty());
        std::error_code ec;
        EXPECT_FALSE(fs::exists(box.packages() + "/p", ec)) << "nothing was installed";
        EXPECT_TRUE(!fs::exists(box.packages() + "/.staging", ec) || fs::is_empty(box.packages() + "/.staging", ec))
            << "nothing was left staged";
        return r.err;
    };
    const std::string p = box.dir + "/p";
    // A '..' in a component path.
    makePackage(p, "p", "1.0.0", "gain", gainModule());
    test::writeText(p + "/rackterm-package.toml", "schema_version = 1\nid = \"p\"\nversion = \"1.0.0\"\napi_version = 2\n"
                                                  "[[component]]\nid = \"gain\"\npath = \"../p/lib/gain.so\"\nkind = \"dsp\"\n");
    refused(p, "rackterm-package.toml:7:8: component 'gain': path '../p/lib/gain.so' has a '..'");
    // An absolute path.
    test::writeText(p + "/rackterm-package.toml", "schema_version = 1\nid = \"p\"\nversion = \"1.0.0\"\napi_version = 2\n"
                                                  "[[component]]\nid = \"gain\"\npath = \"" + gainModule() + "\"\nkind = \"dsp\"\n");
    refused(p, "is absolute; give it relative to the package folder");
    // A symlink inside the package that points outside it.
    makePackage(p, "p", "1.0.0", "gain", gainModule());
    fs::remove(p + "/lib/gain.so");
    fs::create_symlink(gainModule(), p + "/lib/gain.so");
    refused(p, "resolves to " + fs::canonical(gainModule()).string() + ", outside the package folder (a symlink)");
    // A README.md that is a symlink to a private file outside: it would be copied into the package.
    makePackage(p, "p", "1.0.0", "gain", gainModule());
    test::writeText(box.dir + "/secret", "key\n");
    fs::create_symlink(box.dir + "/secret", p + "/README.md");
    refused(p, "README.md resolves to " + fs::canonical(box.dir + "/secret").string() + ", not a file inside the package folder");
    fs::remove(p + "/README.md");
    // Duplicate component ids.
    makePackage(p, "p", "1.0.0", "gain", gainModule(), "[[component]]\nid = \"gain\"\npath = \"lib/gain.so\"\nkind = \"dsp\"\n");
    refused(p, "component id 'gain' is used twice");
    // A component id that is not the processor's.
    makePackage(p, "p", "1.0.0", "gain", gainModule());
    fs::rename(p + "/lib/gain.so", p + "/lib/amp.so");
    test::writeText(p + "/rackterm-package.toml", "schema_version = 1\nid = \"p\"\nversion = \"1.0.0\"\napi_version = 2\n"
                                                  "[[component]]\nid = \"amp\"\npath = \"lib/amp.so\"\nkind = \"dsp\"\n");
    refused(p, "is processor 'gain', not 'amp'");
    // A build for ABI v1: the loader's own message.
    makePackage(p, "p", "1.0.0", "fixture", test::fixtureDir() + "/libfixture_abi_v1.so");
    refused(p, "processor ABI v1 found, rackterm needs v2; rebuild the processor against this rackterm's rackterm/processor.h");
    // ... and for a newer ABI than this rackterm's: the same message, the same remedy.
    makePackage(p, "p", "1.0.0", "fixture", test::fixtureDir() + "/libfixture_abi_v3.so");
    refused(p, "processor ABI v3 found, rackterm needs v2; rebuild the processor against this rackterm's rackterm/processor.h");
    // A module whose initialiser crashes: checked in a child, so the installer reports it.
    makePackage(p, "p", "1.0.0", "fixture", test::fixtureDir() + "/libfixture_crash_on_load.so");
    refused(p, "lib/fixture.so crashed while loading (Segmentation fault); fix the module's initialisers");
    makePackage(p, "p", "1.0.0", "fixture", test::fixtureDir() + "/libfixture_exit_on_load.so");
    refused(p, "lib/fixture.so ended the process while it was loading (exit status 0); a module must not exit");
    // A module for another architecture: libgain.so with its e_machine patched to AArch64 (183).
    makePackage(p, "p", "1.0.0", "gain", gainModule());
    {
        std::fstream f(p + "/lib/gain.so", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(18);
        const unsigned char aarch64[2] = {183, 0};
        f.write(reinterpret_cast<const char*>(aarch64), 2);
    }
    refused(p, "is built for AArch64, 64-bit little-endian (ELF e_machine 183), this machine runs x86-64");
    // Not an ELF file at all.
    test::writeText(p + "/lib/gain.so", "#!/bin/sh\n");
    refused(p, "is not an ELF file");
    // A missing file, an api_version that is not this ABI's, no manifest.
    makePackage(p, "p", "1.0.0", "gain", gainModule());
    fs::remove(p + "/lib/gain.so");
    refused(p, "does not exist; build the package first");
    makePackage(p, "p", "1.0.0", "gain", gainModule());
    test::writeText(p + "/rackterm-package.toml", "schema_version = 1\nid = \"p\"\nversion = \"1.0.0\"\napi_version = 3\n"
                                                  "[[component]]\nid = \"gain\"\npath = \"lib/gain.so\"\nkind = \"dsp\"\n");
    refused(p, "rackterm-package.toml:4:15: api_version 3 is not this rackterm's processor ABI (v2)");
    fs::remove(p + "/rackterm-package.toml");
    refused(p, "no manifest; a package folder has a rackterm-package.toml");
}

TEST(Package, InstallListVerifyUninstallRoundTripAndTampering) {
    Sandbox box("pkg-round");
    const std::string p = box.dir + "/src";
    makePackage(p, "amp", "1.0.0", "gain", gainModule());
    test::writeText(p + "/README.md", "amp\n");
    auto r = box.rackterm({"install", p});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("installed amp 1.0.0"), std::string::npos) << r.out;

    r = box.rackterm({"package", "list"});
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_NE(r.out.find("amp 1.0.0  components: amp/gain  installed 20"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("in use by: no running session"), std::string::npos) << r.out;
    r = box.rackterm({"processors", "package"});
    EXPECT_NE(r.out.find("amp/gain (package amp 1.0.0)"), std::string::npos) << r.out;

    // A session names the component; a typo gets a did-you-mean.
    const std::string session = box.dir + "/s.toml";
    test::writeText(session, "[session]\nname = \"s\"\n[[node]]\nid = \"a\"\nprocessor = \"amp/gain\"\nparams = { gain_db = -6 }\n");
    r = box.rackterm({"check", session});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    test::writeText(session, "[session]\nname = \"s\"\n[[node]]\nid = \"a\"\nprocessor = \"anp/gain\"\n");
    r = box.rackterm({"check", session});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("s.toml:5:13: no installed package 'anp' (did you mean 'amp'?)"), std::string::npos) << r.err;

    r = box.rackterm({"package", "verify", "amp"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("amp 1.0.0: every file matches its receipt"), std::string::npos);

    // The same version again is a reinstall; an older one needs --downgrade.
    EXPECT_EQ(box.rackterm({"install", p}).exitCode, 0);
    makePackage(p, "amp", "0.9.0", "gain", gainModule());
    r = box.rackterm({"install", p});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("amp 1.0.0 is installed; 0.9.0 is older: add --downgrade"), std::string::npos) << r.err;
    EXPECT_EQ(app::installedVersion("amp"), "1.0.0");
    EXPECT_EQ(box.rackterm({"install", "--downgrade", p}).exitCode, 0);
    EXPECT_EQ(app::installedVersion("amp"), "0.9.0");

    // Tampering: a changed byte, then a missing file, then an added one.
    const std::string so = box.packages() + "/amp/lib/gain.so";
    {
        std::fstream f(so, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(1000);
        f.put('\x5a');
    }
    r = box.rackterm({"package", "verify", "amp"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find(so + ": changed"), std::string::npos) << r.err;
    fs::remove(box.packages() + "/amp/README.md");
    test::writeText(box.packages() + "/amp/extra.txt", "x");
    r = box.rackterm({"package", "verify"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("README.md: missing"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("extra.txt: not in the receipt"), std::string::npos) << r.err;

    r = box.rackterm({"uninstall", "anp"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("no installed package 'anp' (did you mean 'amp'?)"), std::string::npos) << r.err;
    r = box.rackterm({"uninstall", "amp"});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_FALSE(fs::exists(box.packages() + "/amp"));
    r = box.rackterm({"package", "list"});
    EXPECT_NE(r.out.find("no packages installed"), std::string::npos) << r.out;
}

TEST(Package, PackedArchiveInstallsAndBadArchivesAreRefused) {
    Sandbox box("pkg-archive");
    const std::string p = box.dir + "/src";
    makePackage(p, "amp", "1.2.0", "gain", gainModule());
    const std::string archive = box.dir + "/amp.tar.gz";
    auto r = box.rackterm({"package", "pack", p, "-o", archive});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto listing = test::run({"tar", "tzf", archive});
    EXPECT_EQ(listing.out, "amp-1.2.0/lib/gain.so\namp-1.2.0/rackterm-package.toml\n") << "one folder, the package's files";
    r = box.rackterm({"install", archive});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(app::installedVersion("amp"), "1.2.0");
    EXPECT_NE(test::readText(box.packages() + "/amp/rackterm-receipt.toml").find("source = '" + archive + "'"), std::string::npos);
    // An archive whose entry climbs out of its folder (made with tar itself).
    const std::string evil = box.dir + "/evil";
    fs::create_directories(evil + "/pkg");
    test::writeText(evil + "/x.txt", "x");
    const auto made = test::run({"tar", "-P", "-czf", box.dir + "/evil.tar.gz", "-C", evil + "/pkg", "../x.txt"});
    ASSERT_EQ(made.exitCode, 0) << made.err;
    r = box.rackterm({"install", box.dir + "/evil.tar.gz"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("'../x.txt' has a '..'"), std::string::npos) << r.err;
    // A problem inside an archive names the archive and the path in it, not a staging copy.
    makePackage(evil + "/pk", "amp", "1.3.0", "gain", gainModule());
    test::writeText(evil + "/pk/rackterm-package.toml", "schema_version = 1\nid = \"amp\"\nversion = \"1.3.0\"\napi_version = 3\n"
                                                       "[[component]]\nid = \"gain\"\npath = \"lib/gain.so\"\nkind = \"dsp\"\n");
    ASSERT_EQ(test::run({"tar", "-czf", box.dir + "/v3.tar.gz", "-C", evil, "pk"}).exitCode, 0);
    r = box.rackterm({"install", box.dir + "/v3.tar.gz"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find(box.dir + "/v3.tar.gz:pk/rackterm-package.toml:4:15: api_version 3"), std::string::npos) << r.err;
    test::writeText(box.dir + "/junk.tar.gz", "not an archive");
    r = box.rackterm({"install", box.dir + "/junk.tar.gz"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("cannot read it as a .tar.gz"), std::string::npos) << r.err;
    EXPECT_TRUE(halfInstalled(box.packages()).empty());
}

TEST(Package, KillNineDuringTwoHundredInstallsLeavesNoHalfPackage) {
    Sandbox box("pkg-kill");
    // Two versions whose files differ in size and content (gain vs delay as component "x" would
    // not load: ids must match), so a torn install would show in verify.
    const std::string a = box.dir + "/a", b = box.dir + "/b";
    makePackage(a, "pk", "1.0.0", "gain", gainModule());
    makePackage(b, "pk", "1.1.0", "gain", gainModule());
    test::writeText(b + "/README.md", std::string(300000, 'r'));
    // How long one install takes here: the kills land across that window.
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(box.rackterm({"install", a}).exitCode, 0);
    const double once = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::mt19937 rng(12345);
    std::uniform_real_distribution<double> when(0.0, once * 1.2);
    size_t killed = 0, completed = 0;
    for (int i = 0; i < 200; ++i) {
        const std::string src = i % 2 ? a : b;
        pid_t pid = test::spawn({test::binary(), "install", "--downgrade", src}, box.env(), box.dir + "/out", box.dir + "/err");
        ASSERT_GT(pid, 0);
        std::this_thread::sleep_for(std::chrono::duration<double>(when(rng)));
        ::kill(pid, SIGKILL);
        const int status = test::stop(pid, SIGKILL);
        (status == 0 ? completed : killed) += 1;
        const auto bad = halfInstalled(box.packages());
        ASSERT_TRUE(bad.empty()) << "after install " << i << ": " << bad.front();
        const std::string v = app::installedVersion("pk");
        ASSERT_TRUE(v == "1.0.0" || v == "1.1.0") << "the previous or the new version, never none: '" << v << "'";
    }
    std::printf("200 installs: %zu killed part way, %zu completed (one install takes %.0f ms)\n", killed, completed, once * 1000);
    EXPECT_GT(killed, 20u) << "the kills landed during installs";
    // The next install removes what the killed ones staged.
    ASSERT_EQ(box.rackterm({"install", "--downgrade", a}).exitCode, 0);
    std::error_code ec;
    EXPECT_TRUE(fs::is_empty(box.packages() + "/.staging", ec)) << "leftover staging folders are cleaned";
    EXPECT_TRUE(halfInstalled(box.packages()).empty());
    // On a file system without the atomic exchange, an install sets the old version aside
    // and renames the new one in: a kill between the two leaves the old one aside. The next
    // install puts it back before anything else.
    fs::rename(box.packages() + "/pk", box.packages() + "/.staging/old@pk@4242-0-0");
    makePackage(box.dir + "/other", "other", "1.0.0", "gain", gainModule());
    ASSERT_EQ(box.rackterm({"install", box.dir + "/other"}).exitCode, 0);
    EXPECT_EQ(app::installedVersion("pk"), "1.0.0") << "the version set aside is back";
    EXPECT_TRUE(halfInstalled(box.packages()).empty());
    EXPECT_TRUE(fs::is_empty(box.packages() + "/.staging", ec));
}

TEST(Package, LifecycleHooksFailHangAndReasons) {
    Sandbox box("pkg-hooks");
    const std::string log = box.dir + "/lifecycle.log";
    setenv("RACKTERM_TEST_LIFECYCLE_LOG", log.c_str(), 1);
    auto s = config::parseSession("[[node]]\nid = \"g\"\nprocessor = \"gain\"\n", box.dir + "/h.toml");
    ASSERT_TRUE(s) << s.error();
    auto mine = [&] { return linesOfThisProcess(log); };
    {
        auto opened = app::Runtime::open(s.value(), 48000, 64, 0, true);
        ASSERT_TRUE(opened) << opened.error();
        app::Runtime& rt = *opened.value();
        app::CommandContext ctx{rt, app::Source::Socket};
        auto run = [&](const std::string& line) { return test::settle(rt, app::execute(ctx, line)); };
        // activate() fails: the node stays out, with the processor's message.
        auto r = run("add bad " + test::fixtureDir() + "/libfixture_activate_fails.so");
        EXPECT_FALSE(r.ok);
        EXPECT_NE(r.text.find("activate() failed: no licence server at 127.0.0.1:1; start it and reload"), std::string::npos) << r.text;
        // activate() never returns: reported after 2 s, the session goes on.
        const auto t0 = std::chrono::steady_clock::now();
        r = run("add hang " + test::fixtureDir() + "/libfixture_activate_hangs.so");
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_FALSE(r.ok);
        EXPECT_NE(r.text.find("activate() did not return within 2 s; the node is treated as failed"), std::string::npos) << r.text;
        EXPECT_GE(took, 1.9);
        EXPECT_LT(took, 30.0) << "rackterm never waits on a hung hook for long";
        EXPECT_EQ(run("list nodes").text, "g=gain(active)");
        // The lifecycle fixture: activate on add; deactivate(remove) after its last block.
        ASSERT_TRUE(run("add life " + test::fixtureDir() + "/libfixture_lifecycle.so").ok);
        EXPECT_EQ(run("list nodes").text, "g=gain(active) life=lifecycle(active)");
        // Each new build first plays its trial in an instance of its own, activated and deactivated too.
        const std::string trial = "activate\ndeactivate 1\n";
        EXPECT_EQ(mine(), trial + "activate\n");
        ASSERT_TRUE(run("remove life").ok);
        for (int i = 0; i < 4; ++i) rt.tick();
        EXPECT_EQ(mine(), trial + "activate\ndeactivate 1\n") << "removed: reason 1 (remove)";
        ASSERT_TRUE(run("undo").ok);         // back: a new instance, activated
        ASSERT_TRUE(run("reload life").ok);  // a new build replaces it after its trial
        for (int i = 0; i < 4; ++i) rt.tick();
    }
    EXPECT_EQ(mine(), "activate\ndeactivate 1\nactivate\ndeactivate 1\n"  // trial, then added and removed
                      "activate\n"                                       // undo
                      "activate\ndeactivate 1\nactivate\n"               // reload: trial, the new build
                      "deactivate 2\n"                                   // the replaced build: reason 2 (reload)
                      "deactivate 3\n")                                  // quitting: reason 3 (shutdown)
        << "each instance activated once before it plays and deactivated once after, with its reason";
}
TEST(Package, UnloadFadesToBypassDeactivatesOnceAndKeepsTheNodeDry) {
    Sandbox box("pkg-unload");
    const std::string log = box.dir + "/lifecycle.log";
    setenv("RACKTERM_TEST_LIFECYCLE_LOG", log.c_str(), 1);
    const std::string p = box.dir + "/life";
    makePackage(p, "life", "1.0.0", "lifecycle", test::fixtureDir() + "/libfixture_lifecycle.so");
    app::InstallOptions options;
    options.notifySessions = false;
    auto installed = app::installPackage(p, options, [](const std::string&) {});
    ASSERT_TRUE(installed) << installed.error();
    auto s = config::parseSession("[[node]]\nid = \"g\"\nprocessor = \"gain\"\n"
                                  "[[node]]\nid = \"pl\"\nprocessor = \"life/lifecycle\"\nparams = { gain_db = -6 }\n",
                                  box.dir + "/u.toml");
    ASSERT_TRUE(s) << s.error();
    auto mine = [&] { return linesOfThisProcess(log); };
    {
        auto opened = app::Runtime::open(s.value(), 48000, 64);
        ASSERT_TRUE(opened) << opened.error();
        app::Runtime& rt = *opened.value();
        app::CommandContext ctx{rt, app::Source::Socket};
        // The audio thread, played here: 1000 blocks before the command's reply may come.
        auto run = [&](const std::string& line) { return test::settle(rt, app::execute(ctx, line)); };
        EXPECT_EQ(run("list packages").text, "life 1.0.0 (nodes pl)");
        EXPECT_EQ(mine(), "activate\n");
        const auto r = run("unload life");
        EXPECT_TRUE(r.ok) << r.text;
        EXPECT_EQ(r.text, "unloaded life: pl (bypassed)");
        EXPECT_EQ(mine(), "activate\ndeactivate 4\n") << "deactivated once, reason 4 (uninstall), after its last block";
        EXPECT_EQ(run("list nodes").text, "g=gain(active) pl=lifecycle(unloaded, bypassed)");
        EXPECT_EQ(run("list packages").text, "no packages") << "an unloaded node runs nothing: uninstall may go ahead";
        const auto off = run("bypass pl off");
        EXPECT_FALSE(off.ok);
        EXPECT_NE(off.text.find("node 'pl' is unloaded (its package was uninstalled)"), std::string::npos) << off.text;
        EXPECT_EQ(run("unload life").text, "no node runs package 'life'; `list packages` shows the ones in use");
    }
    EXPECT_EQ(mine(), "activate\ndeactivate 4\n") << "never deactivated twice";
}

TEST(Package, AllButBuiltinsIsolatesPackageComponents) {
    Sandbox box("pkg-iso");
    setenv("RACKTERM_SANDBOX", (fs::path(test::binary()).parent_path() / "rackterm-sandbox").c_str(), 1);
    makePackage(box.dir + "/amp", "amp", "1.0.0", "gain", gainModule());
    app::InstallOptions options;
    options.notifySessions = false;
    ASSERT_TRUE(app::installPackage(box.dir + "/amp", options, [](const std::string&) {}));
    auto s = config::parseSession("[engine]\nisolate = \"all-but-builtins\"\n[[node]]\nid = \"g\"\nprocessor = \"gain\"\n"
                                  "[[node]]\nid = \"a\"\nprocessor = \"amp/gain\"\n",
                                  box.dir + "/iso.toml");
    ASSERT_TRUE(s) << s.error();
    auto opened = app::Runtime::open(s.value(), 48000, 64, 0, true);
    ASSERT_TRUE(opened) << opened.error();
    app::CommandContext ctx{*opened.value(), app::Source::Socket};
    EXPECT_EQ(test::settle(*opened.value(), app::execute(ctx, "list nodes")).text, "g=gain(active) a=gain(active, isolated)")
        << "third-party code runs in a sandbox; the built-in does not";
}

TEST(Package, UpgradeUnderAPlayingSessionIsCrossfadedAndUninstallWaitsForIt) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    Sandbox box("pkg-live");
    const std::string v1 = box.dir + "/v1", v2 = box.dir + "/v2";
    makePackage(v1, "pk", "1.0.0", "swapper", test::fixtureDir() + "/libfixture_swap_1.so");
    makePackage(v2, "pk", "1.1.0", "swapper", test::fixtureDir() + "/libfixture_swap_2.so");
    ASSERT_EQ(box.rackterm({"install", v1}).exitCode, 0);
    const std::string session = box.dir + "/up.toml";
    test::writeText(session, "[session]\nname = \"pkup\"\n[engine]\ninputs = []\noutputs = []\n"
                             "[[node]]\nid = \"tone\"\nprocessor = \"oscillator\"\nparams = { frequency_hz = 441, level_db = -12 }\n"
                             "[[node]]\nid = \"amp\"\nprocessor = \"pk/swapper\"\nparams = { gain_db = -3 }\n");
    auto env = box.env();
    env.push_back(server.envEntry());
    test::Child rackterm(test::spawn({test::binary(), "--headless", session}, env, box.dir + "/out", box.dir + "/err"));
    auto ctl = [&](const std::string& cmd) {
        auto r = box.rackterm({"ctl", "--session", "pkup", "--timeout", "20", cmd}, {server.envEntry()}, 30);
        return r.out + r.err;
    };
    const double until = app::nowSeconds() + 15;
    while (ctl("list packages").find("ok pk 1.0.0 (nodes amp)") == std::string::npos && app::nowSeconds() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(ctl("list packages"), "ok pk 1.0.0 (nodes amp)\n") << test::readText(box.dir + "/err");

    auto xruns = [&] {
        const std::string st = ctl("status");
        const size_t at = st.find("xruns ");
        return at == std::string::npos ? -1L : std::stol(st.substr(at + 6));
    };
    const long xrunsBefore = xruns();
    // Record 3 s while the new version is installed: the running session swaps to it.
    const size_t frames = 48000 * 3;
    test::JackCapture rec(server.name(), "recorder", frames);
    ASSERT_TRUE(rec.ok());
    ASSERT_TRUE(rec.connectFrom("pkup:out_1", 1) && rec.connectFrom("pkup:out_2", 2));
    std::thread recording([&] { EXPECT_TRUE(rec.record(30)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    auto installed = box.rackterm({"install", v2}, {server.envEntry()}, 60);
    recording.join();
    ASSERT_EQ(installed.exitCode, 0) << installed.err;
    EXPECT_NE(installed.out.find("installed pk 1.1.0 (was 1.0.0)"), std::string::npos) << installed.out;
    EXPECT_NE(installed.out.find("session pkup: ok upgraded pk to 1.1.0: amp swapped, 2 parameters (+1 new, -1 removed)"),
              std::string::npos) << installed.out;
    EXPECT_EQ(ctl("list packages"), "ok pk 1.1.0 (nodes amp)\n");
    EXPECT_EQ(ctl("get amp.gain_db"), "ok amp.gain_db = -3.0 dB\n") << "the value carried over by id";
    EXPECT_NE(test::readText(box.dir + "/err").find("upgraded pk to 1.1.0"), std::string::npos) << "the swap report is in the log";

    // The capture: a 441 Hz sine whose level drops 6 dB at the swap, with no step larger than
    // twice the clean sine's largest sample-to-sample step and no silent period.
    const auto& x = rec.channel(0);
    float clean = 0, worst = 0, before = 0, after = 0;
    for (size_t i = 1; i < 4800 && i < x.size(); ++i) clean = std::max(clean, std::fabs(x[i] - x[i - 1]));
    for (size_t i = 1; i < x.size(); ++i) worst = std::max(worst, std::fabs(x[i] - x[i - 1]));
    for (size_t i = 0; i < 4800; ++i) before = std::max(before, std::fabs(x[i]));
    for (size_t i = x.size() - 4800; i < x.size(); ++i) after = std::max(after, std::fabs(x[i]));
    size_t silent = 0;
    for (size_t p = 0; p + 256 <= x.size(); p += 256) {
        float peak = 0;
        for (size_t i = p; i < p + 256; ++i) peak = std::max(peak, std::fabs(x[i]));
        silent += peak < 1e-4f;
    }
    std::printf("upgrade under play: largest step %.5f, clean sine's %.5f; peak %.4f before, %.4f after; %zu silent periods\n",
                static_cast<double>(worst), static_cast<double>(clean), static_cast<double>(before),
                static_cast<double>(after), silent);
    ASSERT_GT(clean, 0.001f) << "the capture carries the sine";
    const long xrunsDuring = xruns() - xrunsBefore;
    if (xrunsDuring == 0) {  // an xrun on this shared machine makes a step of its own: not the swap's
        EXPECT_LE(worst, 2.0f * clean) << "no click at the swap";
        EXPECT_EQ(silent, 0u) << "no gap";
    } else {
        std::printf("%ld xruns while recording: the step and gap checks do not apply to this run\n", xrunsDuring);
    }
    EXPECT_NEAR(20 * std::log10(after / before), -6.02, 0.3) << "the new version plays (its fixed -6 dB stage)";

    // Uninstall while in use: refused, naming the session; --force unloads the node first.
    auto r = box.rackterm({"uninstall", "pk"}, {server.envEntry()});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("package pk is in use by session pkup (nodes amp)"), std::string::npos) << r.err;
    r = box.rackterm({"package", "list"}, {server.envEntry()});
    EXPECT_NE(r.out.find("in use by: pkup (nodes amp)"), std::string::npos) << r.out;
    r = box.rackterm({"uninstall", "--force", "pk"}, {server.envEntry()});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("session pkup: ok unloaded pk: amp (bypassed)"), std::string::npos) << r.out;
    EXPECT_EQ(ctl("list nodes"), "ok tone=oscillator(active) amp=swapper(unloaded, bypassed)\n");
    EXPECT_NE(ctl("bypass amp off").find("is unloaded (its package was uninstalled)"), std::string::npos);
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(box.dir + "/err");
}

TEST(Package, NewScaffoldBuildsPacksInstallsAndHotReloads) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    Sandbox box("pkg-new");
    const std::string proj = box.dir + "/mydrive";
    auto r = box.rackterm({"package", "new", "mydrive", proj});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.out.find("watch = { source = \"" + proj + "\""), std::string::npos) << "it prints a watched-node session line";
    // The two commands the issue names, with no other flag.
    auto built = test::run({"cmake", "-S", proj, "-B", proj + "/build"}, {}, 120);
    ASSERT_EQ(built.exitCode, 0) << built.out << built.err;
    built = test::run({"cmake", "--build", proj + "/build"}, {}, 300);
    ASSERT_EQ(built.exitCode, 0) << built.out << built.err;

    // The folder is a watched node: edit the source while it plays and the new build is swapped in.
    auto env = box.env();
    env.push_back(server.envEntry());
    test::Child rackterm(test::spawn({test::binary(), "--headless", proj + "/try.toml"}, env, box.dir + "/out", box.dir + "/err"));
    auto ctl = [&](const std::string& cmd) {
        auto out = box.rackterm({"ctl", "--session", "mydrive-try", cmd}, {server.envEntry()}, 30);
        return out.out + out.err;
    };
    double until = app::nowSeconds() + 20;
    while (ctl("list params drive").find("ok drive_db=6") == std::string::npos && app::nowSeconds() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(ctl("list params drive"), "ok drive_db=6.0 dB output_db=-3.0 dB\n") << test::readText(box.dir + "/err");
    std::string source = test::readText(proj + "/drive.cpp");
    // A third parameter, last in the table (the processor reads the first two).
    const size_t count = source.find("std::array<rackterm_param_info, 2>"), close = source.find("    }};\n");
    ASSERT_NE(count, std::string::npos);
    ASSERT_NE(close, std::string::npos);
    source.insert(close, "        {\"tone\", \"Tone\", \"\", 0.0f, 1.0f, 0.5f, 0, nullptr},\n");
    source.replace(count, std::string("std::array<rackterm_param_info, 2>").size(), "std::array<rackterm_param_info, 3>");
    test::writeText(proj + "/drive.cpp", source);
    until = app::nowSeconds() + 120;
    while (ctl("list params drive").find("tone=") == std::string::npos && app::nowSeconds() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(ctl("list params drive"), "ok drive_db=6.0 dB output_db=-3.0 dB tone=0.500\n") << test::readText(box.dir + "/err");
    EXPECT_NE(test::readText(box.dir + "/err").find("+1 new"), std::string::npos) << "the swap report";
    EXPECT_EQ(rackterm.stop(SIGTERM), 0);

    // Pack it and install it; a session names it mydrive/drive.
    const std::string archive = box.dir + "/mydrive-0.1.0.tar.gz";
    r = box.rackterm({"package", "pack", proj, "-o", archive});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    r = box.rackterm({"install", archive});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const std::string session = box.dir + "/use.toml";
    test::writeText(session, "[session]\nname = \"use\"\n[[node]]\nid = \"d\"\nprocessor = \"mydrive/drive\"\nparams = { drive_db = 12 }\n");
    r = box.rackterm({"check", session});
    EXPECT_EQ(r.exitCode, 0) << r.err;
}
