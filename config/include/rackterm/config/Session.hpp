// The session file: the TOML schema of SPEC section 2, loaded with toml++ and
// written back atomically. Knows nothing of processors: parameter ids are
// checked against processor tables by the app, which uses the source
// locations kept here for its messages.
//
// All functions are [control]; nothing here is real-time.
#pragma once

#include <rackterm/common/Result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::config {

/// Where something was written: file, 1-based line and column (0 = unknown).
struct SourceLocation {
    std::string file;
    uint32_t line = 0;
    uint32_t column = 0;
    /// "file:line:column" (or "file" when the line is unknown).
    std::string str() const;
};

/// One `params` entry of a node: a plain value as written.
struct ParamSetting {
    std::string id;
    double value = 0;
    SourceLocation where;
};

/// `watch = { source = DIR, build = "COMMAND" }` (used by hot reload).
struct WatchSpec {
    std::string source;
    std::string build;
};

/// One [[node]]. Exactly one of `processor` (built-in name or "PKG/COMPONENT")
/// and `path` (a .so, relative to the session file's folder) is set.
struct NodeSpec {
    std::string id;         ///< [a-z0-9_]+, unique
    std::string processor;  ///< "gain", "player", ...
    std::string path;       ///< "processors/build/libdrive.so"
    std::string file;       ///< player only: the sound file
    std::vector<ParamSetting> params;
    bool bypass = false;
    std::optional<WatchSpec> watch;
    SourceLocation where;           ///< the [[node]] header
    SourceLocation processorWhere;  ///< the processor or path value
    SourceLocation fileWhere;       ///< the file value
};

/// [engine]. sample_rate and block apply to offline render only; live, JACK decides.
struct EngineSpec {
    std::optional<double> sampleRate;   ///< Hz, 8000..384000
    std::optional<uint32_t> block;      ///< frames, 1..8192
    std::vector<std::string> inputs;    ///< JACK ports connected to in_1, in_2
    std::vector<std::string> outputs;   ///< JACK ports out_1, out_2 connect to
    std::optional<double> crossfadeMs;  ///< hot-swap crossfade, ms (0.1..1000; default 10)
};

struct Session {
    std::string name = "rackterm";  ///< JACK client and socket name: [A-Za-z0-9_-]+
    EngineSpec engine;
    std::vector<NodeSpec> nodes;    ///< in chain order
    std::string path;               ///< the file it was loaded from ("" when new)
    std::string sourceText;         ///< the text it was parsed from ("" when built in memory)

    /// Index of node `id`, or -1.
    int findNode(std::string_view id) const;
    std::vector<std::string> nodeIds() const;
};

/// Read and validate the session at `path`. Errors are one line:
/// "FILE:LINE:COL: what was wrong (did you mean 'x'?)"; the file is never changed.
Result<Session> loadSession(const std::string& path);

/// Parse session text; `sourceName` is used in messages.
Result<Session> parseSession(std::string_view text, const std::string& sourceName);

/// Check that `text` is valid UTF-8 without NUL bytes (toml++ 3.3.0 asserts
/// on such input). Returns "" or "LINE:COL: what is wrong".
std::string checkText(std::string_view text);

/// The session as TOML text, in schema order (what saveSession writes).
std::string formatSession(const Session& session);

/// Write `session` to `path` atomically: a temporary file in the same folder,
/// fsync, the old file kept as PATH~, rename onto PATH, fsync of the folder.
/// Whatever happens (even kill -9), PATH holds either the old or the new
/// session, never a partial one. Errors name the path and the system's reason.
/// Returns the text written.
Result<std::string> saveSession(const Session& session, const std::string& path);

}  // namespace rackterm::config
