#include <rackterm/app/Values.hpp>

#include <rackterm/common/Text.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

namespace rackterm::app {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::vector<std::string> choices(const rackterm_param_info& info) {
    std::vector<std::string> out;
    if (!info.choices) return out;
    std::string_view all = info.choices;
    while (!all.empty()) {
        const size_t bar = all.find('|');
        out.emplace_back(all.substr(0, bar));
        if (bar == std::string_view::npos) break;
        all.remove_prefix(bar + 1);
    }
    return out;
}

std::string unitExample(const std::string& unit) {
    if (unit == "dB") return "-6dB";
    if (unit == "Hz") return "440Hz or 1.5k";
    if (unit == "ms") return "250ms or 0.25s";
    return "0.5 or 50%";
}

std::string trimmedNumber(float v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, static_cast<double>(v));
    return buf;
}

}  // namespace

std::string choiceName(const rackterm_param_info& info, int index) {
    const auto c = choices(info);
    return (index >= 0 && static_cast<size_t>(index) < c.size()) ? c[static_cast<size_t>(index)] : std::string();
}

namespace {
/// A number with an optional unit suffix in `info`'s unit; no range check.
Result<double> numberWithUnit(const rackterm_param_info& info, std::string_view text) {
    const std::string t = lower(text);
    const std::string unit = info.unit ? info.unit : "";
    size_t used = 0;
    const auto number = parseDecimalPrefix(t, used);
    if (!number || !std::isfinite(*number))
        return Error{quote(text) + " is not a value for " + info.id + "; give a decimal number such as " + unitExample(unit)};
    const double v = *number;
    const std::string suffix = t.substr(used);
    const std::string u = lower(unit);
    double scale = 0;
    if (suffix.empty() || suffix == u) scale = 1.0;
    else if (u == "hz" && (suffix == "k" || suffix == "khz")) scale = 1000.0;
    else if (u == "ms" && suffix == "s") scale = 1000.0;
    else if (u.empty() && suffix == "%") scale = 0.01;
    if (scale != 0) return v * scale;
    return Error{quote(text) + ": " + info.id + " takes " + (unit.empty() ? "a ratio" : unit) + ", e.g. " +
                 unitExample(unit)};
}

/// True when `v` converts to a finite float.
bool fitsFloat(double v) { return std::fabs(v) <= static_cast<double>(std::numeric_limits<float>::max()); }
}  // namespace

Result<float> parseDelta(const rackterm_param_info& info, std::string_view text) {
    auto v = numberWithUnit(info, text);
    if (!v) return Error{v.error()};
    if (!fitsFloat(v.value())) return Error{quote(text) + " is out of range for " + info.id};
    return static_cast<float>(v.value());
}

Result<float> parseValue(const rackterm_param_info& info, std::string_view text) {
    const std::string t = lower(text);
    const auto names = choices(info);
    for (size_t i = 0; i < names.size(); ++i)
        if (t == names[i]) return static_cast<float>(i);
    if (info.flags & RACKTERM_PARAM_TOGGLE) {
        if (t == "on" || t == "true") return 1.0f;
        if (t == "off" || t == "false") return 0.0f;
    }
    auto parsed = numberWithUnit(info, text);
    if (!parsed) {
        if (!names.empty()) return Error{quote(text) + " is not a value for " + info.id + "; give one of " + info.choices};
        return Error{parsed.error()};
    }
    const double v = parsed.value();
    if (!fitsFloat(v) || static_cast<float>(v) < info.min || static_cast<float>(v) > info.max)
        return Error{std::string(info.id) + " = " + printable(text) + " is outside " + formatValue(info, info.min) +
                     " .. " + formatValue(info, info.max)};
    if ((info.flags & (RACKTERM_PARAM_INTEGER | RACKTERM_PARAM_TOGGLE)) && std::floor(v) != v)
        return Error{std::string(info.id) + " takes whole numbers" + (names.empty() ? "" : " or one of " + std::string(info.choices))};
    return static_cast<float>(v);
}

std::string formatValue(const rackterm_param_info& info, float value) {
    const std::string unit = info.unit ? info.unit : "";
    if (info.flags & (RACKTERM_PARAM_INTEGER | RACKTERM_PARAM_TOGGLE)) {
        const int i = static_cast<int>(std::lround(value));
        if (std::string name = choiceName(info, i); !name.empty()) return name;
        if (info.flags & RACKTERM_PARAM_TOGGLE) return i ? "on" : "off";
        return std::to_string(i) + (unit.empty() ? "" : " " + unit);
    }
    if (unit == "Hz") {
        if (std::fabs(value) >= 1000.0f) return trimmedNumber(value / 1000.0f, 2) + " kHz";
        return trimmedNumber(value, 1) + " Hz";
    }
    if (unit == "dB") return trimmedNumber(value, 1) + " dB";
    if (unit == "ms") return trimmedNumber(value, std::fabs(value) < 10.0f ? 2 : 1) + " ms";
    if (unit.empty()) return trimmedNumber(value, 3);
    return trimmedNumber(value, 2) + " " + unit;
}

float rangePosition(const rackterm_param_info& info, float value) {
    if (info.max <= info.min) return 0.0f;
    float p;
    if ((info.flags & RACKTERM_PARAM_LOG) && info.min > 0.0f)
        p = std::log(std::max(value, info.min) / info.min) / std::log(info.max / info.min);
    else
        p = (value - info.min) / (info.max - info.min);
    return std::clamp(p, 0.0f, 1.0f);
}

float stepValue(const rackterm_param_info& info, float value, int steps) {
    float v;
    if (info.flags & (RACKTERM_PARAM_INTEGER | RACKTERM_PARAM_TOGGLE)) {
        v = std::round(value) + static_cast<float>(steps);
    } else if ((info.flags & RACKTERM_PARAM_LOG) && info.min > 0.0f) {
        const float ratio = std::pow(info.max / info.min, 1.0f / 100.0f);
        v = std::max(value, info.min) * std::pow(ratio, static_cast<float>(steps));
    } else if (info.unit && std::string_view(info.unit) == "dB") {
        v = std::round(value * 2.0f) / 2.0f + 0.5f * static_cast<float>(steps);  // 0.5 dB grid
    } else {
        v = value + (info.max - info.min) / 100.0f * static_cast<float>(steps);
    }
    return std::clamp(v, info.min, info.max);
}

}  // namespace rackterm::app
