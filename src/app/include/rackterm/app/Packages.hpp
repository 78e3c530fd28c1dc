// Processor packages (docs/packages.md): a folder or .tar.gz with a
// rackterm-package.toml manifest, validated in full before anything is
// copied, staged and renamed into $XDG_DATA_HOME/rackterm/packages/ID/ with a
// receipt of every file's SHA-256, so a kill -9 at any moment leaves the
// previous state or the new one. Sessions name a component as
// processor = "ID/COMPONENT". Installing a newer version tells every running
// session that uses the package (over its control socket) to hot-swap those
// nodes. Every function is [control]: it copies files, hashes, dlopen()s.
#pragma once

#include <rackterm/common/Result.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::app {

/// The receipt's file name inside an installed package folder.
inline constexpr const char* kReceiptName = "rackterm-receipt.toml";

/// Where packages are installed: $XDG_DATA_HOME/rackterm/packages, else
/// ~/.local/share/rackterm/packages (not created).
std::string packagesRoot();

/// One installed package as its manifest and receipt describe it.
struct InstalledPackage {
    std::string id;
    std::string version;      ///< the manifest's, as written
    std::string description;
    std::string dir;          ///< packagesRoot()/ID
    std::string installedAt;  ///< the receipt's UTC time, "2026-12-02T08:00:00Z"
    std::string source;       ///< the folder or archive it was installed from
    /// Component ids and their module files (absolute).
    std::vector<std::pair<std::string, std::string>> components;
};

/// Every installed package, sorted by id. A folder without a readable
/// manifest and receipt is skipped (`package verify` names it).
std::vector<InstalledPackage> installedPackages();

/// True when `processor` has the form "ID/COMPONENT" of a package
/// component (and is not an lv2: or ladspa: name).
bool isPackageReference(std::string_view processor);

/// The module file of package component `reference` ("ID/COMPONENT").
/// Errors, one line: no such package (did you mean, over installed ones;
/// `rackterm package list`), no such component in it (its components).
Result<std::string> resolvePackageComponent(const std::string& reference);

/// The package id a node's `processor` names ("" when not a package reference).
std::string packageIdOf(std::string_view processor);

/// "ID/COMPONENT" for every component of every installed package.
std::vector<std::string> packageComponentNames();

/// The installed version of package `id`, "" when it is not installed.
std::string installedVersion(const std::string& id);

/// What a failed validation or install says: one line per problem, each
/// naming the file (and line:column for the manifest) and what to do.
struct PackageCheck {
    std::vector<std::string> problems;
    /// SHA-256 of each component file as it was checked (path as in the
    /// manifest): install copies only those very bytes.
    std::vector<std::pair<std::string, std::string>> checkedHashes;
    bool ok() const noexcept { return problems.empty(); }
};

/// Validate the package folder `dir` without changing anything: the
/// manifest parses; api_version is this ABI's; every component path is
/// relative, has no "..", exists and resolves (after symlinks) inside the
/// folder to a regular file; component ids are unique; every component is
/// an ELF shared object of this machine's class and architecture, passes
/// the loader's ABI check and parameter-table validation, and its
/// descriptor id equals the component id.
PackageCheck checkPackage(const std::string& dir);

/// Options of installPackage().
struct InstallOptions {
    bool downgrade = false;      ///< allow installing an older version than the one installed
    bool notifySessions = true;  ///< tell running sessions that use the package to swap to it
    double sessionTimeoutSeconds = 60;
};

/// `rackterm install SOURCE`: SOURCE is a package folder or a .tar.gz made
/// by `package pack`. Validates (checkPackage), stages under
/// packagesRoot()/.staging/, writes the receipt, fsyncs, renames into
/// packagesRoot()/ID atomically (an installed version is exchanged in one
/// step), then, when it replaced an installed version, sends `upgrade ID`
/// to every running session that uses it. Leftover staging folders are
/// removed first. Installs are serialised by a lock file. Each line of
/// progress and each session's reply goes to `say`. Error (one line per
/// problem, joined with newlines): validation, an older version without
/// `downgrade`, file system errors.
Result<std::string> installPackage(const std::string& source, const InstallOptions& options,
                                   const std::function<void(const std::string&)>& say);

/// Re-hash package `id`'s files against its receipt. Returns one line per
/// changed, missing or unexpected file (empty: intact); error when the
/// package or its receipt cannot be read.
Result<std::vector<std::string>> verifyPackage(const std::string& id);

/// `rackterm uninstall ID`: refused while a running session uses the
/// package (the sessions and nodes are named) unless `force`, which first
/// has those sessions unload the nodes (`unload ID`: faded to bypass,
/// deactivated). The folder is renamed away in one step, then removed.
Result<std::string> uninstallPackage(const std::string& id, bool force,
                                     const std::function<void(const std::string&)>& say);

/// Running sessions using package `id`: "SESSION (nodes a, b)" each. Error
/// when a running session does not answer `list packages` (busy, hung).
Result<std::vector<std::string>> sessionsUsing(const std::string& id);

/// `rackterm package new NAME [DIR]`: scaffold a processor project in DIR
/// (default ./NAME; must not exist or be empty): manifest, CMakeLists.txt
/// that finds this rackterm's SDK header, NAME.cpp (a drive with two
/// parameters), README.md and try.toml (a session playing it, watched).
/// Returns what to do next.
Result<std::string> scaffoldPackage(const std::string& name, const std::string& dir);

/// `rackterm package pack DIR [-o FILE]`: check the built package (as
/// install would), then write ID-VERSION.tar.gz (or `output`) with the
/// manifest, the components and README.md under one ID-VERSION/ folder.
Result<std::string> packPackage(const std::string& dir, const std::string& output);

/// The command-line entries; exit codes as Modes.hpp (0 ok, 1 user error).
int runInstall(const std::string& source, bool downgrade);
int runUninstall(const std::string& id, bool force);
int runPackageList();
int runPackageVerify(const std::string& id);
int runPackageNew(const std::string& name, const std::string& dir);
int runPackagePack(const std::string& dir, const std::string& output);

}  // namespace rackterm::app
