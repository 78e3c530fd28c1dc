// The session file: the TOML schema of SPEC section 2, loaded with toml++ and
// written back atomically by editing the text it was loaded from (comments
// and layout kept). Knows nothing of processors: parameter ids are
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
    /// `isolate = true | false`: run the processor in a rackterm-sandbox
    /// child (a crash costs a block, not the session); unset: [engine] isolate decides.
    std::optional<bool> isolate;
    SourceLocation where;           ///< the [[node]] header
    SourceLocation processorWhere;  ///< the processor or path value
    SourceLocation fileWhere;       ///< the file value
};

/// [engine]. sample_rate and block apply to offline render only; live, JACK decides.
struct EngineSpec {
    std::optional<double> sampleRate;   ///< Hz, 8000..384000
    std::optional<uint32_t> block;      ///< frames, 1..8192
    std::vector<std::string> inputs;    ///< JACK ports connected to in_1, in_2, ... ("" = leave that port unconnected)
    std::vector<std::string> outputs;   ///< JACK ports out_1, out_2, ... connect to ("" = unconnected)
    std::optional<uint32_t> inputPorts;   ///< `input_ports`: capture ports of the JACK client, 1..32
    std::optional<uint32_t> outputPorts;  ///< `output_ports`: playback ports, 1..32
    std::optional<double> crossfadeMs;  ///< hot-swap crossfade, ms (0.1..1000; default 10)
    /// `isolate`: which nodes without their own `isolate` run in a
    /// rackterm-sandbox child: "none", "watched" (nodes with a watch: the
    /// code being written; the default) or "all-but-builtins" (every .so node).
    std::optional<std::string> isolate;

    /// Ports of the reserved `input` node: input_ports, else 2 or the length
    /// of `inputs` when it lists more.
    uint32_t inputCount() const;
    /// Ports of the reserved `output` node, likewise.
    uint32_t outputCount() const;
};

/// One end of a connection, parsed: a node id ("input" and "output" are the
/// reserved endpoints) and a 0-based port, -1 for every port of the node.
struct Endpoint {
    std::string node;
    int32_t port = -1;
};

/// Parse a connection end as written: "NODE" or "NODE:PORT", where PORT is
/// out_K for a source (`from`, output ports) and in_K for a destination
/// (`to`), K from 1 to 32. The reserved nodes take their JACK port names too:
/// `input:in_K` (the client's capture port in_K) and `output:out_K`.
/// Errors say what is wrong and what is expected, without a location.
Result<Endpoint> parseEndpoint(std::string_view text, bool source);

/// One [[connection]]: audio from `from` to `to`.
struct ConnectionSpec {
    std::string from;         ///< "NODE" or "NODE:out_K" as written
    std::string to;           ///< "NODE" or "NODE:in_K"
    double gainDb = 0;        ///< level of the connection, dB (-120..24; a send level)
    bool feedback = false;    ///< carries the previous block; may close a loop
    SourceLocation where;     ///< the [[connection]] header (or the command that made it)
    SourceLocation fromWhere, toWhere;
};

/// "NODE" (the node of an endpoint as written, without its port).
std::string endpointNode(std::string_view text);

struct Session {
    std::string name = "rackterm";  ///< JACK client and socket name: [A-Za-z0-9_-]+
    EngineSpec engine;
    std::vector<NodeSpec> nodes;    ///< in file order (the chain's order when there are no connections)
    /// The graph. Empty: the nodes form a chain, input -> nodes in file
    /// order -> output, as in sessions before connections existed.
    std::vector<ConnectionSpec> connections;
    std::string path;               ///< the file it was loaded from ("" when new)
    /// The exact text this session was parsed from (set by parseSession and
    /// loadSession; "" for a session built in memory). saveSession edits this
    /// text rather than writing a new file, so it must be the text that is on
    /// disk: after a save, replace it with the text saveSession returns.
    std::string sourceText;

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

/// The session as new TOML text, in schema order, without comments (what
/// saveSession writes for a session with no sourceText).
std::string formatSession(const Session& session);

/// The text saveSession writes, and how it was made.
struct SessionText {
    std::string text;
    /// true: `text` is the session's sourceText with only what changed edited;
    /// false: `text` is formatSession(session).
    bool editedInPlace = false;
    /// Why the file is written anew when it had a sourceText, e.g. "the nodes
    /// are in a new order"; "" when edited in place or when there was no sourceText.
    std::string rewriteReason;
};

/// The text that describes `session`, keeping the user's file. With an empty
/// sourceText this is formatSession(session). Otherwise sourceText is parsed
/// again and edited as little as possible: every comment, blank line, key
/// order, quoting and number spelling of what did not change stays
/// byte-identical.
///  - A changed parameter value or bypass is replaced where it stands (a number
///    in the shortest text that reads back exactly, never "-0"); a renamed
///    session has its name value replaced.
///  - A new parameter goes into the node's inline `params = { ... }` after its
///    last entry, as a line after the last key of a `[node.params]` table, or
///    as a new `params = { KEY = VALUE }` line after the node's last key; a
///    missing `bypass = true` is added the same way. A dropped parameter loses
///    its `KEY = VALUE` (and one comma) or its line.
///  - Nodes are matched by id; a node whose processor, path, file or watch
///    changed counts as removed and added. A removed node's table goes with the
///    comment lines directly above its [[node]] header, up to the comment lines
///    directly above the next table header (or to the end of the file, with the
///    blank lines before it). An added node is written as formatSession writes
///    one, followed by a blank line, before the comment lines above the next
///    kept node's header, or after one blank line at the end of the file.
///  - New lines end in "\r\n" when the file's first line does.
/// The result is parsed back and must give the same session (params compared
/// as a set); when it does not, or when the kept nodes are in a new order,
/// [engine] changed, the session name has no `name` key to edit, or an edit
/// has no place to go (nodes written as inline tables, parameters written as
/// dotted keys `params.x = 1`), the result is formatSession(session) with
/// editedInPlace false and rewriteReason saying why. Never fails; parses
/// sourceText twice (the old text and the edited one).
SessionText sessionText(const Session& session);

/// Write sessionText(session).text to `path` atomically: a temporary file in
/// the same folder, fsync, the old file kept as PATH~, rename onto PATH, fsync
/// of the folder. Whatever happens (even kill -9), PATH holds either the old
/// or the new session, never a partial one. Returns the text written: a caller
/// that keeps the session to save it again must store it as
/// session.sourceText, so that the next save edits what is now on disk.
/// Errors name the path and the system's reason.
Result<std::string> saveSession(const Session& session, const std::string& path);

}  // namespace rackterm::config
