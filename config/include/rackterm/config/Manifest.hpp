// A processor package's manifest, rackterm-package.toml (docs/packages.md):
// schema_version, id, version (semantic), api_version (the processor ABI),
// description and [[component]] entries. Parsing only: whether the files
// exist and load is the installer's business (app/Packages.hpp). [control].
#pragma once

#include <rackterm/config/Session.hpp>
#include <rackterm/common/Result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::config {

/// The manifest's file name at a package's root.
inline constexpr const char* kManifestName = "rackterm-package.toml";
/// The schema versions this rackterm reads.
inline constexpr int64_t kManifestSchemaVersion = 1;

/// A semantic version (semver.org 2.0.0): MAJOR.MINOR.PATCH, an optional
/// -PRERELEASE (dot-separated identifiers) and +BUILD (ignored in order).
struct Version {
    uint64_t major = 0, minor = 0, patch = 0;
    std::vector<std::string> prerelease;
    std::string build;
    std::string text;  ///< as written
};

/// Parse `text` as a semantic version; error (one line) says what is wrong,
/// e.g. "1.2" -> "needs MAJOR.MINOR.PATCH, e.g. 1.2.0".
Result<Version> parseVersion(std::string_view text);

/// Semantic version precedence (semver.org section 11): <0, 0, >0. Build metadata is ignored.
int compareVersions(const Version& a, const Version& b);

/// One `[[component]]`: a processor module inside the package.
struct Component {
    std::string id;    ///< [a-z0-9_]+, also the processor's descriptor id
    std::string path;  ///< relative to the package root, e.g. "build/libdrive.so"
    std::string kind;  ///< "dsp" (the only kind so far)
    SourceLocation where;      ///< the [[component]] table
    SourceLocation pathWhere;  ///< the path value
};

/// A parsed rackterm-package.toml.
struct Manifest {
    int64_t schemaVersion = 0;
    std::string id;  ///< [a-z0-9_-]+, stable across versions
    Version version;
    int64_t apiVersion = 0;  ///< the processor ABI the components are built for (2)
    std::string description;
    std::vector<Component> components;
    std::string file;  ///< the manifest it came from
    SourceLocation idWhere, versionWhere, apiWhere;

    /// The component with id `id`, or nullptr.
    const Component* find(std::string_view id) const;
};

/// True when `id` is a valid package id: 1 to 64 of [a-z0-9_-], starting with a letter or digit.
bool validPackageId(std::string_view id);

/// Parse manifest `text` read from `sourceName`. Errors are one line with
/// "file:line:column: what; what to do": TOML syntax, an unknown key (did
/// you mean), a missing or mistyped field, an unsupported schema_version
/// (the version found and the versions supported), a malformed id or
/// version, a component without id/path, an unknown kind (did you mean),
/// duplicate component ids (both places).
Result<Manifest> parseManifest(std::string_view text, const std::string& sourceName);

/// Read and parse the manifest file at `path` (at most 1 MiB).
Result<Manifest> loadManifest(const std::string& path);

}  // namespace rackterm::config
