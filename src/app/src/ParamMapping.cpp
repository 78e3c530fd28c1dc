#include <rackterm/app/ParamMapping.hpp>

#include <rackterm/app/Values.hpp>

#include <algorithm>
#include <string_view>

namespace rackterm::app {

std::string SwapReport::summary() const {
    std::string s = std::to_string(params) + " parameters (+" + std::to_string(added) + " new, -" +
                    std::to_string(removed) + " removed)";
    for (const auto& c : clamped) s += "; clamped " + c;
    return s;
}

ParamMapping mapParameters(std::span<const rackterm_param_info> oldTable, std::span<const rackterm_param_info> newTable,
                           std::span<const float> current) {
    ParamMapping m;
    m.report.params = newTable.size();
    m.values.reserve(newTable.size());
    auto findOld = [&](std::string_view id) -> size_t {
        for (size_t i = 0; i < oldTable.size(); ++i)
            if (id == oldTable[i].id) return i;
        return oldTable.size();
    };
    for (const rackterm_param_info& info : newTable) {
        const size_t i = findOld(info.id);
        if (i == oldTable.size() || i >= current.size()) {
            m.values.push_back(info.default_value);
            ++m.report.added;
            continue;
        }
        const float old = current[i];
        const float v = std::clamp(old, info.min, info.max);
        if (v != old) m.report.clamped.push_back(std::string(info.id) + ": " + formatValue(info, old) + " -> " + formatValue(info, v));
        m.values.push_back(v);
    }
    for (const rackterm_param_info& info : oldTable) {
        const bool kept = std::any_of(newTable.begin(), newTable.end(),
                                      [&](const rackterm_param_info& n) { return std::string_view(n.id) == info.id; });
        if (!kept) ++m.report.removed;
    }
    return m;
}

}  // namespace rackterm::app
