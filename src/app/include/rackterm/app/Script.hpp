// Command scripts: one command per line (the command language), `#`
// comments, and timed automation lines `at TIME COMMAND` with TIME in
// seconds ("1.5s", "1.5"), milliseconds ("250ms") or minutes:seconds
// ("1:30"). [control].
#pragma once

#include <rackterm/common/Result.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::app {

struct ScriptLine {
    uint32_t line = 0;                ///< 1-based line in the script
    std::optional<double> atSeconds;  ///< set for `at TIME ...` lines
    std::string command;              ///< the command text
};

struct Script {
    std::string path;
    std::vector<ScriptLine> lines;  ///< in file order; blank and comment lines left out
    /// "SCRIPT:LINE: message".
    std::string where(const ScriptLine& l, const std::string& message) const;
};

/// A time for `at`: "1.5s", "1.5", "250ms", "1:30". Error names the form expected.
Result<double> parseTime(std::string_view text);

/// Read a script. Errors: unreadable file, an `at` line with a bad time or no command.
Result<Script> loadScript(const std::string& path);
/// Parse script text; `path` is used in messages.
Result<Script> parseScript(std::string_view text, const std::string& path);

}  // namespace rackterm::app
