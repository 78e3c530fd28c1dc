// Where processors come from: built-in names map to the module files built
// with rackterm; paths in a session are relative to the session's folder.
// [control].
#pragma once

#include <string>
#include <vector>

namespace rackterm::app {

/// Folders searched for built-in modules (libNAME.so), in order:
/// $RACKTERM_PROCESSOR_PATH (colon-separated), <exe>/processors (build tree),
/// <exe>/../<libdir>/rackterm/processors (installed).
std::vector<std::string> moduleFolders();

/// The names a session may give as processor = "NAME": the host's "player"
/// and every built-in module found.
std::vector<std::string> processorNames();

/// The module file for built-in `name`, or "" when none is found.
std::string builtinModulePath(const std::string& name);

/// `path` made absolute against the folder of `sessionPath` (unchanged when absolute).
std::string resolveAgainst(const std::string& sessionPath, const std::string& path);

}  // namespace rackterm::app
