#include <rackterm/app/Commands.hpp>

#include <rackterm/app/Catalog.hpp>
#include <rackterm/app/Values.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/JackBackend.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <optional>
#include <thread>

namespace rackterm::app {

namespace {

using Args = std::vector<std::string>;
using Handler = Reply (*)(CommandContext&, const Args&);

Reply fail(std::string text) { return Reply{false, std::move(text), false}; }

Reply done(std::string text) { return Reply{true, std::move(text), false}; }

/// "3", "-10", "+2" as keyboard steps; nullopt for anything else ("+1dB", "0x10").
std::optional<int> wholeSteps(std::string_view text) {
    size_t i = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
    if (i == text.size() || text.size() - i > 6) return std::nullopt;
    int v = 0;
    for (; i < text.size(); ++i) {
        if (text[i] < '0' || text[i] > '9') return std::nullopt;
        v = v * 10 + (text[i] - '0');
    }
    return text[0] == '-' ? -v : v;
}

std::string describe(const Runtime& rt, size_t n, size_t p) {
    const rackterm_param_info& info = rt.descriptor(n).params[p];
    return rt.nodeId(n) + "." + info.id + " = " + formatValue(info, rt.value(n, p));
}

Reply cmdSet(CommandContext& c, const Args& a) {
    auto where = c.runtime.findParam(a[1]);
    if (!where) return fail(where.error());
    auto [n, p] = where.value();
    auto v = parseValue(c.runtime.descriptor(n).params[p], a[2]);
    if (!v) return fail(v.error());
    if (auto g = c.runtime.setValue(n, p, v.value()); !g) return fail(g.error());
    return done(describe(c.runtime, n, p));
}

Reply cmdNudge(CommandContext& c, const Args& a) {
    auto where = c.runtime.findParam(a[1]);
    if (!where) return fail(where.error());
    auto [n, p] = where.value();
    const rackterm_param_info& info = c.runtime.descriptor(n).params[p];
    const float now = c.runtime.value(n, p);
    float next;
    const std::string amount = a.size() > 2 ? a[2] : "1";
    if (const auto steps = wholeSteps(amount)) {  // a whole number: keyboard steps
        next = stepValue(info, now, *steps);
    } else {
        auto delta = parseDelta(info, amount);
        if (!delta) return fail(delta.error());
        next = std::clamp(now + delta.value(), info.min, info.max);
    }
    if (auto g = c.runtime.setValue(n, p, next); !g) return fail(g.error());
    return done(describe(c.runtime, n, p));
}

Reply cmdAdd(CommandContext& c, const Args& a) {
    size_t position = c.runtime.nodeCount();
    if (a.size() == 5) {
        auto other = c.runtime.findNode(a[4]);
        if (!other) return fail(other.error());
        if (a[3] == "after") position = other.value() + 1;
        else if (a[3] == "before") position = other.value();
        else return fail("add ID PROCESSOR [after|before NODE]: " + quote(a[3]) + " is neither after nor before");
    } else if (a.size() != 3) {
        return fail("usage: add ID PROCESSOR [after|before NODE]");
    }
    auto r = c.runtime.addNode(a[1], a[2], position);
    if (!r) return fail(r.error());
    if (c.nodesChanged) c.nodesChanged();
    return done(r.value());
}

Reply cmdRemove(CommandContext& c, const Args& a) {
    auto n = c.runtime.findNode(a[1]);
    if (!n) return fail(n.error());
    auto r = c.runtime.removeNode(n.value(), c.offline);
    if (!r) return fail(r.error());
    if (c.nodesChanged) c.nodesChanged();
    return done(r.value());
}

Reply cmdLoad(CommandContext& c, const Args& a) {
    if (c.runtime.dirty() && (a.size() < 3 || a[2] != "!"))
        return fail("unsaved changes; save first, or `load FILE !` to discard them");
    auto r = c.runtime.loadSession(a[1]);
    if (!r) return fail(r.error());
    if (c.nodesChanged) c.nodesChanged();
    return done(r.value());
}

Reply cmdRecord(CommandContext& c, const Args& a) {
    if (a[1] == "start") {
        if (a.size() != 3) return fail("usage: record start FILE");
        auto r = c.runtime.startRecording(a[2]);
        return r ? done(r.value()) : fail(r.error());
    }
    if (a[1] == "stop") {
        auto r = c.runtime.stopRecording(c.offline);
        return r ? done(r.value()) : fail(r.error());
    }
    return fail("record start FILE or record stop, not " + quote(a[1]) + didYouMean(a[1], {"start", "stop"}));
}

Reply cmdGet(CommandContext& c, const Args& a) {
    auto where = c.runtime.findParam(a[1]);
    if (!where) return fail(where.error());
    return done(describe(c.runtime, where.value().first, where.value().second));
}

Reply cmdBypass(CommandContext& c, const Args& a) {
    auto n = c.runtime.findNode(a[1]);
    if (!n) return fail(n.error());
    bool on = !c.runtime.bypassed(n.value());
    if (a.size() == 3) {
        if (a[2] == "on") on = true;
        else if (a[2] == "off") on = false;
        else return fail("bypass takes on or off, not " + quote(a[2]));
    }
    c.runtime.setBypass(n.value(), on);
    return done(a[1] + (on ? " bypassed" : " active"));
}

Reply cmdSave(CommandContext& c, const Args& a) {
    auto r = c.runtime.save(a.size() > 1 ? a[1] : "");
    return r ? done(r.value()) : fail(r.error());
}

Reply cmdList(CommandContext& c, const Args& a) {
    const Runtime& rt = c.runtime;
    const std::string what = a[1];
    std::string out;
    if (what == "nodes") {
        for (size_t n = 0; n < rt.nodeCount(); ++n)
            out += (n ? " " : "") + rt.nodeId(n) + "=" + rt.descriptor(n).id + (rt.bypassed(n) ? "(bypassed)" : "");
        return done(out.empty() ? "no nodes" : out);
    }
    if (what == "params") {
        if (a.size() < 3) return fail("usage: list params NODE");
        auto n = rt.findNode(a[2]);
        if (!n) return fail(n.error());
        const auto& d = rt.descriptor(n.value());
        for (uint32_t p = 0; p < d.param_count; ++p)
            out += (p ? " " : "") + std::string(d.params[p].id) + "=" + formatValue(d.params[p], rt.value(n.value(), p));
        return done(out.empty() ? "no parameters" : out);
    }
    if (what == "processors") {
        for (const auto& name : processorNames()) out += (out.empty() ? "" : " ") + name;
        return done(out);
    }
    if (what == "ports") {
        if (!c.jack) return fail("no JACK connection in this mode");
        for (const auto& p : c.jack->ports()) out += (out.empty() ? "" : " ") + p;
        return done(out);
    }
    return fail("list what? nodes, params NODE, processors or ports, not " + quote(what) +
                didYouMean(what, {"nodes", "params", "processors", "ports"}));
}

Reply cmdStatus(CommandContext& c, const Args&) {
    const Runtime& rt = c.runtime;
    char buf[256];
    const auto& ev = c.runtime.engine().events();
    std::snprintf(buf, sizeof buf, "session %s: %zu nodes, %.0f Hz, %u frames, DSP %.1f %%, xruns %llu, %s",
                  rt.session().name.c_str(), rt.nodeCount(), rt.sampleRate(),
                  c.jack ? c.jack->bufferSize() : rt.maxBlockFrames(),
                  static_cast<double>(c.jack ? c.jack->cpuLoad() : rt.meters().dspLoad * 100.0f),
                  static_cast<unsigned long long>(ev.xruns.load()), rt.dirty() ? "unsaved" : "saved");
    return done(buf);
}

Reply cmdWait(CommandContext& c, const Args& a) {
    if (a[1] != "applied") return fail("wait what? wait applied, not " + quote(a[1]));
    engine::Engine& e = c.runtime.engine();
    const uint64_t target = e.generation();
    if (c.offline) return done("applied " + std::to_string(target) + " at the next block");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (e.appliedGeneration() < target) {
        if (std::chrono::steady_clock::now() > deadline)
            return fail("generation " + std::to_string(target) + " not applied after 5 s; is the audio running?");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done("applied " + std::to_string(target));
}

Reply cmdQuit(CommandContext& c, const Args& a) {
    const bool force = a[0] == "quit!" || a[0] == "q!";
    if (c.runtime.dirty() && !force)
        return fail("unsaved changes; save first (:w or save) or quit without saving (:q! or quit!)");
    return Reply{true, "bye", true};
}

Reply cmdReload(CommandContext& c, const Args& a) {
    auto n = c.runtime.findNode(a[1]);
    if (!n) return fail(n.error());
    if (c.reload) return c.reload(n.value());  // the live hot-reload pipeline rebuilds first
    return reloadFromModule(c.runtime, n.value());
}

Reply cmdBuild(CommandContext& c, const Args& a) {
    if (a[1] != "status") return fail("build what? build status, not " + quote(a[1]));
    if (!c.buildStatus) return fail("hot reload runs only in a live session (console or --headless)");
    return done(c.buildStatus());
}

Reply cmdHelp(CommandContext&, const Args&);

struct Row {
    CommandInfo info;
    size_t minArgs, maxArgs;  // not counting the name
    Handler handler;
};

const std::vector<Row>& rows() {
    static const std::vector<Row> table = {
        {{"set", "set NODE.PARAM VALUE", "set a parameter (units: dB, Hz, k, kHz, ms, s, %)"}, 2, 2, &cmdSet},
        {{"get", "get NODE.PARAM", "show a parameter's value"}, 1, 1, &cmdGet},
        {{"nudge", "nudge NODE.PARAM [STEPS|+-VALUE]", "move a parameter by keyboard steps (default 1) or by a value (+1dB, -100Hz)"}, 1, 2, &cmdNudge},
        {{"add", "add ID PROCESSOR [after|before NODE]", "add a node (faded in, no click); PROCESSOR: built-in name or .so"}, 2, 4, &cmdAdd},
        {{"remove", "remove NODE", "remove a node (faded out first, no click)"}, 1, 1, &cmdRemove},
        {{"bypass", "bypass NODE [on|off]", "bypass a node, or toggle it"}, 1, 2, &cmdBypass},
        {{"reload", "reload NODE", "rebuild (when watched) and hot-swap a node's processor, crossfaded"}, 1, 1, &cmdReload},
        {{"build", "build status", "each watched node's build state"}, 1, 1, &cmdBuild},
        {{"save", "save [FILE]", "save the session (atomically, keeping FILE~)"}, 0, 1, &cmdSave},
        {{"load", "load FILE [!]", "replace the nodes by another session's (! discards unsaved changes)"}, 1, 2, &cmdLoad},
        {{"record", "record start FILE | record stop", "record the master output (a disk thread, libsndfile)"}, 1, 2, &cmdRecord},
        {{"list", "list nodes|params NODE|processors|ports", "list what the session holds"}, 1, 2, &cmdList},
        {{"status", "status", "session, rate, block, DSP load, xruns, unsaved"}, 0, 0, &cmdStatus},
        {{"wait", "wait applied", "wait until the audio thread applied every change"}, 1, 1, &cmdWait},
        {{"help", "help", "list the commands"}, 0, 1, &cmdHelp},
        {{"quit", "quit", "quit (refuses when unsaved; quit! does not)"}, 0, 0, &cmdQuit},
        {{"quit!", "quit!", "quit without saving"}, 0, 0, &cmdQuit},
    };
    return table;
}

Reply cmdHelp(CommandContext&, const Args&) {
    std::string out;
    for (const auto& r : rows()) out += (out.empty() ? "" : "; ") + std::string(r.info.usage);
    return done(out);
}

}  // namespace

std::string Reply::line() const {
    const std::string body = printable(text, std::string::npos);
    return ok ? (body.empty() ? "ok" : "ok " + body) : "error: " + body;
}

Reply reloadFromModule(Runtime& runtime, size_t node) {
    const std::string& id = runtime.nodeId(node);
    auto r = runtime.swapNode(node, runtime.modulePath(node));
    if (!r) return fail(id + ": reload failed, the old processor keeps playing: " + r.error());
    return done(id + ": reloaded, " + r.value().summary());
}

const std::vector<CommandInfo>& commandTable() {
    static const std::vector<CommandInfo> infos = [] {
        std::vector<CommandInfo> v;
        for (const auto& r : rows()) v.push_back(r.info);
        return v;
    }();
    return infos;
}

std::vector<std::string> splitWords(std::string_view line) {
    std::vector<std::string> words;
    std::string cur;
    bool quoted = false, any = false;
    for (char ch : line) {
        if (quoted) {
            if (ch == '"') quoted = false;
            else cur += ch;
        } else if (ch == '"') {
            quoted = any = true;
        } else if (ch == '#') {
            break;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            if (any) words.push_back(cur);
            cur.clear();
            any = false;
        } else {
            cur += ch;
            any = true;
        }
    }
    if (any) words.push_back(cur);
    return words;
}

Reply execute(CommandContext& ctx, std::string_view line) {
    const Args words = splitWords(line);
    if (words.empty()) return done("");
    std::vector<std::string> names;
    for (const auto& r : rows()) {
        names.emplace_back(r.info.name);
        if (words[0] != r.info.name) continue;
        const size_t n = words.size() - 1;
        if (n < r.minArgs || n > r.maxArgs) return fail("usage: " + std::string(r.info.usage));
        return r.handler(ctx, words);
    }
    return fail("unknown command " + quote(words[0]) + didYouMean(words[0], names) + "; `help` lists them");
}

}  // namespace rackterm::app
