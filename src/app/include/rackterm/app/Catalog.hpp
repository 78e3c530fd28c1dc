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

/// The names a session may give as processor = "NAME": the host's "player",
/// every built-in module found and every installed package component ("ID/COMPONENT").
std::vector<std::string> processorNames();

/// The module file for built-in `name`, or "" when none is found.
std::string builtinModulePath(const std::string& name);

/// Every processor a node can name, one entry each, filtered: built-ins
/// ("gain (built-in)"), package components ("mydrive/drive (package mydrive
/// 1.0.0)"; "package" alone keeps those), LV2 plugins ("lv2:URI  NAME  (2 in, 2 out, 6
/// controls)") and LADSPA plugins ("ladspa:LABEL  NAME  (FILE, 1 in, 1 out,
/// 1 control)"). `filter` keeps the entries whose text contains it, in any
/// case; "" keeps all. "lv2" and "ladspa" alone keep that kind.
std::vector<std::string> processorListing(const std::string& filter);

/// The plugin names (lv2:URI, ladspa:LABEL) that start with `prefix`, for
/// Tab completion; for a prefix without a colon ("l", "lad"), the kinds
/// "lv2:" and "ladspa:" it starts instead; empty for other words.
std::vector<std::string> pluginNamesStartingWith(const std::string& prefix);

/// `path` made absolute against the folder of `sessionPath` (unchanged when absolute).
std::string resolveAgainst(const std::string& sessionPath, const std::string& path);

}  // namespace rackterm::app
