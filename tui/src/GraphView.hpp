// The graph view (`g` in the console): a layered drawing of the session's
// nodes and connections. Internal to the tui library. [control].
//
// Layout (after Sugiyama): `input` is layer 0, every node sits one layer
// right of its furthest non-feedback source, `output` is the last layer. A
// connection that spans several layers runs through a placeholder in each
// layer it crosses, so every line joins neighbouring layers; within a layer
// nodes are ordered by the mean row of their sources (one sweep), which
// removes most crossings. Lines are drawn on a grid of joints (up, down,
// left, right) and each cell becomes the box-drawing character of its
// joints (ASCII + - | under a non-UTF-8 locale). Feedback connections are
// not drawn as lines (they run backwards): the target is marked `*` and a
// legend below lists them.
#pragma once

#include <rackterm/app/Runtime.hpp>

#include <string>
#include <vector>

namespace rackterm::tui {

/// The drawing: rows of cells, each cell one glyph (a UTF-8 string).
struct GraphCanvas {
    std::vector<std::vector<std::string>> rows;
    size_t width = 0;  ///< cells per row

    /// Row `y` from cell `x` on, at most `count` cells, as one string.
    std::string line(size_t y, size_t x, size_t count) const;
};

/// [any] The node of a connection end as written: "eq" of "eq:out_2".
std::string nodeOf(const std::string& end);

/// [control] Draw the graph of `rt` as it runs now; `unicode` picks the glyphs.
/// Each node is a cell of 12 columns: its id and a 4-cell meter of its peak.
GraphCanvas drawGraph(const app::Runtime& rt, bool unicode);

}  // namespace rackterm::tui
