// The console: an ncurses screen over a live session (status line, rack with
// meters, parameter pane, log pane) with a readline `:` command line using
// readline's callback interface inside the ncurses loop. Keyboard only;
// works at 80x24, on resize, and in a non-UTF-8 terminal (ASCII meters).
// Runs on the main (control) thread.
#pragma once

#include <rackterm/app/Live.hpp>

#include <string>

namespace rackterm::tui {

/// Open `sessionPath` live on JACK and run the console until quit. Returns
/// the exit status: 0, 1 (session error), 3 (no JACK server; one line on
/// stderr naming the command that starts one, before the screen opens; or,
/// with options.exitOnServerLoss, when the server goes away later).
int runConsole(const std::string& sessionPath, app::LiveOptions options = {});

}  // namespace rackterm::tui
