// The command language: one parser and one table for the console, scripts,
// the control socket and headless standard input. A line is a command name
// and arguments separated by spaces; "double quotes" keep spaces in an
// argument; '#' outside quotes starts a comment.
//
// The table (commandTable()) is the one place a command is described: name,
// usage, help, argument counts, handler, completer and flags. Tab completion,
// `help`, the console's `?` overlay, `rackterm completion bash` and the man
// page check all read it. [control].
#pragma once

#include <rackterm/app/Runtime.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::app {

struct Reply;

/// Where a command line comes from; the table's flags say which may run it.
enum class Source {
    Console,  ///< typed on the console's command line
    Socket,   ///< the control socket, headless standard input, `rackterm run` scripts
    Render,   ///< an offline render script (`rackterm render --script`)
};

/// What commands act on.
struct CommandContext {
    Runtime& runtime;
    Source source = Source::Socket;
    /// The engine's state as the backend sees it (JACK's buffer size and DSP
    /// load live); unset: Runtime::status().
    std::function<EngineStatus()> status = {};
    /// Every port JACK knows, "client:port"; unset: no JACK in this mode.
    std::function<std::vector<std::string>()> ports = {};
    /// `reload NODE` (by id) when a hot-reload pipeline runs (build, then swap); unset: swap from the module file.
    std::function<Reply(const std::string& id)> reload = {};
    /// `build status` when a hot-reload pipeline runs.
    std::function<std::string()> buildStatus = {};
    /// `recover` / `discard` of a recovery file offered at open (a live session).
    std::function<Reply()> recover = {};
    std::function<Reply()> discard = {};
};

/// The answer to one command: one line of text. `quit` asks the caller to stop.
struct Reply {
    bool ok = true;
    std::string text;
    bool quit = false;
    /// Set while the command still runs (a fade-out, a crossfade, `wait
    /// applied`): the control loop calls it each turn until it returns the
    /// final reply. A caller runs the next line of the same client only then.
    std::function<std::optional<Reply>()> pending = {};
    bool waiting() const noexcept { return static_cast<bool>(pending); }
    /// "ok TEXT" or "error: TEXT", the form scripts and sockets print:
    /// always one line (control bytes in TEXT are escaped, e.g. \x00, \n).
    std::string line() const;
};

/// Candidates for the word being typed (see complete()).
struct Completions {
    std::vector<std::string> words;
    bool files = false;  ///< complete file names instead
};

/// Command flags (CommandInfo::flags).
enum CommandFlag : unsigned {
    kEdits = 1u << 0,     ///< changes the session: an undo step
    kLiveOnly = 1u << 1,  ///< needs a live session (JACK, hot reload)
    kOffline = 1u << 2,   ///< works in an offline render script
    kSocket = 1u << 3,    ///< allowed from the socket, standard input and `run` scripts (else console only)
    kAlias = 1u << 4,     ///< a vim habit standing for another command
};

using Args = std::vector<std::string>;

/// One row of the command table.
struct CommandInfo {
    const char* name;
    const char* usage;
    const char* help;
    size_t minArgs, maxArgs;  ///< not counting the name
    Reply (*handler)(CommandContext&, const Args&);
    /// Candidates for argument `words.size()` (1 = the first) given the words before it.
    void (*completer)(const Runtime&, const Args& words, const std::string& word, Completions& out);
    unsigned flags;
};

/// Every command, in the order help lists them (aliases last).
const std::vector<CommandInfo>& commandTable();

/// Split a line into words; "quoted words" may hold spaces. A '#' outside
/// quotes starts a comment.
std::vector<std::string> splitWords(std::string_view line);

/// Run one command line. Unknown commands get "did you mean"; wrong
/// argument counts get the usage; a command the source may not run says
/// where it works. The reply may be pending (Reply::waiting()).
Reply execute(CommandContext& ctx, std::string_view line);

/// Tab completion: candidates for the word being typed. `before` is the line
/// up to the start of that word, `word` the part typed so far. The first
/// word completes to command names (aliases included); later ones to what
/// the command's row completes (node ids, "NODE." then "NODE.PARAM", choice
/// names, on/off, sub-words, file names).
Completions complete(const Runtime& rt, const std::string& before, const std::string& word);

/// A bash completion script for the `rackterm` command line (subcommands,
/// options, and the command names `ctl` takes), generated from the tables.
std::string bashCompletion();

/// Hot-swap `node` from its module file as it is on disk now (no build):
/// "NODE: reloaded, N parameters (+a new, -r removed)" or why not; pending
/// while an earlier operation runs.
Reply reloadFromModule(Runtime& runtime, size_t node);

/// A Reply for a Later: final when it is ready, else pending on it.
Reply replyLater(const Later<std::string>& later);

/// Offline: tick the runtime until `reply` is final (nothing waits for the
/// audio thread offline, so this takes one turn). Live callers poll instead.
Reply finishOffline(Runtime& runtime, Reply reply);

}  // namespace rackterm::app
