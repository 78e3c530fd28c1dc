#include <rackterm/app/Commands.hpp>

#include <rackterm/app/Catalog.hpp>
#include <rackterm/app/Packages.hpp>
#include <rackterm/app/Values.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <optional>

namespace rackterm::app {

namespace {

Reply fail(std::string text) { return Reply{false, std::move(text), false}; }

Reply done(std::string text) { return Reply{true, std::move(text), false}; }

Reply fromResult(const Result<std::string>& r) { return r ? done(r.value()) : fail(r.error()); }

/// The reply `toReply` makes of `later`'s result: at once when it is ready, else pending on it.
template <class T, class ToReply>
Reply whenReady(const Later<T>& later, ToReply toReply) {
    if (later.ready()) return toReply(later.result());
    Reply r;
    r.pending = [later, toReply]() -> std::optional<Reply> {
        if (!later.ready()) return std::nullopt;
        return toReply(later.result());
    };
    return r;
}

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

// ---- handlers ---------------------------------------------------------

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
    // Nudges in a row on one parameter are one undo step, as a held key is.
    if (auto g = c.runtime.setValue(n, p, next, Merge::Run); !g) return fail(g.error());
    return done(describe(c.runtime, n, p));
}

/// "NODE.ID = VALUE UNIT (output)" for a plugin's control output port, else nullopt.
std::optional<std::string> describeOutput(const Runtime& rt, const std::string& target) {
    const size_t dot = target.find('.');
    if (dot == std::string::npos) return std::nullopt;
    auto n = rt.findNode(target.substr(0, dot));
    if (!n) return std::nullopt;
    for (const auto& o : rt.controlOutputs(n.value()))
        if (o.id == target.substr(dot + 1)) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.4g", static_cast<double>(o.value));
            return target + " = " + buf + (o.unit.empty() ? "" : " " + o.unit) + " (output, read-only)";
        }
    return std::nullopt;
}

Reply cmdGet(CommandContext& c, const Args& a) {
    auto where = c.runtime.findParam(a[1]);
    if (!where) {
        if (auto output = describeOutput(c.runtime, a[1])) return done(*output);
        return fail(where.error());
    }
    return done(describe(c.runtime, where.value().first, where.value().second));
}

Reply cmdAdd(CommandContext& c, const Args& a) {
    if (a.size() == 5) {
        if (a[3] != "after" && a[3] != "before")
            return fail("add ID PROCESSOR [after|before NODE]: " + quote(a[3]) + " is neither after nor before");
        auto other = c.runtime.findNode(a[4]);
        if (!other) return fail(other.error());
        return replyLater(c.runtime.addNode(a[1], a[2], a[4], a[3] == "before"));
    }
    if (a.size() != 3) return fail("usage: add ID PROCESSOR [after|before NODE]");
    return replyLater(c.runtime.addNode(a[1], a[2]));
}

Reply cmdNote(CommandContext& c, const Args& a) {
    auto key = parseDecimal(a[2]);
    if (!key || *key != std::floor(*key) || *key < 0 || *key > 127)
        return fail("note NODE KEY [VELOCITY|off]: KEY is a MIDI note number 0..127 (60 is middle C), not " + quote(a[2]));
    int velocity = 100;
    if (a.size() == 4) {
        if (a[3] == "off") {
            velocity = 0;
        } else {
            auto v = parseDecimal(a[3]);
            if (!v || *v != std::floor(*v) || *v < 1 || *v > 127)
                return fail("note NODE KEY [VELOCITY|off]: VELOCITY is 1..127 or off, not " + quote(a[3]));
            velocity = static_cast<int>(*v);
        }
    }
    auto r = c.runtime.sendNote(a[1], static_cast<int>(*key), velocity);
    if (!r) return fail(r.error());
    return done(r.value());
}

Reply cmdRemove(CommandContext& c, const Args& a) {
    auto n = c.runtime.findNode(a[1]);
    if (!n) return fail(n.error());
    return replyLater(c.runtime.removeNode(a[1]));
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
    if (const std::string why = c.runtime.whyUnloaded(n.value()); !on && !why.empty()) return fail(why);
    c.runtime.setBypass(n.value(), on);
    return done(a[1] + (on ? " bypassed" : " active"));
}

Reply cmdUpgrade(CommandContext& c, const Args& a) { return replyLater(c.runtime.upgradePackage(a[1])); }

Reply cmdUnload(CommandContext& c, const Args& a) { return replyLater(c.runtime.unloadPackage(a[1])); }


Reply cmdUndo(CommandContext& c, const Args&) { return replyLater(c.runtime.undo()); }

Reply cmdRedo(CommandContext& c, const Args&) { return replyLater(c.runtime.redo()); }

Reply cmdReload(CommandContext& c, const Args& a) {
    auto n = c.runtime.findNode(a[1]);
    if (!n) return fail(n.error());
    if (c.reload) return c.reload(a[1]);  // the live hot-reload pipeline rebuilds first
    return reloadFromModule(c.runtime, n.value());
}

Reply cmdBuild(CommandContext& c, const Args& a) {
    if (a[1] != "status") return fail("build what? build status, not " + quote(a[1]));
    if (!c.buildStatus) return fail("hot reload runs only in a live session (console or --headless)");
    return done(c.buildStatus());
}

Reply cmdRecover(CommandContext& c, const Args&) {
    if (!c.recover) return fail("recover works in a live session (the console, --headless, run)");
    return c.recover();
}

Reply cmdDiscard(CommandContext& c, const Args&) {
    if (!c.discard) return fail("discard works in a live session (the console, --headless, run)");
    return c.discard();
}

Reply cmdSave(CommandContext& c, const Args& a) { return replyLater(c.runtime.save(a.size() > 1 ? a[1] : "")); }

Reply cmdLoad(CommandContext& c, const Args& a) {
    if (a.size() == 3 && a[2] != "!") return fail("load FILE [!]: " + quote(a[2]) + " is not !");
    if (c.runtime.dirty() && a.size() < 3)
        return fail("unsaved changes; save first, or `load FILE !` to discard them (undo brings them back)");
    return replyLater(c.runtime.loadSession(a[1]));
}

Reply cmdRecord(CommandContext& c, const Args& a) {
    if (a[1] == "start") {
        if (a.size() != 3) return fail("usage: record start FILE");
        auto r = c.runtime.startRecording(a[2]);
        return r ? done(r.value()) : fail(r.error());
    }
    if (a[1] == "stop") return replyLater(c.runtime.stopRecording());
    return fail("record start FILE or record stop, not " + quote(a[1]) + didYouMean(a[1], {"start", "stop"}));
}

/// "100 frames (2.08 ms)".
std::string latencyText(uint32_t frames, double sampleRate) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%u frames (%.2f ms)", frames, sampleRate > 0 ? frames * 1000.0 / sampleRate : 0.0);
    return buf;
}

/// A connection level as typed: "-12", "-12dB", "+3 dB".
std::optional<double> parseLevel(std::string text) {
    if (text.size() > 2 && (text.substr(text.size() - 2) == "dB" || text.substr(text.size() - 2) == "db"))
        text.resize(text.size() - 2);
    if (text.empty() || text.size() > 24) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size() || !std::isfinite(v)) return std::nullopt;
    return v;
}

Reply cmdConnect(CommandContext& c, const Args& a) {
    double gainDb = 0;
    bool feedback = false;
    for (size_t i = 3; i < a.size(); ++i) {
        if (a[i] == "feedback") {
            feedback = true;
        } else if (auto level = parseLevel(a[i])) {
            gainDb = *level;
        } else {
            return fail("connect FROM TO [LEVEL_DB] [feedback]: " + quote(a[i]) + " is neither a level in dB (-12) nor feedback");
        }
    }
    return replyLater(c.runtime.connect(a[1], a[2], gainDb, feedback));
}

Reply cmdDisconnect(CommandContext& c, const Args& a) { return replyLater(c.runtime.disconnect(a[1], a[2])); }

Reply cmdList(CommandContext& c, const Args& a) {
    const Runtime& rt = c.runtime;
    const std::string what = a[1];
    std::string out;
    if (what == "nodes") {
        const GraphInfo& g = rt.graph();
        for (size_t n = 0; n < rt.nodeCount(); ++n) {
            std::string notes = rt.nodeState(n);  // the lifecycle state first: active, quiescing, unloaded
            if (rt.bypassed(n)) notes += ", bypassed";
            if (rt.nodeIsolated(n)) {
                const std::string fault = rt.nodeFault(n);
                notes += (notes.empty() ? "" : ", ") + std::string("isolated") + (fault.empty() ? "" : ": " + fault);
            }
            if (n < g.copies.size() && g.copies[n] > 1) notes += (notes.empty() ? "" : ", ") + std::string("dual mono x") + std::to_string(g.copies[n]);
            if (n < g.latency.size() && g.latency[n] > 0)
                notes += (notes.empty() ? "" : ", ") + std::string("latency ") + latencyText(g.latency[n], rt.sampleRate());
            out += (n ? " " : "") + rt.nodeId(n) + "=" + rt.descriptor(n).id + (notes.empty() ? "" : "(" + notes + ")");
        }
        if (g.totalLatency > 0) out += (out.empty() ? "" : "; ") + std::string("total latency ") + latencyText(g.totalLatency, rt.sampleRate());
        return done(out.empty() ? "no nodes" : out);
    }
    if (what == "connections") {
        for (const auto& conn : rt.connections()) {
            out += out.empty() ? "" : "; ";
            out += conn.from + " -> " + conn.to;
            if (conn.gainDb != 0) {
                char buf[32];
                std::snprintf(buf, sizeof buf, " (%g dB)", conn.gainDb);
                out += buf;
            }
            if (conn.feedback) out += " (feedback)";
        }
        return done((rt.isChain() ? "chain: " : "") + out);
    }
    if (what == "params") {
        if (a.size() < 3) return fail("usage: list params NODE");
        auto n = rt.findNode(a[2]);
        if (!n) return fail(n.error());
        const auto& d = rt.descriptor(n.value());
        for (uint32_t p = 0; p < d.param_count; ++p)
            out += (p ? " " : "") + std::string(d.params[p].id) + "=" + formatValue(d.params[p], rt.value(n.value(), p));
        std::string outputs;
        for (const auto& o : rt.controlOutputs(n.value())) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "%.4g", static_cast<double>(o.value));
            outputs += (outputs.empty() ? "" : " ") + o.id + "=" + buf + (o.unit.empty() ? "" : " " + o.unit);
        }
        if (!outputs.empty()) out += (out.empty() ? "" : "; ") + std::string("outputs: ") + outputs;
        return done(out.empty() ? "no parameters" : out);
    }
    if (what == "processors") {
        // Built-ins alone by name, as before; a filter word (or "all") adds the plugins, one entry each.
        if (a.size() < 3) {
            for (const auto& name : processorNames()) out += (out.empty() ? "" : " ") + name;
            const size_t plugins = processorListing("lv2").size() + processorListing("ladspa").size();
            return done(out + (plugins ? "; " + std::to_string(plugins) +
                                             " LV2/LADSPA plugins: `list processors WORD` finds them (WORD: a "
                                             "name, lv2, ladspa or all)"
                                       : ""));
        }
        for (const auto& entry : processorListing(a[2] == "all" ? "" : a[2])) out += (out.empty() ? "" : "; ") + entry;
        return done(out.empty() ? "no processor matches " + quote(a[2]) : out);
    }
    if (what == "packages") {
        // "ID VERSION (nodes a, b)": `rackterm package list` and `uninstall` read this form.
        std::vector<std::pair<std::string, std::string>> used;  // "ID VERSION", node ids
        for (size_t n = 0; n < rt.nodeCount(); ++n) {
            const std::string pkg = rt.nodePackage(n);
            if (pkg.empty()) continue;
            auto it = std::find_if(used.begin(), used.end(), [&](const auto& u) { return u.first == pkg; });
            if (it == used.end()) used.emplace_back(pkg, "nodes " + rt.nodeId(n));
            else it->second += ", " + rt.nodeId(n);
        }
        for (const auto& [pkg, nodes] : used) out += (out.empty() ? "" : "; ") + pkg + " (" + nodes + ")";
        return done(out.empty() ? "no packages" : out);
    }
    if (what == "ports") {
        if (!c.ports) return fail("no JACK connection in this mode");
        for (const auto& p : c.ports()) out += (out.empty() ? "" : " ") + p;
        return done(out);
    }
    return fail("list what? nodes, connections, params NODE, processors, packages or ports, not " + quote(what) +
                didYouMean(what, {"nodes", "connections", "params", "processors", "packages", "ports"}));
}

Reply cmdStatus(CommandContext& c, const Args&) {
    const Runtime& rt = c.runtime;
    const EngineStatus s = c.status ? c.status() : rt.status();
    char buf[256];
    std::snprintf(buf, sizeof buf, "session %s: %zu nodes, %.0f Hz, %u frames, DSP %.1f %%, xruns %llu, %s%s",
                  rt.name().c_str(), rt.nodeCount(), s.sampleRate, s.blockFrames, static_cast<double>(s.dspLoad),
                  static_cast<unsigned long long>(s.xruns), rt.dirty() ? "unsaved" : "saved",
                  s.serverLost ? ", JACK server lost - waiting for it" : "");
    std::string text = buf;
    if (rt.graph().totalLatency > 0) text += ", latency " + latencyText(rt.graph().totalLatency, rt.sampleRate());
    return done(text);
}

Reply cmdWait(CommandContext& c, const Args& a) {
    if (a[1] != "applied") return fail("wait what? wait applied, not " + quote(a[1]));
    return replyLater(c.runtime.waitApplied());
}

Reply cmdQuit(CommandContext& c, const Args& a) {
    const bool force = a[0] == "quit!" || a[0] == "q!";
    if (c.runtime.dirty() && !force)
        return fail("unsaved changes; save first (:w or save) or quit without saving (:q! or quit!)");
    return Reply{true, "bye", true};
}

/// :wq and :x: save, then quit when the save worked.
Reply cmdSaveQuit(CommandContext& c, const Args& a) {
    Reply r = cmdSave(c, a);
    if (!r.waiting()) {
        r.quit = r.ok;
        return r;
    }
    r.pending = [saved = std::move(r.pending)]() -> std::optional<Reply> {
        std::optional<Reply> final = saved();
        if (final) final->quit = final->ok;
        return final;
    };
    return r;
}

Reply cmdHelp(CommandContext&, const Args&);

// ---- completers ---------------------------------------------------------

void addMatching(std::vector<std::string>& out, const std::string& candidate, const std::string& word) {
    if (candidate.rfind(word, 0) == 0 && std::find(out.begin(), out.end(), candidate) == out.end()) out.push_back(candidate);
}

void addNodes(const Runtime& rt, const std::string& word, Completions& out) {
    for (size_t n = 0; n < rt.nodeCount(); ++n) addMatching(out.words, rt.nodeId(n), word);
}

/// "NODE." for nodes, or "NODE.PARAM" once a node and its dot are typed.
void addParams(const Runtime& rt, const std::string& word, Completions& out) {
    const size_t dot = word.find('.');
    for (size_t n = 0; n < rt.nodeCount(); ++n) {
        const std::string& id = rt.nodeId(n);
        if (dot == std::string::npos) {
            addMatching(out.words, id + ".", word);
            continue;
        }
        if (word.compare(0, dot, id) != 0 || dot != id.size()) continue;
        const auto& d = rt.descriptor(n);
        for (uint32_t p = 0; p < d.param_count; ++p) addMatching(out.words, id + "." + d.params[p].id, word);
    }
}

void addWords(std::initializer_list<const char*> words, const std::string& word, Completions& out) {
    for (const char* w : words) addMatching(out.words, w, word);
}

void completeParam(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addParams(rt, word, out);
}

void completeSet(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) return addParams(rt, word, out);
    if (w.size() != 2) return;
    auto where = rt.findParam(w[1]);
    if (!where) return;
    const auto& info = rt.descriptor(where.value().first).params[where.value().second];
    for (int i = 0;; ++i) {
        const std::string name = choiceName(info, i);
        if (name.empty()) break;
        addMatching(out.words, name, word);
    }
    if (info.flags & RACKTERM_PARAM_TOGGLE) addWords({"on", "off"}, word, out);
}

void completeNode(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addNodes(rt, word, out);
}

void completeBypass(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addNodes(rt, word, out);
    else if (w.size() == 2) addWords({"on", "off"}, word, out);
}

void completeAdd(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 2) {
        for (const auto& name : processorNames())
            if (name != "player") addMatching(out.words, name, word);
        for (const auto& name : pluginNamesStartingWith(word)) addMatching(out.words, name, word);
        if (word.find('/') != std::string::npos) out.files = true;
    } else if (w.size() == 3) {
        addWords({"after", "before"}, word, out);
    } else if (w.size() == 4) {
        addNodes(rt, word, out);
    }
}

/// Connection ends: nodes, the reserved input / output, and NODE:out_K / NODE:in_K once a colon is typed.
void addEndpoints(const Runtime& rt, bool source, const std::string& word, Completions& out) {
    const size_t colon = word.find(':');
    const std::string reserved = source ? "input" : "output";
    const char* prefix = source ? "out_" : "in_";
    if (colon == std::string::npos) {
        addMatching(out.words, reserved, word);
        addNodes(rt, word, out);
        return;
    }
    const std::string node = word.substr(0, colon);
    uint32_t ports = 0;
    if (node == reserved) {
        ports = source ? rt.inputCount() : rt.outputCount();
        prefix = source ? "in_" : "out_";  // the JACK port names
    } else if (auto n = rt.findNode(node)) {
        const GraphInfo& g = rt.graph();
        ports = n.value() < g.outWidth.size() ? (source ? g.outWidth[n.value()] : g.inWidth[n.value()])
                                              : (source ? rt.descriptor(n.value()).output_channels
                                                        : rt.descriptor(n.value()).input_channels);
    }
    for (uint32_t k = 1; k <= ports; ++k) addMatching(out.words, node + ":" + prefix + std::to_string(k), word);
}

void completeConnect(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addEndpoints(rt, true, word, out);
    else if (w.size() == 2) addEndpoints(rt, false, word, out);
    else if (w.size() >= 3 && w[0] == "connect") addWords({"feedback"}, word, out);
}

void completeFile(const Runtime&, const Args& w, const std::string&, Completions& out) {
    if (w.size() == 1) out.files = true;
}

void completeLoad(const Runtime&, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) out.files = true;
    else if (w.size() == 2) addWords({"!"}, word, out);
}

void completeRecord(const Runtime&, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addWords({"start", "stop"}, word, out);
    else if (w.size() == 2 && w[1] == "start") out.files = true;
}

void completeList(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addWords({"nodes", "connections", "params", "processors", "packages", "ports"}, word, out);
    else if (w.size() == 2 && w[1] == "params") addNodes(rt, word, out);
}

void completePackage(const Runtime& rt, const Args& w, const std::string& word, Completions& out) {
    if (w.size() != 1) return;
    std::vector<std::string> ids;
    for (size_t n = 0; n < rt.nodeCount(); ++n)
        if (const std::string p = packageIdOf(rt.nodeSpec(n).processor); !p.empty() && std::find(ids.begin(), ids.end(), p) == ids.end())
            ids.push_back(p);
    for (const auto& id : ids) addMatching(out.words, id, word);
}

void completeBuild(const Runtime&, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addWords({"status"}, word, out);
}

void completeWait(const Runtime&, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1) addWords({"applied"}, word, out);
}

void completeHelp(const Runtime&, const Args& w, const std::string& word, Completions& out) {
    if (w.size() == 1)
        for (const auto& c : commandTable()) addMatching(out.words, c.name, word);
}

constexpr unsigned kAnywhere = kOffline | kSocket;

const std::vector<CommandInfo> kTable = {
    {"set", "set NODE.PARAM VALUE", "set a parameter (units: dB, Hz, k, kHz, ms, s, %)", 2, 2, &cmdSet, &completeSet,
     kEdits | kAnywhere},
    {"get", "get NODE.PARAM", "show a parameter's value", 1, 1, &cmdGet, &completeParam, kAnywhere},
    {"nudge", "nudge NODE.PARAM [STEPS|+-VALUE]",
     "move a parameter by keyboard steps (default 1) or by a value (+1dB, -100Hz)", 1, 2, &cmdNudge, &completeParam,
     kEdits | kAnywhere},
    {"add", "add ID PROCESSOR [after|before NODE]", "add a node (faded in, no click); PROCESSOR: built-in name, .so, lv2:URI or ladspa:LABEL",
     2, 4, &cmdAdd, &completeAdd, kEdits | kAnywhere},
    {"note", "note NODE KEY [VELOCITY|off]", "play a MIDI note on an LV2 instrument or sampler (velocity 1-127, default 100)",
     2, 3, &cmdNote, &completeNode, kAnywhere},
    {"remove", "remove NODE", "remove a node (faded out first, no click)", 1, 1, &cmdRemove, &completeNode,
     kEdits | kAnywhere},
    {"connect", "connect FROM TO [LEVEL_DB] [feedback]",
     "connect NODE[:out_K] (or input) to NODE[:in_K] (or output), faded in; again with a level changes it", 2, 4,
     &cmdConnect, &completeConnect, kEdits | kAnywhere},
    {"disconnect", "disconnect FROM TO", "remove a connection as `list connections` shows it (faded out first)", 2, 2,
     &cmdDisconnect, &completeConnect, kEdits | kAnywhere},
    {"bypass", "bypass NODE [on|off]", "bypass a node, or toggle it", 1, 2, &cmdBypass, &completeBypass,
     kEdits | kAnywhere},
    {"undo", "undo", "undo the last change to the session (u in the console)", 0, 0, &cmdUndo, nullptr,
     kEdits | kAnywhere},
    {"redo", "redo", "redo the last undone change (Ctrl-R in the console)", 0, 0, &cmdRedo, nullptr, kEdits | kAnywhere},
    {"reload", "reload NODE", "rebuild (when watched) and hot-swap a node's processor, crossfaded", 1, 1, &cmdReload,
     &completeNode, kAnywhere},
    {"build", "build status", "each watched node's build state", 1, 1, &cmdBuild, &completeBuild, kLiveOnly | kSocket},
    {"save", "save [FILE]", "save the session, keeping its comments (atomically, keeping FILE~)", 0, 1, &cmdSave,
     &completeFile, kAnywhere},
    {"load", "load FILE [!]", "replace the nodes by another session's (! discards unsaved changes)", 1, 2, &cmdLoad,
     &completeLoad, kEdits | kAnywhere},
    {"recover", "recover", "bring back the unsaved edits a recovery file kept (unsaved, one undo step)", 0, 0,
     &cmdRecover, nullptr, kEdits | kLiveOnly | kSocket},
    {"discard", "discard", "drop the unsaved edits a recovery file kept", 0, 0, &cmdDiscard, nullptr,
     kLiveOnly | kSocket},
    {"record", "record start FILE | record stop", "record the master output (a disk thread, libsndfile)", 1, 2,
     &cmdRecord, &completeRecord, kAnywhere},
    {"list", "list nodes|connections|params NODE|processors [WORD]|packages|ports",
     "list what the session holds (processors WORD: plugins too; packages: the installed packages its nodes run)", 1, 2,
     &cmdList, &completeList, kAnywhere},
    {"upgrade", "upgrade PACKAGE", "hot-swap every node of an installed package to its installed version, crossfaded", 1, 1,
     &cmdUpgrade, &completePackage, kSocket},
    {"unload", "unload PACKAGE", "fade every node of a package to bypass and deactivate it (before uninstall)", 1, 1,
     &cmdUnload, &completePackage, kSocket},
    {"status", "status", "session, rate, block, DSP load, xruns, unsaved", 0, 0, &cmdStatus, nullptr, kAnywhere},
    {"wait", "wait applied", "wait until the audio thread applied every change", 1, 1, &cmdWait, &completeWait,
     kAnywhere},
    {"help", "help [COMMAND]", "list the commands, or explain one", 0, 1, &cmdHelp, &completeHelp, kAnywhere},
    {"quit", "quit", "quit (refuses when unsaved; quit! does not)", 0, 0, &cmdQuit, nullptr, kLiveOnly | kSocket},
    {"quit!", "quit!", "quit without saving", 0, 0, &cmdQuit, nullptr, kLiveOnly | kSocket},
    {"w", "w [FILE]", "save (vim)", 0, 1, &cmdSave, &completeFile, kAlias},
    {"wq", "wq [FILE]", "save and quit (vim)", 0, 1, &cmdSaveQuit, &completeFile, kAlias | kLiveOnly},
    {"x", "x [FILE]", "save and quit (vim)", 0, 1, &cmdSaveQuit, &completeFile, kAlias | kLiveOnly},
    {"q", "q", "quit, refused when unsaved (vim)", 0, 0, &cmdQuit, nullptr, kAlias | kLiveOnly},
    {"q!", "q!", "quit without saving (vim)", 0, 0, &cmdQuit, nullptr, kAlias | kLiveOnly},
};

const CommandInfo* findRow(std::string_view name) {
    for (const auto& r : kTable)
        if (name == r.name) return &r;
    return nullptr;
}

Reply cmdHelp(CommandContext&, const Args& a) {
    if (a.size() == 2) {
        const CommandInfo* r = findRow(a[1]);
        if (!r) {
            std::vector<std::string> names;
            for (const auto& row : kTable) names.emplace_back(row.name);
            return fail("no command " + quote(a[1]) + didYouMean(a[1], names));
        }
        return done(std::string(r->usage) + ": " + r->help + ((r->flags & kEdits) ? " (an undo step)" : ""));
    }
    std::string out;
    for (const auto& r : kTable)
        if (!(r.flags & kAlias)) out += (out.empty() ? "" : "; ") + std::string(r.usage);
    return done(out);
}

}  // namespace

std::string Reply::line() const {
    const std::string body = printable(text, std::string::npos);
    return ok ? (body.empty() ? "ok" : "ok " + body) : "error: " + body;
}

Reply replyLater(const Later<std::string>& later) { return whenReady(later, fromResult); }

Reply finishOffline(Runtime& runtime, Reply reply) {
    for (int turn = 0; reply.waiting() && turn < 1000; ++turn) {
        runtime.tick();
        if (auto r = reply.pending()) reply = std::move(*r);
    }
    if (reply.waiting()) return fail("the command did not finish");
    return reply;
}

Reply reloadFromModule(Runtime& runtime, size_t node) {
    const std::string id = runtime.nodeId(node);
    const Later<SwapReport> swap = runtime.swapNode(id, runtime.modulePath(node), true);
    auto toReply = [id](const Result<SwapReport>& r) {
        if (!r) return fail(id + ": reload failed, the old processor keeps playing: " + r.error());
        return done(id + ": reloaded, " + r.value().summary());
    };
    return whenReady(swap, toReply);
}

const std::vector<CommandInfo>& commandTable() { return kTable; }

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
    const CommandInfo* r = findRow(words[0]);
    if (!r) {
        std::vector<std::string> names;
        for (const auto& row : kTable)
            if (ctx.source == Source::Console || !(row.flags & kAlias)) names.emplace_back(row.name);
        return fail("unknown command " + quote(words[0]) + didYouMean(words[0], names) + "; `help` lists them");
    }
    if (ctx.source != Source::Console && (r->flags & kAlias))
        return fail(quote(words[0]) + " works on the console's command line only; use " +
                    (r->handler == &cmdQuit ? std::string("quit or quit!") : std::string("save")));
    if (ctx.source == Source::Socket && !(r->flags & kSocket))
        return fail(quote(words[0]) + " works on the console's command line only");
    if (ctx.source == Source::Render && !(r->flags & kOffline))
        return fail(quote(words[0]) + ((r->flags & kLiveOnly) ? " needs a live session; a render script cannot run it"
                                                             : " cannot run in a render script"));
    const size_t n = words.size() - 1;
    if (n < r->minArgs || n > r->maxArgs) return fail("usage: " + std::string(r->usage));
    return r->handler(ctx, words);
}

Completions complete(const Runtime& rt, const std::string& before, const std::string& word) {
    Completions c;
    const auto words = splitWords(before);
    if (words.empty()) {
        for (const auto& row : kTable) addMatching(c.words, row.name, word);
        return c;
    }
    if (const CommandInfo* r = findRow(words[0]); r && r->completer && words.size() - 1 < r->maxArgs)
        r->completer(rt, words, word, c);
    return c;
}

}  // namespace rackterm::app
