// Shared by Session.cpp (parse, formatSession), SessionText.cpp (editing
// the user's text in place) and Manifest.cpp: how values are spelled when
// written, the parse that also hands back the toml++ tree with its source
// regions, and the reader that places errors.
#pragma once

#include <rackterm/config/Session.hpp>

#include <toml++/toml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::config::detail {

/// Reading a toml++ tree of `file` (a session, a package manifest): places
/// as file:line:column and errors that start with them.
struct TomlReader {
    std::string file;

    SourceLocation at(const toml::source_region& r) const {
        return {file, static_cast<uint32_t>(r.begin.line), static_cast<uint32_t>(r.begin.column)};
    }
    Error error(const toml::source_region& r, const std::string& what) const { return Error{at(r).str() + ": " + what}; }
};

/// Error for the first key of `t` not in `allowed` ("unknown key 'x' in
/// `where` (did you mean ...)"), or nullopt.
std::optional<Error> unknownKey(const TomlReader& rd, const toml::table& t, const std::vector<std::string>& allowed,
                                const std::string& where);

/// `s` as a TOML basic string, "..." with escapes.
void appendQuoted(std::string& out, std::string_view s);

/// A TOML key: bare when it is [A-Za-z0-9_-]+, else quoted (what a file may hold).
void appendKey(std::string& out, std::string_view key);

/// The shortest decimal text that reads back as exactly `v`, with ".0" when it
/// would look like an integer; -0 is written "0.0".
std::string formatNumber(double v);

/// One node as formatSession writes it: from "[[node]]\n" to "bypass = ...\n".
void appendNode(std::string& out, const NodeSpec& n);

/// A [[connection]] table as formatSession writes it (gain_db and feedback only when set).
void appendConnection(std::string& out, const ConnectionSpec& c);

/// parseSession, also filling `root` with the toml++ tree (empty on a syntax error).
Result<Session> parseSessionTree(std::string_view text, const std::string& sourceName, toml::table& root);

}  // namespace rackterm::config::detail
