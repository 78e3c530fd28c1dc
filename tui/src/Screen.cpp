#include "Screen.hpp"

#include "GraphView.hpp"

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Values.hpp>

#include <curses.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace rackterm::tui {

namespace {

constexpr float kMeterFloorDb = -60.0f;

/// Write `text` at (y, x), cut to `width` columns (ASCII-safe cut).
void put(int y, int x, const std::string& text, int width) {
    if (width <= 0 || y < 0 || y >= LINES) return;
    mvaddnstr(y, x, text.c_str(), std::min<int>(width, static_cast<int>(text.size())));
}

std::string fit(std::string s, size_t width) {
    if (s.size() > width) s = width > 1 ? s.substr(0, width - 1) + "~" : s.substr(0, width);
    return s + std::string(width - s.size(), ' ');
}

std::string dbText(float db) {
    char buf[16];
    if (db <= -119.0f) return "  -inf";
    std::snprintf(buf, sizeof buf, "%6.1f", static_cast<double>(db));
    return buf;
}

/// A meter of `width` cells: RMS solid, peak lighter, hold marker, for -60..0 dBFS.
void drawMeter(int y, int x, int width, const app::NodeMeter& m, const View& v) {
    auto cells = [&](float db) {
        return std::clamp(static_cast<int>(std::lround((db - kMeterFloorDb) / -kMeterFloorDb * static_cast<float>(width))), 0, width);
    };
    const float peak = std::max(m.peakDb[0], m.peakDb[1]);
    const float rms = std::max(m.rmsDb[0], m.rmsDb[1]);
    const float hold = std::max(m.holdDb[0], m.holdDb[1]);
    const int r = cells(rms), p = cells(peak), h = cells(hold);
    for (int i = 0; i < width; ++i) {
        const float cellDb = kMeterFloorDb + static_cast<float>(i) / static_cast<float>(width) * -kMeterFloorDb;
        short pair = cellDb > -3.0f ? kPairHot : cellDb > -12.0f ? kPairWarn : kPairOk;
        const char* glyph;
        if (i < r) glyph = v.unicode ? "\u2588" : "#";
        else if (i < p) glyph = v.unicode ? "\u2592" : "=";
        else if (i == h - 1 && h > 0) glyph = "|";
        else {
            glyph = v.unicode ? "\u00b7" : "-";
            pair = kPairDim;
        }
        if (v.color) attron(COLOR_PAIR(pair));
        mvaddstr(y, x + i, glyph);
        if (v.color) attroff(COLOR_PAIR(pair));
    }
}

void drawStatus(const app::Runtime& rt, const app::EngineStatus& st, const View& v) {
    char buf[512];
    if (st.serverLost)  // edits go on; the rack plays again when the server is back
        std::snprintf(buf, sizeof buf, " rackterm  %s | JACK server lost - waiting for it | xruns %llu | %s",
                      rt.name().c_str(), static_cast<unsigned long long>(st.xruns), rt.dirty() ? "[+] unsaved" : "saved");
    else
        std::snprintf(buf, sizeof buf, " rackterm  %s | %.0f Hz %u fr | DSP %4.1f%% | xruns %llu | %s", rt.name().c_str(),
                      st.sampleRate, st.blockFrames, static_cast<double>(st.dspLoad),
                      static_cast<unsigned long long>(st.xruns), rt.dirty() ? "[+] unsaved" : "saved");
    if (v.color) attron(COLOR_PAIR(kPairStatus));
    else attron(A_REVERSE);
    put(0, 0, fit(buf, static_cast<size_t>(COLS)), COLS);
    if (v.color) attroff(COLOR_PAIR(kPairStatus));
    else attroff(A_REVERSE);
}

/// Per node id, what feeds it: "eq (-12 dB), fb~" (a graph session only).
std::map<std::string, std::string> inputsOf(const app::Runtime& rt) {
    std::map<std::string, std::string> out;
    for (const auto& c : rt.connections()) {
        std::string& text = out[nodeOf(c.to)];
        text += (text.empty() ? "" : ", ") + nodeOf(c.from);
        if (c.feedback) text += "*";  // fed back: one block late
        if (c.gainDb != 0) {
            char buf[24];
            std::snprintf(buf, sizeof buf, " (%g dB)", c.gainDb);
            text += buf;
        }
    }
    return out;
}

/// The rack: one line per node in processing order (in a graph, with what
/// feeds it), then the master. Returns the next free row.
int drawRack(const app::Runtime& rt, const View& v, int top, int rows) {
    const bool graph = !rt.isChain();
    const int inputsWidth = graph ? std::min(24, std::max(8, COLS / 5)) : 0;
    const int meterX = 23 + (graph ? inputsWidth + 4 : 0);
    const int meterWidth = std::max(10, COLS - 46 - (graph ? inputsWidth + 4 : 0));
    const std::vector<size_t> order = rt.processingOrder();
    const std::map<std::string, std::string> inputs = graph ? inputsOf(rt) : std::map<std::string, std::string>{};
    const size_t selected = static_cast<size_t>(std::find(order.begin(), order.end(), v.node) - order.begin());
    const size_t first = selected >= static_cast<size_t>(rows - 1) ? selected - static_cast<size_t>(rows - 2) : 0;
    int y = top;
    for (size_t i = first; i < order.size() && y < top + rows - 1; ++i, ++y) {
        const size_t n = order[i];
        const app::NodeMeter& m = rt.meters().nodes[n];
        const bool sel = n == v.node;
        if (sel) attron(A_BOLD);
        std::string label = std::string(sel ? ">" : " ") + fit(rt.nodeId(n), 10) + " " + fit(rt.descriptor(n).id, 10);
        if (graph) {
            const auto it = inputs.find(rt.nodeId(n));
            label += " <- " + fit(it == inputs.end() ? "(nothing)" : it->second, static_cast<size_t>(inputsWidth));
        }
        put(y, 0, label, COLS);
        if (sel) attroff(A_BOLD);
        drawMeter(y, meterX, meterWidth, m, v);
        // An isolated node's child that crashed, is late, restarts or gave up
        // shows instead of the bypass mark (it plays dry meanwhile).
        const std::string fault = rt.nodeFault(n);
        const char* mark = rt.bypassed(n) ? "BYP" : "   ";
        if (fault.rfind("crashed", 0) == 0) mark = "CRASH";
        else if (fault.rfind("late", 0) == 0 || fault == "stuck") mark = "LATE";
        else if (fault == "restarting") mark = "RESTART";
        else if (fault == "failed") mark = "FAILED";
        // The lifecycle state when the node is not simply active (docs/packages.md).
        if (const std::string state = rt.nodeState(n); state == "quiescing") mark = "QUIESCING";
        else if (state == "unloaded") mark = "UNLOADED";
        char tail[64];
        std::snprintf(tail, sizeof tail, " %s dB %4.1f%% %s", dbText(std::max(m.peakDb[0], m.peakDb[1])).c_str(),
                      static_cast<double>(m.cpuShare * 100.0f), mark);
        put(y, meterX + meterWidth, tail, COLS - meterX - meterWidth);
    }
    const app::NodeMeter& master = rt.meters().master;
    put(y, 0, fit(" master", static_cast<size_t>(meterX - 1)), COLS);
    drawMeter(y, meterX, meterWidth, master, v);
    char tail[48];
    std::snprintf(tail, sizeof tail, " %s dB", dbText(std::max(master.peakDb[0], master.peakDb[1])).c_str());
    put(y, meterX + meterWidth, tail, COLS - meterX - meterWidth);
    return y + 1;
}

/// The graph view in `rows` rows from `top`: a title line, then the drawing from the scroll position.
int drawGraphPane(const app::Runtime& rt, const View& v, int top, int rows) {
    if (rows <= 1) return top;
    const GraphCanvas canvas = drawGraph(rt, v.unicode);
    attron(A_UNDERLINE);
    put(top, 0,
        fit(" graph: " + std::to_string(rt.nodeCount()) + " nodes, " + std::to_string(rt.connections().size()) +
                " connections   h j k l scroll, g closes",
            static_cast<size_t>(COLS)),
        COLS);
    attroff(A_UNDERLINE);
    const size_t y0 = std::min(v.graphY, canvas.rows.empty() ? 0 : canvas.rows.size() - 1);
    int y = top + 1;
    for (size_t r = y0; r < canvas.rows.size() && y < top + rows; ++r, ++y) {
        const std::string text = canvas.line(r, v.graphX, static_cast<size_t>(COLS));
        mvaddstr(y, 0, text.c_str());
    }
    return top + rows;
}

int drawParams(const app::Runtime& rt, const View& v, int top, int rows) {
    if (rt.nodeCount() == 0 || rows <= 1) return top;
    const auto& d = rt.descriptor(v.node);
    attron(A_UNDERLINE);
    const std::string fault = rt.nodeFault(v.node);
    put(top, 0, fit(" " + rt.nodeId(v.node) + " (" + d.name + ") " + rt.nodeState(v.node) + (rt.bypassed(v.node) ? ", bypassed" : "") +
                        (rt.nodeIsolated(v.node) ? " isolated" : "") + (fault.empty() ? "" : ": " + fault),
                    static_cast<size_t>(COLS)),
        COLS);
    attroff(A_UNDERLINE);
    const int barWidth = std::max(8, COLS - 42);
    const size_t visible = static_cast<size_t>(rows - 1);
    const size_t first = v.param >= visible ? v.param - visible + 1 : 0;
    int y = top + 1;
    for (size_t p = first; p < d.param_count && y < top + rows; ++p, ++y) {
        const auto& info = d.params[p];
        const float value = rt.value(v.node, p);
        const bool sel = p == v.param;
        if (sel) attron(A_REVERSE);
        put(y, 0, std::string(sel ? ">" : " ") + fit(info.id, 14) + " " + fit(app::formatValue(info, value), 12) + " ",
            COLS);
        if (sel) attroff(A_REVERSE);
        const int fill = static_cast<int>(std::lround(app::rangePosition(info, value) * static_cast<float>(barWidth)));
        std::string bar = "[";
        for (int i = 0; i < barWidth; ++i) bar += i < fill ? (v.unicode ? "\u2500" : "=") : " ";
        bar += "]";
        if (fill > 0 && v.unicode) {
            // replace the last filled cell by a knob
            size_t pos = 1 + static_cast<size_t>(fill - 1) * 3;
            bar.replace(pos, 3, "\u25cf");
        } else if (fill > 0) {
            bar[static_cast<size_t>(fill)] = '|';
        }
        mvaddstr(y, 29, bar.c_str());
    }
    // A plugin's control outputs (gain reduction, latency): read-only, live, below the parameters.
    if (first + visible > d.param_count)
        for (const auto& o : rt.controlOutputs(v.node)) {
            if (y >= top + rows) break;
            char value[48];
            std::snprintf(value, sizeof value, "%.4g%s%s", static_cast<double>(o.value), o.unit.empty() ? "" : " ",
                          o.unit.c_str());
            attron(A_DIM);
            put(y, 0, " " + fit(o.id, 14) + " " + fit(value, 12) + " (output, read-only)", COLS);
            attroff(A_DIM);
            ++y;
        }
    return y;
}

void drawLog(const std::deque<std::string>& log, int top, int rows, int scroll) {
    if (rows <= 0) return;
    const size_t back = std::min(static_cast<size_t>(std::max(0, scroll)), log.size());
    if (rows > 1) {
        attron(A_DIM);
        put(top, 0, fit(back ? "-- log (" + std::to_string(back) + " lines back; End: newest)" : "-- log", static_cast<size_t>(COLS)), COLS);
        attroff(A_DIM);
        ++top;
        --rows;
    }
    const size_t shown = log.size() - back;
    const size_t n = std::min(shown, static_cast<size_t>(rows));
    for (size_t i = 0; i < n; ++i) {
        std::string line = log[shown - n + i];
        for (char& c : line)
            if (static_cast<unsigned char>(c) < 0x20) c = ' ';
        put(top + static_cast<int>(i), 0, fit(line, static_cast<size_t>(COLS)), COLS);
    }
}

void drawHelp(const View& v) {
    const int width = std::min(COLS - 4, 76);
    int y = 2;
    auto line = [&](const std::string& s) {
        if (y >= LINES - 2) return;
        put(y++, 2, fit(s, static_cast<size_t>(width)), width);
    };
    if (v.color) attron(COLOR_PAIR(kPairStatus));
    else attron(A_REVERSE);
    line("Keys");
    for (const auto& [keys, help] : v.keyHelp) line("  " + fit(keys, 18) + " " + help);
    line("");
    line("Commands (:w :q :wq :x :q! as in vim)");
    for (const auto& c : app::commandTable())
        if (!(c.flags & app::kAlias)) line("  " + fit(c.usage, 36) + " " + c.help);
    if (v.color) attroff(COLOR_PAIR(kPairStatus));
    else attroff(A_REVERSE);
}

}  // namespace

void initColors(bool color) {
    if (!color) return;
    start_color();
    use_default_colors();
    init_pair(kPairOk, COLOR_GREEN, -1);
    init_pair(kPairWarn, COLOR_YELLOW, -1);
    init_pair(kPairHot, COLOR_RED, -1);
    init_pair(kPairStatus, COLOR_BLACK, COLOR_CYAN);
    init_pair(kPairError, COLOR_RED, -1);
    init_pair(kPairDim, COLOR_BLUE, -1);
}

void drawScreen(const app::Runtime& rt, const app::EngineStatus& status, const View& v,
                const std::deque<std::string>& log) {
    erase();
    drawStatus(rt, status, v);
    const int body = LINES - 2;  // minus status and bottom line
    if (v.graph) {
        const int logRows = std::min(5, std::max(0, body / 4));
        const int y = drawGraphPane(rt, v, 1, body - logRows);
        drawLog(log, y, LINES - 1 - y, v.logScroll);
        if (v.help) drawHelp(v);
        return;
    }
    const int rackRows = std::min(static_cast<int>(rt.nodeCount()) + 1, std::max(2, body / 3));
    int y = drawRack(rt, v, 1, rackRows);
    const int paramRows = rt.nodeCount()
                              ? std::min(static_cast<int>(rt.descriptor(v.node).param_count + rt.controlOutputs(v.node).size()) + 1,
                                         std::max(2, (body - rackRows) / 2))
                              : 0;
    y = drawParams(rt, v, y, paramRows);
    drawLog(log, y, LINES - 1 - y, v.logScroll);
    if (v.help) drawHelp(v);
}

void drawCommandLine(const std::string& prompt, const std::string& text, size_t cursor) {
    const int width = COLS - static_cast<int>(prompt.size()) - 1;
    size_t start = cursor > static_cast<size_t>(std::max(1, width)) ? cursor - static_cast<size_t>(width) : 0;
    move(LINES - 1, 0);
    clrtoeol();
    put(LINES - 1, 0, prompt, COLS);
    put(LINES - 1, static_cast<int>(prompt.size()), text.substr(start), width);
    move(LINES - 1, static_cast<int>(prompt.size() + cursor - start));
}

void drawHintLine(const View& v) {
    move(LINES - 1, 0);
    clrtoeol();
    if (!v.prompt.empty()) {
        attron(A_BOLD);
        put(LINES - 1, 0, v.prompt, COLS);
        attroff(A_BOLD);
    } else if (!v.message.empty()) {
        if (v.messageIsError && v.color) attron(COLOR_PAIR(kPairError));
        put(LINES - 1, 0, v.message, COLS);
        if (v.messageIsError && v.color) attroff(COLOR_PAIR(kPairError));
    } else {
        attron(A_DIM);
        put(LINES - 1, 0, ": command  ? help  b bypass  h/l adjust  q quit", COLS);
        attroff(A_DIM);
    }
}

}  // namespace rackterm::tui
