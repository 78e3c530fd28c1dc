// Drawing the console's panes. [control]. Internal to the tui library.
#pragma once

#include <rackterm/app/Runtime.hpp>

#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace rackterm::tui {

/// What the screen shows besides the runtime.
struct View {
    size_t node = 0;       ///< selected node
    size_t param = 0;      ///< selected parameter of that node
    bool unicode = true;   ///< UTF-8 glyphs, else ASCII
    bool color = true;
    bool help = false;     ///< help overlay shown
    bool graph = false;    ///< the graph view replaces the rack and parameter panes
    size_t graphX = 0, graphY = 0;  ///< the graph view's scroll position, cells
    int logScroll = 0;     ///< log lines scrolled back from the newest
    std::string prompt;    ///< the bottom line's question, "" when none
    std::string message;   ///< the bottom line's last reply
    bool messageIsError = false;
    /// The key table as the help overlay lists it: (keys, what they do).
    std::vector<std::pair<std::string, std::string>> keyHelp;
};

/// Colour pairs.
enum Pair : short { kPairOk = 1, kPairWarn, kPairHot, kPairStatus, kPairError, kPairDim };

/// [control] Set up colour pairs (when colour is on).
void initColors(bool color);

/// [control] Draw every pane except the command line; `log` newest last.
/// `status` is the engine as the backend reports it (rate, block, DSP load, xruns, server lost).
void drawScreen(const app::Runtime& rt, const app::EngineStatus& status, const View& view,
                const std::deque<std::string>& log);

/// [control] Draw the bottom line: `prompt` + `text` with the cursor at `cursor`.
void drawCommandLine(const std::string& prompt, const std::string& text, size_t cursor);

/// [control] Draw the bottom line when no command is being typed.
void drawHintLine(const View& view);

}  // namespace rackterm::tui
