// Logging set-up (spdlog): a rotating file under $XDG_STATE_HOME/rackterm/
// (~/.local/state/rackterm/rackterm.log) plus stderr when headless, or a
// sink of the caller's (the console's log pane). [control].
#pragma once

#include <memory>
#include <string>

namespace spdlog::sinks {
class sink;
}

namespace rackterm::app {

/// Install the default logger. `toStderr` adds a stderr sink; `extra` another sink.
void initLogging(bool toStderr, std::shared_ptr<spdlog::sinks::sink> extra = nullptr);

/// $XDG_STATE_HOME/rackterm (created), or "" when it cannot be made.
std::string stateFolder();

}  // namespace rackterm::app
