// Shared by Session.cpp (parse, formatSession) and SessionText.cpp (editing
// the user's text in place): how values are spelled when written, and the
// parse that also hands back the toml++ tree with its source regions.
#pragma once

#include <rackterm/config/Session.hpp>

#include <toml++/toml.h>

#include <string>
#include <string_view>

namespace rackterm::config::detail {

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
