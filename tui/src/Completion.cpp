#include <rackterm/tui/Completion.hpp>

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Values.hpp>

#include <algorithm>

namespace rackterm::tui {

namespace {

void addMatching(std::vector<std::string>& out, const std::string& candidate, const std::string& word) {
    if (candidate.rfind(word, 0) == 0 && std::find(out.begin(), out.end(), candidate) == out.end()) out.push_back(candidate);
}

/// "NODE." for nodes, or "NODE.PARAM" once a node and its dot are typed.
void nodeParams(const app::Runtime& rt, const std::string& word, std::vector<std::string>& out) {
    const size_t dot = word.find('.');
    for (size_t n = 0; n < rt.nodeCount(); ++n) {
        const std::string& id = rt.nodeId(n);
        if (dot == std::string::npos) {
            addMatching(out, id + ".", word);
            continue;
        }
        if (word.compare(0, dot, id) != 0 || dot != id.size()) continue;
        const auto& d = rt.descriptor(n);
        for (uint32_t p = 0; p < d.param_count; ++p) addMatching(out, id + "." + d.params[p].id, word);
    }
}

}  // namespace

Completions complete(const app::Runtime& rt, const std::string& before, const std::string& word) {
    Completions c;
    const auto words = app::splitWords(before);
    if (words.empty()) {
        for (const auto& cmd : app::commandTable()) addMatching(c.words, cmd.name, word);
        for (const char* alias : {"w", "q", "wq", "q!", "x"}) addMatching(c.words, alias, word);
        return c;
    }
    const std::string& cmd = words[0];
    const size_t arg = words.size();  // 1 = first argument
    auto nodes = [&] {
        for (size_t n = 0; n < rt.nodeCount(); ++n) addMatching(c.words, rt.nodeId(n), word);
    };
    if ((cmd == "set" || cmd == "get" || cmd == "nudge") && arg == 1) {
        nodeParams(rt, word, c.words);
    } else if (cmd == "set" && arg == 2) {
        auto where = rt.findParam(words[1]);
        if (where) {
            const auto& info = rt.descriptor(where.value().first).params[where.value().second];
            for (int i = 0;; ++i) {
                const std::string name = app::choiceName(info, i);
                if (name.empty()) break;
                addMatching(c.words, name, word);
            }
            if (info.flags & RACKTERM_PARAM_TOGGLE) {
                addMatching(c.words, "on", word);
                addMatching(c.words, "off", word);
            }
        }
    } else if ((cmd == "bypass" || cmd == "reload" || cmd == "remove") && arg == 1) {
        nodes();
    } else if (cmd == "bypass" && arg == 2) {
        addMatching(c.words, "on", word);
        addMatching(c.words, "off", word);
    } else if (cmd == "list" && arg == 1) {
        for (const char* w : {"nodes", "params", "processors", "ports"}) addMatching(c.words, w, word);
    } else if (cmd == "list" && arg == 2 && words[1] == "params") {
        nodes();
    } else if (cmd == "build" && arg == 1) {
        addMatching(c.words, "status", word);
    } else if (cmd == "wait" && arg == 1) {
        addMatching(c.words, "applied", word);
    } else if (cmd == "record" && arg == 1) {
        addMatching(c.words, "start", word);
        addMatching(c.words, "stop", word);
    } else if ((cmd == "save" || cmd == "load" || cmd == "w" || cmd == "wq") && arg == 1) {
        c.files = true;
    } else if (cmd == "record" && arg == 2 && words[1] == "start") {
        c.files = true;
    }
    return c;
}

}  // namespace rackterm::tui
