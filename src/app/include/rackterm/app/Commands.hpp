// The command language: one parser and one table for the console, scripts
// and (later) the control socket. A line is a command name and arguments
// separated by spaces; "double quotes" keep spaces in an argument.
// [control].
#pragma once

#include <rackterm/app/Runtime.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::engine {
class JackBackend;
}

namespace rackterm::app {

struct Reply;

/// What commands act on.
struct CommandContext {
    Runtime& runtime;
    engine::JackBackend* jack = nullptr;  ///< live backend, or nullptr offline
    /// `reload NODE` when a hot-reload pipeline runs (build, then swap); unset: swap from the module file.
    std::function<Reply(size_t node)> reload = {};
    /// `build status` when a hot-reload pipeline runs.
    std::function<std::string()> buildStatus = {};
    /// Offline render: changes apply at the next block, so `wait applied` returns at once.
    bool offline = false;
    /// Called after add, remove or load changed the nodes (hot reload re-watches).
    std::function<void()> nodesChanged = {};
};

/// The answer to one command: one line of text. `quit` asks the caller to stop.
struct Reply {
    bool ok = true;
    std::string text;
    bool quit = false;
    /// "ok TEXT" or "error: TEXT", the form scripts and sockets print:
    /// always one line (control bytes in TEXT are escaped, e.g. \x00, \n).
    std::string line() const;
};

/// One row of the command table (for help and completion).
struct CommandInfo {
    const char* name;
    const char* usage;
    const char* help;
};

/// Every command, in the order help lists them.
const std::vector<CommandInfo>& commandTable();

/// Split a line into words; "quoted words" may hold spaces. A '#' outside
/// quotes starts a comment.
std::vector<std::string> splitWords(std::string_view line);

/// Hot-swap `node` from its module file as it is on disk now (no build):
/// "NODE: reloaded, N parameters (+a new, -r removed)" or why not.
Reply reloadFromModule(Runtime& runtime, size_t node);

/// Run one command line. Unknown commands get "did you mean"; wrong
/// argument counts get the usage.
Reply execute(CommandContext& ctx, std::string_view line);

}  // namespace rackterm::app
