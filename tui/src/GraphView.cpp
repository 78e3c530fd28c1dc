#include "GraphView.hpp"


#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace rackterm::tui {

namespace {

constexpr size_t kCell = 12;  // columns of a node
constexpr size_t kGap = 6;    // columns between layers, where the lines run
enum Joint : unsigned { kUp = 1, kDown = 2, kLeft = 4, kRight = 8 };

const char* glyph(unsigned joints, bool unicode) {
    if (!unicode) {
        if (joints == (kLeft | kRight) || joints == kLeft || joints == kRight) return "-";
        if (joints == (kUp | kDown) || joints == kUp || joints == kDown) return "|";
        return "+";
    }
    switch (joints) {
        case kLeft | kRight: case kLeft: case kRight: return "\u2500";
        case kUp | kDown: case kUp: case kDown: return "\u2502";
        case kDown | kRight: return "\u250c";
        case kDown | kLeft: return "\u2510";
        case kUp | kRight: return "\u2514";
        case kUp | kLeft: return "\u2518";
        case kUp | kDown | kRight: return "\u251c";
        case kUp | kDown | kLeft: return "\u2524";
        case kLeft | kRight | kDown: return "\u252c";
        case kLeft | kRight | kUp: return "\u2534";
        default: return "\u253c";
    }
}

/// Four cells of a peak meter over -60..0 dBFS.
std::string meter(float peakDb, bool unicode) {
    std::string out;
    for (int i = 0; i < 4; ++i) {
        const float threshold = -60.0f + 15.0f * static_cast<float>(i);
        const bool lit = peakDb > threshold;
        out += lit ? (unicode ? "\u2588" : "#") : (unicode ? "\u00b7" : ".");
    }
    return out;
}

std::string fitText(const std::string& s, size_t width) {
    if (s.size() > width) return width > 1 ? s.substr(0, width - 1) + "~" : s.substr(0, width);
    return s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string nodeOf(const std::string& end) { return end.substr(0, end.find(':')); }

std::string GraphCanvas::line(size_t y, size_t x, size_t count) const {
    std::string out;
    if (y >= rows.size()) return out;
    for (size_t i = x; i < rows[y].size() && i < x + count; ++i) out += rows[y][i];
    return out;
}

GraphCanvas drawGraph(const app::Runtime& rt, bool unicode) {
    const size_t n = rt.nodeCount();
    const size_t in = n, out = n + 1;  // the endpoints as vertices
    auto vertexOf = [&](const std::string& endpoint) -> size_t {
        const std::string node = nodeOf(endpoint);
        if (node == "input") return in;
        if (node == "output") return out;
        for (size_t i = 0; i < n; ++i)
            if (rt.nodeId(i) == node) return i;
        return SIZE_MAX;
    };
    const std::vector<config::ConnectionSpec> conns = rt.connections();
    std::set<std::pair<size_t, size_t>> links;
    std::vector<const config::ConnectionSpec*> feedback;
    std::vector<bool> fedBack(n + 2, false);
    for (const auto& c : conns) {
        const size_t a = vertexOf(c.from), b = vertexOf(c.to);
        if (a == SIZE_MAX || b == SIZE_MAX) continue;
        if (c.feedback) {
            feedback.push_back(&c);
            fedBack[b] = true;
        } else {
            links.insert({a, b});
        }
    }
    // Layers: one right of the furthest source, in processing order.
    std::vector<size_t> layer(n + 2, 1);
    layer[in] = 0;
    const std::vector<size_t> order = rt.processingOrder();
    for (size_t v : order)
        for (const auto& [a, b] : links)
            if (b == v) layer[v] = std::max(layer[v], layer[a] + 1);
    size_t last = 1;
    for (size_t v = 0; v < n; ++v) last = std::max(last, layer[v] + 1);
    layer[out] = last;
    // Slots per layer; a long connection gets a placeholder in each layer it crosses.
    std::vector<std::vector<size_t>> slots(last + 1);
    slots[0].push_back(in);
    for (size_t v : order) slots[layer[v]].push_back(v);
    slots[last].push_back(out);
    size_t nextVirtual = n + 2;
    std::vector<std::pair<size_t, size_t>> segments;  // between neighbouring layers
    std::map<size_t, size_t> virtualLayer;
    for (const auto& [a, b] : links) {
        size_t from = a;
        for (size_t l = layer[a] + 1; l < layer[b]; ++l) {
            const size_t v = nextVirtual++;
            virtualLayer[v] = l;
            slots[l].push_back(v);
            segments.push_back({from, v});
            from = v;
        }
        segments.push_back({from, b});
    }
    // One sweep: order each layer by the mean position of its sources.
    std::map<size_t, double> position;
    for (size_t i = 0; i < slots[0].size(); ++i) position[slots[0][i]] = static_cast<double>(i);
    for (size_t l = 1; l <= last; ++l) {
        std::map<size_t, double> key;
        for (size_t i = 0; i < slots[l].size(); ++i) {
            double sum = 0;
            int count = 0;
            for (const auto& [a, b] : segments)
                if (b == slots[l][i] && position.count(a)) {
                    sum += position[a];
                    ++count;
                }
            key[slots[l][i]] = count ? sum / count : static_cast<double>(i);
        }
        std::stable_sort(slots[l].begin(), slots[l].end(), [&](size_t x, size_t y) { return key[x] < key[y]; });
        for (size_t i = 0; i < slots[l].size(); ++i) position[slots[l][i]] = static_cast<double>(i);
    }
    size_t tallest = 1;
    for (const auto& s : slots) tallest = std::max(tallest, s.size());
    const size_t height = 2 * tallest - 1;
    const size_t width = (last + 1) * (kCell + kGap);
    std::vector<std::vector<unsigned>> joints(height, std::vector<unsigned>(width, 0));
    std::vector<std::vector<bool>> arrow(height, std::vector<bool>(width, false));
    auto x0 = [](size_t l) { return l * (kCell + kGap); };
    auto row = [&](size_t v) { return 2 * static_cast<size_t>(position[v]); };
    auto horizontal = [&](size_t y, size_t from, size_t to) {  // joints from column `from` to `to`
        for (size_t x = from; x < to; ++x) {
            joints[y][x] |= kRight;
            joints[y][x + 1] |= kLeft;
        }
    };
    for (const auto& [a, b] : segments) {
        const size_t l = a < n + 2 ? layer[a] : virtualLayer[a];
        const size_t ya = row(a), yb = row(b);
        const size_t start = x0(l) + kCell, mid = start + kGap / 2, end = x0(l + 1) - 1;
        horizontal(ya, start, mid);
        for (size_t y = std::min(ya, yb); y < std::max(ya, yb); ++y) {
            joints[y][mid] |= kDown;
            joints[y + 1][mid] |= kUp;
        }
        horizontal(yb, mid, end);
        if (b < n + 2) arrow[yb][end] = true;
        else horizontal(yb, end, x0(l + 1) + kCell - 1);  // a placeholder: the line runs on through the layer
    }
    GraphCanvas canvas;
    canvas.width = width;
    canvas.rows.assign(height, std::vector<std::string>(width, " "));
    for (size_t y = 0; y < height; ++y)
        for (size_t x = 0; x < width; ++x) {
            if (joints[y][x]) canvas.rows[y][x] = glyph(joints[y][x], unicode);
            if (arrow[y][x]) canvas.rows[y][x] = unicode ? "\u25b6" : ">";
        }
    const auto& meters = rt.meters();
    auto box = [&](size_t v) {
        std::string name = v == in ? "input" : v == out ? "output" : rt.nodeId(v);
        if (fedBack[v]) name += "*";
        std::vector<std::string> cells;
        cells.emplace_back("[");
        std::string text = v < n ? fitText(name, kCell - 6) : fitText(name, kCell - 2);
        for (char c : text) cells.emplace_back(1, c);
        if (v < n) {
            const float peak = v < meters.nodes.size() ? std::max(meters.nodes[v].peakDb[0], meters.nodes[v].peakDb[1]) : -120.0f;
            const std::string m = meter(peak, unicode);
            for (size_t i = 0; i < m.size();) {  // one glyph per cell
                const size_t len = (static_cast<unsigned char>(m[i]) < 0x80) ? 1 : (static_cast<unsigned char>(m[i]) >= 0xe0 ? 3 : 2);
                cells.push_back(m.substr(i, len));
                i += len;
            }
        }
        cells.emplace_back("]");
        return cells;
    };
    for (size_t l = 0; l <= last; ++l)
        for (size_t v : slots[l]) {
            if (v >= n + 2) continue;  // a placeholder is the line through it
            const auto cells = box(v);
            for (size_t i = 0; i < cells.size() && x0(l) + i < width; ++i) canvas.rows[row(v)][x0(l) + i] = cells[i];
        }
    if (!feedback.empty()) {  // the backward connections, listed
        canvas.rows.emplace_back(width, " ");
        for (const auto* c : feedback) {
            char level[32] = "";
            if (c->gainDb != 0) std::snprintf(level, sizeof level, " (%g dB)", c->gainDb);
            const std::string text = "* feedback " + c->from + " -> " + c->to + level + ", one block late";
            std::vector<std::string> cells(std::max(width, text.size()), " ");
            for (size_t i = 0; i < text.size(); ++i) cells[i] = std::string(1, text[i]);
            canvas.rows.push_back(std::move(cells));
            canvas.width = std::max(canvas.width, text.size());
        }
    }
    return canvas;
}

}  // namespace rackterm::tui
