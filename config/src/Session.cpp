#include <rackterm/config/Session.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>

#include "Format.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <tuple>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

namespace rackterm::config {

namespace {

using Reader = detail::TomlReader;

/// A character of a bare TOML key, and of a session name: [A-Za-z0-9_-],
/// ASCII whatever the locale.
bool isBareKeyChar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool isClientName(std::string_view s) {
    if (s.empty() || s.size() > 48) return false;
    for (char c : s)
        if (!isBareKeyChar(c)) return false;
    return true;
}

using detail::unknownKey;

std::optional<Error> readString(const Reader& rd, const toml::table& t, const char* key, std::string& out,
                                SourceLocation* where = nullptr) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    if (!n->is_string()) return rd.error(n->source(), std::string("'") + key + "' must be a string in quotes");
    out = n->as_string()->get();
    if (where) *where = rd.at(n->source());
    return std::nullopt;
}

std::optional<Error> readPortList(const Reader& rd, const toml::table& t, const char* key,
                                  std::vector<std::string>& out) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    const toml::array* a = n->as_array();
    if (!a) return rd.error(n->source(), std::string("'") + key + "' must be an array of port names, e.g. [\"system:capture_1\"]");
    for (const toml::node& e : *a) {
        if (!e.is_string()) return rd.error(e.source(), std::string("each entry of '") + key + "' must be a \"client:port\" string (\"\" leaves a port unconnected)");
        out.push_back(e.as_string()->get());
    }
    if (out.size() > kMaxIoChannels)
        return rd.error(n->source(), std::string("'") + key + "' lists " + std::to_string(out.size()) +
                                         " ports; the JACK client has at most " + std::to_string(kMaxIoChannels) + " each way");
    return std::nullopt;
}

std::optional<Error> readPortCount(const Reader& rd, const toml::table& t, const char* key, size_t listed,
                                   const char* listKey, std::optional<uint32_t>& out) {
    const toml::node* n = t.get(key);
    if (!n) return std::nullopt;
    const auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
    if (!v || *v < 1 || *v > kMaxIoChannels)
        return rd.error(n->source(), std::string(key) + " must be a whole number of ports from 1 to " +
                                         std::to_string(kMaxIoChannels) + ", e.g. 6");
    if (static_cast<size_t>(*v) < listed)
        return rd.error(n->source(), std::string(key) + " = " + std::to_string(*v) + " but '" + listKey + "' lists " +
                                         std::to_string(listed) + " ports; raise " + key + " or shorten the list");
    out = static_cast<uint32_t>(*v);
    return std::nullopt;
}

std::optional<Error> readEngine(const Reader& rd, const toml::table& t, EngineSpec& e) {
    if (auto err = unknownKey(rd, t, {"sample_rate", "block", "inputs", "outputs", "input_ports", "output_ports", "crossfade_ms",
                               "isolate"},
                              "[engine]"))
        return err;
    if (const toml::node* n = t.get("crossfade_ms")) {
        auto v = n->value<double>();
        if (!v || *v < 0.1 || *v > 1000)
            return rd.error(n->source(), "crossfade_ms must be a number of ms from 0.1 to 1000, e.g. 10");
        e.crossfadeMs = *v;
    }
    if (const toml::node* n = t.get("isolate")) {
        const auto v = n->value<std::string>();
        if (!v || (*v != "none" && *v != "watched" && *v != "all-but-builtins"))
            return rd.error(n->source(), "isolate must be \"none\", \"watched\" or \"all-but-builtins\"");
        e.isolate = *v;
    }
    if (const toml::node* n = t.get("sample_rate")) {
        auto v = n->value<double>();
        if (!v || *v < 8000 || *v > 384000 || std::floor(*v) != *v)
            return rd.error(n->source(), "sample_rate must be a whole number of Hz from 8000 to 384000, e.g. 48000");
        e.sampleRate = *v;
    }
    if (const toml::node* n = t.get("block")) {
        // Only an integer is asked for as one: toml++ converts a float such as 6.7e29 with an overflow.
        const auto v = n->is_integer() ? n->value<int64_t>() : std::nullopt;
        if (!v || *v < 1 || *v > 8192)
            return rd.error(n->source(), "block must be a whole number of frames from 1 to 8192, e.g. 256");
        e.block = static_cast<uint32_t>(*v);
    }
    if (auto err = readPortList(rd, t, "inputs", e.inputs)) return err;
    if (auto err = readPortList(rd, t, "outputs", e.outputs)) return err;
    if (auto err = readPortCount(rd, t, "input_ports", e.inputs.size(), "inputs", e.inputPorts)) return err;
    return readPortCount(rd, t, "output_ports", e.outputs.size(), "outputs", e.outputPorts);
}

/// Endpoint names a connection may use, for did-you-mean.
std::vector<std::string> endpointNames(const Session& s, bool source) {
    std::vector<std::string> names = s.nodeIds();
    names.push_back(source ? "input" : "output");
    return names;
}

std::optional<Error> readConnection(const Reader& rd, const toml::table& t, const Session& s, ConnectionSpec& c) {
    if (auto err = unknownKey(rd, t, {"from", "to", "gain_db", "feedback"}, "[[connection]]")) return err;
    c.where = rd.at(t.source());
    for (const bool source : {true, false}) {
        const char* key = source ? "from" : "to";
        std::string& text = source ? c.from : c.to;
        SourceLocation& where = source ? c.fromWhere : c.toWhere;
        if (!t.get(key))
            return rd.error(t.source(), std::string("[[connection]] needs ") + key + " = \"NODE\" or \"NODE:" +
                                            (source ? "out_1" : "in_1") + "\"");
        if (auto err = readString(rd, t, key, text, &where)) return err;
        auto end = parseEndpoint(text, source);
        if (!end) return Error{where.str() + ": " + end.error()};
        const std::string& node = end.value().node;
        const bool reservedOther = node == (source ? "output" : "input");
        if (reservedOther)
            return Error{where.str() + ": " + quote(node) + (source ? " is where the graph ends; it cannot be a connection's from"
                                                                    : " is where the graph starts; it cannot be a connection's to")};
        if (node != (source ? "input" : "output") && s.findNode(node) < 0)
            return Error{where.str() + ": no node " + quote(node) + didYouMean(node, endpointNames(s, source))};
    }
    if (const toml::node* g = t.get("gain_db")) {
        auto v = g->value<double>();
        if (!(g->is_floating_point() || g->is_integer()) || !v || !std::isfinite(*v) || *v < -120 || *v > 24)
            return rd.error(g->source(), "gain_db must be a number of dB from -120 to 24, e.g. -12.0");
        c.gainDb = *v;
    }
    if (const toml::node* f = t.get("feedback")) {
        if (!f->is_boolean()) return rd.error(f->source(), "feedback must be true or false");
        c.feedback = f->as_boolean()->get();
    }
    return std::nullopt;
}

std::optional<Error> readNode(const Reader& rd, const toml::table& t, NodeSpec& n) {
    static const std::vector<std::string> keys = {"id", "processor", "path", "file", "params", "bypass", "watch", "isolate"};
    if (auto err = unknownKey(rd, t, keys, "[[node]]")) return err;
    n.where = rd.at(t.source());
    if (!t.get("id")) return rd.error(t.source(), "[[node]] needs an id, e.g. id = \"gain\"");
    SourceLocation idWhere;
    if (auto err = readString(rd, t, "id", n.id, &idWhere)) return err;
    if (!isNodeId(n.id)) return Error{idWhere.str() + ": node id " + quote(n.id) + " " + kNodeIdRule};
    if (auto err = readString(rd, t, "processor", n.processor, &n.processorWhere)) return err;
    if (auto err = readString(rd, t, "path", n.path, &n.processorWhere)) return err;
    if (n.processor.empty() == n.path.empty())
        return rd.error(t.source(), "node '" + n.id + "' needs exactly one of processor = \"NAME\" or path = \"FILE.so\"");
    if (auto err = readString(rd, t, "file", n.file, &n.fileWhere)) return err;
    if (n.processor == "player" && n.file.empty())
        return rd.error(t.source(), "node '" + n.id + "': a player needs file = \"SOUND.wav\"");
    if (!n.file.empty() && n.processor != "player")
        return Error{n.fileWhere.str() + ": only a player node takes a file; remove it or set processor = \"player\""};
    if (const toml::node* b = t.get("bypass")) {
        if (!b->is_boolean()) return rd.error(b->source(), "bypass must be true or false");
        n.bypass = b->as_boolean()->get();
    }
    if (const toml::node* b = t.get("isolate")) {
        if (!b->is_boolean()) return rd.error(b->source(), "isolate must be true or false");
        n.isolate = b->as_boolean()->get();
    }
    if (const toml::node* p = t.get("params")) {
        const toml::table* pt = p->as_table();
        if (!pt) return rd.error(p->source(), "params must be a table, e.g. params = { gain_db = -6.0 }");
        for (auto&& [k, v] : *pt) {
            const std::string key(k.str());
            auto value = v.value<double>();
            if (!(v.is_floating_point() || v.is_integer() || v.is_boolean()) || (!value && !v.is_boolean()))
                return rd.error(v.source(), "parameter " + quote(key) + " must be a number");
            if (const auto* i = v.as_integer(); i && i->flags() != toml::value_flags::none)
                return rd.error(v.source(), "parameter " + quote(key) + ": write the value as a decimal number, e.g. 16 or 16.0");
            const double d = v.is_boolean() ? (v.as_boolean()->get() ? 1.0 : 0.0) : *value;
            if (!std::isfinite(d)) return rd.error(v.source(), "parameter " + quote(key) + " must be finite");
            n.params.push_back({key, d, rd.at(k.source())});
        }
        // toml++ tables iterate by key; keep the order the file gave.
        std::sort(n.params.begin(), n.params.end(), [](const ParamSetting& a, const ParamSetting& b) {
            return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
        });
    }
    if (const toml::node* w = t.get("watch")) {
        const toml::table* wt = w->as_table();
        if (!wt) return rd.error(w->source(), "watch must be a table: watch = { source = \"DIR\", build = \"COMMAND\" }");
        if (auto err = unknownKey(rd, *wt, {"source", "build"}, "watch")) return err;
        WatchSpec ws;
        if (auto err = readString(rd, *wt, "source", ws.source)) return err;
        if (auto err = readString(rd, *wt, "build", ws.build)) return err;
        if (ws.source.empty()) return rd.error(w->source(), "watch needs source = \"DIR\"");
        n.watch = ws;
    }
    return std::nullopt;
}

Result<Session> readSession(const Reader& rd, const toml::table& root) {
    Session s;
    if (auto err = unknownKey(rd, root, {"session", "engine", "node", "connection"}, "the session file")) return *err;
    if (const toml::node* n = root.get("session")) {
        const toml::table* t = n->as_table();
        if (!t) return rd.error(n->source(), "[session] must be a table");
        if (auto err = unknownKey(rd, *t, {"name"}, "[session]")) return *err;
        SourceLocation where;
        if (auto err = readString(rd, *t, "name", s.name, &where)) return *err;
        if (!isClientName(s.name))
            return Error{where.str() + ": session name " + quote(s.name) + " must be 1-48 letters, digits, _ or -"};
    }
    if (const toml::node* n = root.get("engine")) {
        const toml::table* t = n->as_table();
        if (!t) return rd.error(n->source(), "[engine] must be a table");
        if (auto err = readEngine(rd, *t, s.engine)) return *err;
    }
    if (const toml::node* n = root.get("node")) {
        const toml::array* a = n->as_array();
        if (!a) return rd.error(n->source(), "nodes are written as [[node]] tables");
        std::set<std::string> seen;
        for (const toml::node& e : *a) {
            const toml::table* t = e.as_table();
            if (!t) return rd.error(e.source(), "each node must be a [[node]] table");
            if (s.nodes.size() == kMaxNodes) return rd.error(e.source(), nodeLimitMessage(a->size()));
            NodeSpec spec;
            if (auto err = readNode(rd, *t, spec)) return *err;
            if (!seen.insert(spec.id).second)
                return Error{spec.where.str() + ": node id " + quote(spec.id) + " is used twice; ids must be unique"};
            if (spec.id == "input" || spec.id == "output")
                return Error{spec.where.str() + ": node id " + quote(spec.id) +
                             " is reserved for the JACK ports of the graph; pick another id"};
            s.nodes.push_back(std::move(spec));
        }
    }
    if (const toml::node* n = root.get("connection")) {
        const toml::array* a = n->as_array();
        if (!a) return rd.error(n->source(), "connections are written as [[connection]] tables");
        for (const toml::node& e : *a) {
            const toml::table* t = e.as_table();
            if (!t) return rd.error(e.source(), "each connection must be a [[connection]] table");
            if (s.connections.size() == kMaxConnections) return rd.error(e.source(), connectionLimitMessage(a->size()));
            ConnectionSpec c;
            if (auto err = readConnection(rd, *t, s, c)) return *err;
            s.connections.push_back(std::move(c));
        }
    }
    return s;
}

void appendPortList(std::string& out, const char* key, const std::vector<std::string>& ports) {
    out += key;
    out += " = [";
    for (size_t i = 0; i < ports.size(); ++i) {
        if (i) out += ", ";
        detail::appendQuoted(out, ports[i]);
    }
    out += "]\n";
}

}  // namespace

namespace detail {

void appendQuoted(std::string& out, std::string_view s) {
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += '"';
}

void appendKey(std::string& out, std::string_view key) {
    if (!key.empty() && std::all_of(key.begin(), key.end(), isBareKeyChar)) out += key;
    else appendQuoted(out, key);
}

std::string formatNumber(double v) {
    if (v == 0) v = 0;  // never write -0.0
    char buf[64];
    // Shortest text that reads back as the same double.
    for (int precision = 6; precision <= 17; ++precision) {
        std::snprintf(buf, sizeof buf, "%.*g", precision, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::string s = buf;
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
}

void appendNode(std::string& out, const NodeSpec& n) {
    out += "[[node]]\nid = ";
    appendQuoted(out, n.id);
    out += n.path.empty() ? "\nprocessor = " : "\npath = ";
    appendQuoted(out, n.path.empty() ? n.processor : n.path);
    out += "\n";
    if (!n.file.empty()) {
        out += "file = ";
        appendQuoted(out, n.file);
        out += "\n";
    }
    if (n.watch) {
        out += "watch = { source = ";
        appendQuoted(out, n.watch->source);
        out += ", build = ";
        appendQuoted(out, n.watch->build);
        out += " }\n";
    }
    out += "params = {";
    for (size_t i = 0; i < n.params.size(); ++i) {
        out += i ? ", " : " ";
        appendKey(out, n.params[i].id);
        out += " = " + formatNumber(n.params[i].value);
    }
    out += n.params.empty() ? "}\n" : " }\n";
    out += std::string("bypass = ") + (n.bypass ? "true" : "false") + "\n";
    if (n.isolate) out += std::string("isolate = ") + (*n.isolate ? "true" : "false") + "\n";
}

void appendConnection(std::string& out, const ConnectionSpec& c) {
    out += "[[connection]]\nfrom = ";
    appendQuoted(out, c.from);
    out += "\nto = ";
    appendQuoted(out, c.to);
    out += "\n";
    if (c.gainDb != 0) out += "gain_db = " + formatNumber(c.gainDb) + "\n";
    if (c.feedback) out += "feedback = true\n";
}

}  // namespace detail

uint32_t EngineSpec::inputCount() const {
    return inputPorts ? *inputPorts : std::max<uint32_t>(2, static_cast<uint32_t>(inputs.size()));
}

uint32_t EngineSpec::outputCount() const {
    return outputPorts ? *outputPorts : std::max<uint32_t>(2, static_cast<uint32_t>(outputs.size()));
}

std::string endpointNode(std::string_view text) { return std::string(text.substr(0, text.find(':'))); }

Result<Endpoint> parseEndpoint(std::string_view text, bool source) {
    Endpoint e;
    const size_t colon = text.find(':');
    e.node = std::string(text.substr(0, colon));
    const std::string shown = printable(text, 80);
    if (e.node.empty())
        return Error{quote(shown) + " names no node; write NODE or NODE:" + (source ? "out_1" : "in_1")};
    if (e.node != "input" && e.node != "output" && !isNodeId(e.node))
        return Error{quote(shown) + ": node id " + quote(printable(e.node, 80)) + " " + kNodeIdRule};
    if (colon == std::string_view::npos) return e;
    const std::string_view port = text.substr(colon + 1);
    // A source's ports are its outputs (out_K); the reserved ends also take their JACK names.
    const bool asOut = port.substr(0, 4) == "out_", asIn = port.substr(0, 3) == "in_";
    const bool allowed = source ? (asOut || (e.node == "input" && asIn)) : (asIn || (e.node == "output" && asOut));
    const std::string_view digits = port.substr(asOut ? 4 : 3);
    const std::string want = source ? "out_K (an output port)" : "in_K (an input port)";
    if (!allowed || digits.empty() || digits.size() > 2 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return Error{quote(shown) + ": the port of a connection's " + (source ? "from" : "to") + " is " + want +
                     ", K from 1 to " + std::to_string(kMaxIoChannels)};
    const int k = std::stoi(std::string(digits));
    if (k < 1 || k > static_cast<int>(kMaxIoChannels))
        return Error{quote(shown) + ": port numbers run from 1 to " + std::to_string(kMaxIoChannels)};
    e.port = k - 1;
    return e;
}

std::string SourceLocation::str() const {
    if (line == 0) return file;
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

int Session::findNode(std::string_view id) const {
    for (size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i].id == id) return static_cast<int>(i);
    return -1;
}

std::vector<std::string> Session::nodeIds() const {
    std::vector<std::string> ids;
    for (const auto& n : nodes) ids.push_back(n.id);
    return ids;
}

std::string checkText(std::string_view text) {
    uint32_t line = 1, column = 1;
    auto bad = [&](const std::string& what) {
        return std::to_string(line) + ":" + std::to_string(column) + ": " + what;
    };
    for (size_t i = 0; i < text.size();) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == 0) return bad("NUL byte; a session file is UTF-8 text");
        const size_t lead = utf8LeadLength(c);
        if (lead == 0 || i + lead > text.size()) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", c);
            return bad(std::string("invalid UTF-8 byte ") + hex + "; save the file as UTF-8");
        }
        const size_t len = utf8SequenceLength(text.substr(i));
        if (len == 0) return bad("invalid UTF-8 sequence; save the file as UTF-8");
        if (c == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
        i += len;
    }
    return {};
}

namespace detail {

std::optional<Error> unknownKey(const TomlReader& rd, const toml::table& t, const std::vector<std::string>& allowed,
                                const std::string& where) {
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
            return rd.error(k.source(), "unknown key " + quote(key) + " in " + where + didYouMean(key, allowed));
    }
    return std::nullopt;
}

Result<Session> parseSessionTree(std::string_view text, const std::string& sourceName, toml::table& root) {
    if (std::string bad = checkText(text); !bad.empty()) return Error{sourceName + ":" + bad};
    Reader rd{sourceName};
    try {
        root = toml::parse(text, sourceName);
    } catch (const toml::parse_error& e) {
        return Error{rd.at(e.source()).str() + ": " + printable(e.description(), 200)};  // toml++ may quote a newline
    }
    auto session = readSession(rd, root);
    if (session) session->sourceText = text;
    return session;
}

}  // namespace detail

Result<Session> parseSession(std::string_view text, const std::string& sourceName) {
    toml::table root;
    return detail::parseSessionTree(text, sourceName, root);
}

Result<Session> loadSession(const std::string& path) {
    auto text = files::readRegularFile(path, files::kMaxTextFileBytes, "session file");
    if (!text) return Error{text.error()};
    auto s = parseSession(text.value(), path);
    if (s) s->path = path;
    return s;
}

std::string formatSession(const Session& s) {
    std::string out = "[session]\nname = ";
    detail::appendQuoted(out, s.name);
    out += "\n\n[engine]\n";
    if (s.engine.sampleRate) out += "sample_rate = " + std::to_string(static_cast<long>(*s.engine.sampleRate)) + "\n";
    if (s.engine.block) out += "block = " + std::to_string(*s.engine.block) + "\n";
    if (s.engine.crossfadeMs) out += "crossfade_ms = " + detail::formatNumber(*s.engine.crossfadeMs) + "\n";
    if (s.engine.isolate) {
        out += "isolate = ";
        detail::appendQuoted(out, *s.engine.isolate);
        out += "\n";
    }
    appendPortList(out, "inputs", s.engine.inputs);
    appendPortList(out, "outputs", s.engine.outputs);
    if (s.engine.inputPorts) out += "input_ports = " + std::to_string(*s.engine.inputPorts) + "\n";
    if (s.engine.outputPorts) out += "output_ports = " + std::to_string(*s.engine.outputPorts) + "\n";
    for (const NodeSpec& n : s.nodes) {
        out += "\n";
        detail::appendNode(out, n);
    }
    for (const ConnectionSpec& c : s.connections) {
        out += "\n";
        detail::appendConnection(out, c);
    }
    return out;
}

}  // namespace rackterm::config
