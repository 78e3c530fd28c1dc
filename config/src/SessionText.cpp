// sessionText: the user's session file edited as little as possible so that
// it describes the session now. Positions come from toml++ (3.3 gives every
// key and value, inline tables included, a begin and an end one past the last
// character; columns count code points, a leading BOM not counted). Every
// edit is a replacement of a byte range of the old text; the result is parsed
// back and must give the same session, or the file is written anew.
#include <rackterm/common/Text.hpp>
#include <rackterm/config/Session.hpp>

#include "Format.hpp"

#include <algorithm>
#include <optional>
#include <tuple>

namespace rackterm::config {

namespace {

using detail::appendKey;
using detail::formatNumber;

/// Byte offsets of toml++ positions in one text.
class TextMap {
public:
    explicit TextMap(std::string_view text) : text_(text) {
        starts_.push_back(text.substr(0, 3) == "\xef\xbb\xbf" ? 3 : 0);
        for (size_t i = 0; i < text.size(); ++i)
            if (text[i] == '\n') starts_.push_back(i + 1);
    }

    /// Start of 1-based line `line`; the text's size past the last line.
    size_t lineStart(size_t line) const { return line - 1 < starts_.size() ? starts_[line - 1] : text_.size(); }
    std::string_view line(size_t line) const {
        return text_.substr(lineStart(line), lineStart(line + 1) - lineStart(line));
    }
    size_t offset(const toml::source_position& p) const {
        size_t i = lineStart(p.line);
        for (uint32_t c = 1; c < p.column && i < text_.size(); ++c)
            i += std::max<size_t>(1, utf8LeadLength(static_cast<unsigned char>(text_[i])));
        return std::min(i, text_.size());
    }
    char at(const toml::source_position& p) const {
        const size_t i = offset(p);
        return i < text_.size() ? text_[i] : '\0';
    }
    /// The first of the comment lines directly above line `header`, or `header` itself.
    size_t blockLine(size_t header) const {
        while (header > 1 && isComment(line(header - 1))) --header;
        return header;
    }
    size_t blockStart(size_t header) const { return lineStart(blockLine(header)); }
    bool isBlank(size_t l) const { return line(l).find_first_not_of(" \t\r\n") == std::string_view::npos; }

private:
    static bool isComment(std::string_view l) {
        const size_t i = l.find_first_not_of(" \t");
        return i != std::string_view::npos && l[i] == '#';
    }
    std::string_view text_;
    std::vector<size_t> starts_;
};

/// Replace bytes [begin, end) of the old text with `text`; begin == end inserts.
struct Edit {
    size_t begin = 0;
    size_t end = 0;
    std::string text;
    bool ownLine = false;  ///< a newline goes first when the text before does not end with one
};

/// The old text with `edits` applied; nullopt when two of them overlap.
/// `newline` ends the old text's last line when an ownLine edit follows it.
std::optional<std::string> applyEdits(std::string_view old, std::vector<Edit> edits, std::string_view newline) {
    std::stable_sort(edits.begin(), edits.end(),
                     [](const Edit& a, const Edit& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    std::string out;
    size_t pos = 0;
    for (const Edit& e : edits) {
        if (e.begin < pos || e.end < e.begin) return std::nullopt;
        out.append(old.substr(pos, e.begin - pos));
        if (e.ownLine && !out.empty() && out.back() != '\n') out += newline;
        out += e.text;
        pos = e.end;
    }
    out.append(old.substr(pos));
    return out;
}

std::string withCrLf(std::string_view text) {
    std::string out;
    for (const char c : text) out += c == '\n' ? "\r\n" : std::string(1, c);
    return out;
}

bool sameWatch(const std::optional<WatchSpec>& a, const std::optional<WatchSpec>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->source == b->source && a->build == b->build);
}

/// Same processor, module, file and watch: the node can keep its table.
bool sameKind(const NodeSpec& a, const NodeSpec& b) {
    return a.id == b.id && a.processor == b.processor && a.path == b.path && a.file == b.file &&
           sameWatch(a.watch, b.watch) && a.isolate == b.isolate;
}

bool sameEngine(const EngineSpec& a, const EngineSpec& b) {
    return a.sampleRate == b.sampleRate && a.block == b.block && a.inputs == b.inputs && a.outputs == b.outputs &&
           a.inputPorts == b.inputPorts && a.outputPorts == b.outputPorts && a.crossfadeMs == b.crossfadeMs &&
           a.isolate == b.isolate;
}

/// The same connection (a changed level is an edit of it, not another one).
bool sameEnds(const ConnectionSpec& a, const ConnectionSpec& b) {
    return a.from == b.from && a.to == b.to && a.feedback == b.feedback;
}

const ParamSetting* findParam(const std::vector<ParamSetting>& params, std::string_view id) {
    for (const ParamSetting& p : params)
        if (p.id == id) return &p;
    return nullptr;
}

/// Everything a save keeps; params compared as a set.
bool sameSession(const Session& a, const Session& b) {
    if (a.name != b.name || !sameEngine(a.engine, b.engine) || a.nodes.size() != b.nodes.size() ||
        a.connections.size() != b.connections.size())
        return false;
    for (size_t i = 0; i < a.connections.size(); ++i)
        if (!sameEnds(a.connections[i], b.connections[i]) || a.connections[i].gainDb != b.connections[i].gainDb)
            return false;
    for (size_t i = 0; i < a.nodes.size(); ++i) {
        const NodeSpec& x = a.nodes[i];
        const NodeSpec& y = b.nodes[i];
        if (!sameKind(x, y) || x.bypass != y.bypass || x.params.size() != y.params.size()) return false;
        for (const ParamSetting& p : x.params) {
            const ParamSetting* q = findParam(y.params, p.id);
            if (!q || q->value != p.value) return false;
        }
    }
    return true;
}

/// One `KEY = VALUE` of a params table, as byte offsets of the old text.
struct Entry {
    std::string id;
    size_t keyBegin, valueBegin, valueEnd;
    size_t keyLine, valueEndLine;
};

/// Builds the edits that turn the old text (`base`) into the text of `now`.
/// Each step returns false after setting why_ when it has no place in the text.
class Editor {
public:
    Editor(const Session& base, const toml::table& root, const Session& now)
        : base_(base), root_(root), now_(now), map_(base.sourceText) {}

    std::optional<std::string> run() {
        if (!sameEngine(base_.engine, now_.engine)) return fail("[engine] changed");
        if (base_.name != now_.name && !editName()) return std::nullopt;
        const toml::array* nodes = root_["node"].as_array();
        std::vector<size_t> kept;  // base index of each kept node, in base order
        for (size_t i = 0; i < base_.nodes.size(); ++i) {
            const int n = now_.findNode(base_.nodes[i].id);
            if (n >= 0 && sameKind(base_.nodes[i], now_.nodes[static_cast<size_t>(n)])) kept.push_back(i);
            else if (!removeNode(*(*nodes)[i].as_table())) return std::nullopt;
        }
        size_t next = 0;  // the next kept node expected in now's order
        for (size_t n = 0; n < now_.nodes.size(); ++n) {
            const int b = base_.findNode(now_.nodes[n].id);
            if (b >= 0 && sameKind(base_.nodes[static_cast<size_t>(b)], now_.nodes[n])) {
                if (next == kept.size() || kept[next++] != static_cast<size_t>(b))
                    return fail("the nodes are in a new order");
                const toml::table& t = *(*nodes)[static_cast<size_t>(b)].as_table();
                if (!editParams(t, base_.nodes[static_cast<size_t>(b)], now_.nodes[n]) ||
                    !editBypass(t, now_.nodes[n]))
                    return std::nullopt;
            } else if (!addNode(n, next < kept.size() ? (*nodes)[kept[next]].as_table() : nullptr)) {
                return std::nullopt;
            }
        }
        if (!editConnections()) return std::nullopt;
        return apply();
    }

    const std::string& why() const { return why_; }

private:
    std::optional<std::string> apply() {
        const size_t first = base_.sourceText.find('\n');
        const bool crlf = first != std::string::npos && first > 0 && base_.sourceText[first - 1] == '\r';
        if (crlf)
            for (Edit& e : edits_) e.text = withCrLf(e.text);  // new lines end as the file's lines do
        auto text = applyEdits(base_.sourceText, edits_, crlf ? "\r\n" : "\n");
        if (!text) return fail("two edits overlap");
        return text;
    }

    std::nullopt_t fail(std::string why) {
        why_ = std::move(why);
        return std::nullopt;
    }
    bool refuse(std::string why) {
        why_ = std::move(why);
        return false;
    }
    size_t offset(const toml::source_position& p) const { return map_.offset(p); }
    void replace(const toml::node& v, std::string text) {
        edits_.push_back({offset(v.source().begin), offset(v.source().end), std::move(text), false});
    }
    void insertLine(size_t afterLine, std::string text) {
        const size_t at = map_.lineStart(afterLine + 1);
        edits_.push_back({at, at, std::move(text), true});
    }

    /// A table written under its own header line ([[node]], [node.params]).
    bool isHeader(const toml::table& t) const { return !t.is_inline() && map_.at(t.source().begin) == '['; }

    static std::string inlineNode(const toml::table& node) {
        return "node '" + node["id"].value_or(std::string()) + "' is written as an inline table, not under [[node]]";
    }

    /// The last line of `v`, leaving out sub-tables with their own header.
    size_t lastLine(const toml::node& v) const {
        const toml::table* t = v.as_table();
        if (!t || t->is_inline()) return v.source().end.line;
        size_t last = 0;
        for (auto&& [k, child] : *t)
            if (!(child.is_table() && isHeader(*child.as_table()))) last = std::max(last, lastLine(child));
        return last;
    }

    /// Start of the next top-level table's block after line `header`, or the text's end.
    size_t nextBlock(size_t header) const {
        size_t next = 0;
        auto consider = [&](const toml::node* n) {
            const toml::table* t = n ? n->as_table() : nullptr;
            const size_t line = t && isHeader(*t) ? t->source().begin.line : 0;
            if (line > header && (next == 0 || line < next)) next = line;
        };
        consider(root_.get("session"));
        consider(root_.get("engine"));
        for (const char* key : {"node", "connection"})
            if (const toml::array* tables = root_[key].as_array())
                for (const toml::node& n : *tables) consider(&n);
        return next ? map_.blockStart(next) : base_.sourceText.size();
    }

    bool editName() {
        const toml::node* name = root_["session"]["name"].node();
        if (!name) return refuse("the session name changed and the file has no name key");
        std::string quoted;
        detail::appendQuoted(quoted, now_.name);
        replace(*name, quoted);
        return true;
    }

    bool removeNode(const toml::table& t) {
        if (!isHeader(t)) return refuse(inlineNode(t));
        removeBlock(t);
        return true;
    }

    /// A table under its own header goes with the comment lines above it.
    void removeBlock(const toml::table& t) {
        const size_t header = t.source().begin.line;
        size_t first = map_.blockLine(header);
        const size_t end = nextBlock(header);
        if (end == base_.sourceText.size())  // the last block: no blank lines left at the end
            while (first > 1 && map_.isBlank(first - 1)) --first;
        edits_.push_back({map_.lineStart(first), end, "", false});
    }

    /// `node` of now before the block of the kept node `before`, or at the end.
    bool addNode(size_t node, const toml::table* before) {
        std::string text;
        if (!before) {  // a [[node]] cannot follow `node = [ ... ]`
            const toml::array* nodes = root_["node"].as_array();
            if (nodes && !nodes->empty() && !isHeader(*nodes->back().as_table()))
                return refuse(inlineNode(*nodes->back().as_table()));
            text = "\n";
            detail::appendNode(text, now_.nodes[node]);
            edits_.push_back({base_.sourceText.size(), base_.sourceText.size(), text, true});
            return true;
        }
        if (!isHeader(*before)) return refuse(inlineNode(*before));
        detail::appendNode(text, now_.nodes[node]);
        text += "\n";
        const size_t at = map_.blockStart(before->source().begin.line);
        edits_.push_back({at, at, text, false});
        return true;
    }

    /// The node's own last key line, where new keys go.
    std::optional<size_t> keyLine(const toml::table& node) {
        if (!isHeader(node)) {
            why_ = inlineNode(node);
            return std::nullopt;
        }
        return lastLine(node);
    }

    std::vector<Entry> entries(const toml::table& params) const {
        std::vector<Entry> out;
        for (auto&& [k, v] : params)
            out.push_back({std::string(k.str()), offset(k.source().begin), offset(v.source().begin),
                           offset(v.source().end), k.source().begin.line, v.source().end.line});
        std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.keyBegin < b.keyBegin; });
        return out;
    }

    static std::string assignment(const ParamSetting& p) {
        std::string s;
        appendKey(s, p.id);
        return s + " = " + formatNumber(p.value);
    }

    bool editParams(const toml::table& node, const NodeSpec& was, const NodeSpec& is) {
        std::vector<ParamSetting> added;
        for (const ParamSetting& p : is.params)
            if (!findParam(was.params, p.id)) added.push_back(p);
        const toml::node* p = node.get("params");
        if (!p) {
            if (added.empty()) return true;
            const auto line = keyLine(node);
            if (!line) return false;
            std::string text = "params = { ";
            for (size_t i = 0; i < added.size(); ++i) text += (i ? ", " : "") + assignment(added[i]);
            insertLine(*line, text + " }\n");
            return true;
        }
        const toml::table& t = *p->as_table();
        if (t.is_inline()) return editInline(t, was, is, added);
        const std::vector<Entry> old = entries(t);
        for (const Entry& e : old) {
            const ParamSetting* now = findParam(is.params, e.id);
            if (now && now->value != findParam(was.params, e.id)->value)
                edits_.push_back({e.valueBegin, e.valueEnd, formatNumber(now->value), false});
            if (now) continue;
            if (!isHeader(t)) return refuse("node '" + is.id + "' writes its parameters as dotted keys");
            edits_.push_back({map_.lineStart(e.keyLine), map_.lineStart(e.valueEndLine + 1), "", false});
        }
        if (added.empty()) return true;
        if (!isHeader(t)) return refuse("node '" + is.id + "' writes its parameters as dotted keys");
        size_t line = t.source().begin.line;
        for (const Entry& e : old) line = std::max(line, e.valueEndLine);
        std::string text;
        for (const ParamSetting& a : added) text += assignment(a) + "\n";
        insertLine(line, text);
        return true;
    }

    /// `params = { ... }` rebuilt from its own pieces: the spaces and commas
    /// between kept entries, their keys and unchanged values stay as written.
    bool editInline(const toml::table& t, const NodeSpec& was, const NodeSpec& is,
                    const std::vector<ParamSetting>& added) {
        const std::string_view text = base_.sourceText;
        const size_t open = offset(t.source().begin), close = offset(t.source().end);
        if (close <= open + 1 || text[open] != '{' || text[close - 1] != '}')
            return refuse("the params table of node '" + is.id + "' could not be located");
        const std::vector<Entry> old = entries(t);
        std::string body;
        bool changed = !added.empty();
        const Entry* previous = nullptr;  // the last kept entry
        for (const Entry& e : old) {
            const ParamSetting* now = findParam(is.params, e.id);
            changed = changed || !now || now->value != findParam(was.params, e.id)->value;
            if (!now) continue;
            if (previous) body += text.substr(previous->valueEnd, (previous + 1)->keyBegin - previous->valueEnd);
            body += text.substr(e.keyBegin, e.valueBegin - e.keyBegin);
            const std::string_view value = text.substr(e.valueBegin, e.valueEnd - e.valueBegin);
            body += now->value == findParam(was.params, e.id)->value ? std::string(value) : formatNumber(now->value);
            previous = &e;
        }
        if (!changed) return true;
        for (const ParamSetting& a : added) body += (body.empty() ? "" : ", ") + assignment(a);
        std::string rebuilt = "{}";
        if (!body.empty() && old.empty()) rebuilt = "{ " + body + " }";
        else if (!body.empty())  // the spaces after '{' and before '}' as written
            rebuilt = std::string(text.substr(open, old.front().keyBegin - open)) + body +
                      std::string(text.substr(old.back().valueEnd, close - old.back().valueEnd));
        edits_.push_back({open, close, rebuilt, false});
        return true;
    }

    /// Kept connections (same ends, in the same order) stay where they are
    /// with a changed level replaced; removed ones go with their comments;
    /// new ones follow the last kept or removed connection table (the end of
    /// the file when there is none).
    bool editConnections() {
        const toml::array* tables = root_["connection"].as_array();
        const auto& was = base_.connections;
        const auto& is = now_.connections;
        size_t next = 0;  // next connection of now to match
        std::vector<bool> keptNow(is.size(), false);
        for (size_t i = 0; i < was.size(); ++i) {
            const toml::table& t = *(*tables)[i].as_table();
            if (!isHeader(t)) return refuse("a connection is written as an inline table, not under [[connection]]");
            size_t j = next;
            while (j < is.size() && !sameEnds(was[i], is[j])) ++j;
            if (j == is.size()) {
                removeBlock(t);
                continue;
            }
            for (size_t k = next; k < j; ++k) {  // new ones before a kept one go right before it
                insertConnectionBefore(t, is[k]);
                keptNow[k] = true;
            }
            keptNow[j] = true;
            next = j + 1;
            if (is[j].gainDb != was[i].gainDb) {
                if (const toml::node* g = t.get("gain_db")) replace(*g, formatNumber(is[j].gainDb));
                else insertLine(lastLine(t), "gain_db = " + formatNumber(is[j].gainDb) + "\n");
            }
        }
        std::string text;
        for (size_t k = 0; k < is.size(); ++k) {
            if (keptNow[k]) continue;
            if (k < next) return refuse("the connections are in a new order");
            text += "\n";
            detail::appendConnection(text, is[k]);
        }
        if (!text.empty()) edits_.push_back({base_.sourceText.size(), base_.sourceText.size(), text, true});
        return true;
    }

    void insertConnectionBefore(const toml::table& t, const ConnectionSpec& c) {
        std::string text;
        detail::appendConnection(text, c);
        text += "\n";
        const size_t at = map_.blockStart(t.source().begin.line);
        edits_.push_back({at, at, text, false});
    }

    bool editBypass(const toml::table& node, const NodeSpec& is) {
        if (const toml::node* b = node.get("bypass")) {
            if (b->as_boolean()->get() != is.bypass) replace(*b, is.bypass ? "true" : "false");
            return true;
        }
        if (!is.bypass) return true;
        const auto line = keyLine(node);
        if (!line) return false;
        insertLine(*line, "bypass = true\n");
        return true;
    }

    const Session& base_;
    const toml::table& root_;
    const Session& now_;
    TextMap map_;
    std::vector<Edit> edits_;
    std::string why_;
};

}  // namespace

SessionText sessionText(const Session& session) {
    if (session.sourceText.empty()) return {formatSession(session), false, ""};
    auto rewritten = [&](std::string why) { return SessionText{formatSession(session), false, std::move(why)}; };
    toml::table root;
    auto base = detail::parseSessionTree(session.sourceText, "the saved text", root);
    if (!base) return rewritten("the file's text no longer parses: " + base.error());
    Editor editor(base.value(), root, session);
    auto text = editor.run();
    if (!text) return rewritten(editor.why());
    auto again = parseSession(*text, "the edited text");
    if (!again || !sameSession(again.value(), session)) return rewritten("the edited text did not read back the same");
    return {std::move(*text), true, ""};
}

}  // namespace rackterm::config
