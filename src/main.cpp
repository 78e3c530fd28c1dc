// rackterm: argument parsing (CLI11) and dispatch. Everything else lives in
// the libraries so the tests link exactly the code users run.
#include <rackterm/app/Catalog.hpp>
#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Modes.hpp>
#include <rackterm/app/Packages.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/tui/Console.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    using namespace rackterm::app;
    CLI::App cli{"rackterm: a terminal audio console for JACK (sessions, processors, meters, offline render)"};
    cli.set_version_flag("--version", "rackterm 0.1.0");
    cli.require_subcommand(0, 1);
    std::string session;
    bool headless = false;
    cli.add_flag("--headless", headless, "run the session with no console; log to stderr");
    cli.add_option("session", session, "session file (TOML)");
    LiveOptions live;
    cli.add_flag("--exit-on-server-loss", live.exitOnServerLoss,
                 "exit (status 3) when the JACK server goes away, instead of waiting for it to come back");

    auto* check = cli.add_subcommand("check", "validate a session and load every processor");
    std::string checkSession;
    bool checkBuild = false;
    check->add_option("session", checkSession, "session file")->required();
    check->add_flag("--build", checkBuild, "run the build command of watched nodes whose module is missing");

    auto* render = cli.add_subcommand("render", "offline: IN -> rack -> OUT through libsndfile");
    RenderOptions ro;
    render->add_option("session", ro.session, "session file")->required();
    render->add_option("-i,--input", ro.input, "input sound file")->required();
    render->add_option("-o,--output", ro.output, "output sound file; the extension picks the format")->required();
    render->add_option("--block", ro.block, "frames per block (default: the session's, else 256)")
        ->check(CLI::Range(1, 8192));
    render->add_option("--script", ro.script, "command script; `at TIME` lines apply at their exact frame");

    auto* run = cli.add_subcommand("run", "run a command script on a session, headless (live on JACK)");
    std::string script, runSession;
    run->add_option("script", script, "command script")->required();
    run->add_option("session", runSession, "session file")->required();
    run->add_flag("--exit-on-server-loss", live.exitOnServerLoss,
                  "exit (status 3) when the JACK server goes away, instead of waiting for it to come back");

    auto* ctl = cli.add_subcommand("ctl", "send one command to a running rackterm and print its reply");
    std::string ctlSession, ctlCommand;
    double ctlTimeout = 10.0;
    ctl->add_option("--session", ctlSession, "the session's name (default: the only one running)");
    ctl->add_option("--timeout", ctlTimeout, "seconds to wait for the reply (default 10); exit 4 when none came")
        ->check([](const std::string& text) {  // CLI::Range would let "nan" through
            const auto v = rackterm::parseDecimal(text);
            return v && *v > 0 && *v <= 86400 ? std::string() : "--timeout takes seconds above 0, e.g. --timeout 5";
        });
    ctl->add_option("command", ctlCommand, "the command, e.g. 'set gain.gain_db -6'")->required();

    auto* processors = cli.add_subcommand("processors", "list the built-in processors, installed package components and LV2 and LADSPA plugins");
    std::string processorFilter;
    processors->add_option("word", processorFilter, "keep the lines that contain WORD (any case); lv2 or ladspa: that kind");

    auto* install = cli.add_subcommand("install", "validate a processor package (folder or .tar.gz) and install it; running sessions swap to a new version");
    std::string installSource;
    bool downgrade = false;
    install->add_option("source", installSource, "package folder (with rackterm-package.toml) or .tar.gz")->required();
    install->add_flag("--downgrade", downgrade, "allow installing an older version than the one installed");

    auto* uninstall = cli.add_subcommand("uninstall", "remove an installed package (refused while a running session uses it)");
    std::string uninstallId;
    bool force = false;
    uninstall->add_option("id", uninstallId, "package id")->required();
    uninstall->add_flag("--force", force, "first fade the sessions' nodes of the package to bypass and unload them");

    auto* package = cli.add_subcommand("package", "processor packages: new, pack, list, verify");
    package->require_subcommand(1);
    auto* packageNew = package->add_subcommand("new", "scaffold a processor project that builds, hot-reloads and packs");
    std::string newName, newDir;
    packageNew->add_option("name", newName, "package id, e.g. mydrive")->required();
    packageNew->add_option("dir", newDir, "folder to create (default ./NAME)");
    auto* packagePack = package->add_subcommand("pack", "check a built package folder and write ID-VERSION.tar.gz");
    std::string packDir, packOut;
    packagePack->add_option("dir", packDir, "package folder")->required();
    packagePack->add_option("-o,--output", packOut, "archive to write (default ID-VERSION.tar.gz here)");
    auto* packageList = package->add_subcommand("list", "installed packages: version, components, install time, sessions using them");
    auto* packageVerify = package->add_subcommand("verify", "re-hash installed files against their receipts; exit 1 on any difference");
    std::string verifyId;
    packageVerify->add_option("id", verifyId, "package id (default: every package)");

    auto* completion = cli.add_subcommand("completion", "print a shell completion script (generated from the command table)");
    std::string shell;
    completion->add_option("shell", shell, "the shell: bash")->required()->check(CLI::IsMember({"bash"}));

    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = cli.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    if (*completion) {
        std::fputs(bashCompletion().c_str(), stdout);
        return kExitOk;
    }
    if (*processors) {
        const auto lines = rackterm::app::processorListing(processorFilter);
        for (const auto& line : lines) std::printf("%s\n", line.c_str());
        if (lines.empty()) {
            std::fprintf(stderr, "rackterm: no processor matches %s\n", rackterm::quote(processorFilter).c_str());
            return kExitUsage;
        }
        return kExitOk;
    }
    if (*install) return runInstall(installSource, downgrade);
    if (*uninstall) return runUninstall(uninstallId, force);
    if (*packageNew) return runPackageNew(newName, newDir);
    if (*packagePack) return runPackagePack(packDir, packOut);
    if (*packageList) return runPackageList();
    if (*packageVerify) return runPackageVerify(verifyId);
    if (*check) return runCheck(checkSession, checkBuild);
    if (*render) return runRender(ro);
    if (*run) return runScript(script, runSession, live);
    if (*ctl) return runCtl(ctlSession, ctlCommand, ctlTimeout);
    if (session.empty()) {
        std::fprintf(stderr, "rackterm: give a session file: rackterm SESSION.toml (see rackterm --help)\n");
        return kExitUsage;
    }
    if (headless) return runHeadless(session, live);
    return rackterm::tui::runConsole(session, live);
}
