// Parameter mapping on hot swap: a pure function from the old processor's
// parameter table, the new one's and the values playing now to the values
// the new instance starts with, plus a report of what changed. [any thread];
// no state, no allocation beyond its result.
#pragma once

#include <rackterm/processor.h>

#include <span>
#include <string>
#include <vector>

namespace rackterm::app {

/// What a hot swap did to a node's parameters.
struct SwapReport {
    size_t params = 0;                 ///< parameters of the new processor
    size_t added = 0, removed = 0;     ///< ids new in it / gone from it
    std::vector<std::string> clamped;  ///< "id: 30.0 dB -> 24.0 dB" for values moved into a new range
    /// "6 parameters (+2 new, -1 removed)" plus clamp notes.
    std::string summary() const;
};

/// The new instance's values and the report.
struct ParamMapping {
    std::vector<float> values;  ///< plain values in `newTable` order
    SwapReport report;
};

/// Map `current` (plain values in `oldTable` order, one per entry) onto
/// `newTable`: a parameter whose id is in both keeps its value, clamped to
/// the new [min, max] (each clamp reported in the new parameter's unit); an
/// id only in the new table starts at its default (counted as added); an id
/// only in the old table is dropped (counted as removed). Ids are compared
/// as strings; order may differ between the tables.
ParamMapping mapParameters(std::span<const rackterm_param_info> oldTable, std::span<const rackterm_param_info> newTable,
                           std::span<const float> current);

}  // namespace rackterm::app
