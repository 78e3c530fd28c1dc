// Tab completion for the command line: what may follow the words already
// typed. A pure function of the runtime and the text, so tests call it
// directly; the console feeds it to readline. [control].
#pragma once

#include <rackterm/app/Runtime.hpp>

#include <string>
#include <vector>

namespace rackterm::tui {

/// Candidates for the word being typed. `before` is the line up to the start
/// of that word, `word` the part of it typed so far. Completes command names
/// (and :w :q :wq :q!), node ids, "NODE.PARAM" (a node id completes to
/// "NODE." first), choice names of enum parameters after `set NODE.PARAM`,
/// on/off, and the words of list/build/wait/record. An empty result with
/// `files` set asks for file-name completion (save, load, record start).
struct Completions {
    std::vector<std::string> words;
    bool files = false;
};
Completions complete(const app::Runtime& rt, const std::string& before, const std::string& word);

}  // namespace rackterm::tui
