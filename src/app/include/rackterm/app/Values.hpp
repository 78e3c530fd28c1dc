// Plain values typed by people: numbers with units, and their display.
// [control]; pure functions.
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/processor.h>

#include <string>
#include <string_view>

namespace rackterm::app {

/// Parse `text` as a plain value for parameter `info`. Accepted, by the
/// parameter's unit: dB ("-6", "-6dB"); Hz ("440", "440Hz", "1k", "1.5kHz");
/// ms ("250", "250ms", "0.25s"); unitless ratios ("0.5", "50%"); enum
/// choices by name ("saw") or number; toggles "on"/"off"/"true"/"false"/1/0.
/// Errors: not a number, wrong unit (names the right one), out of range
/// (names the range).
Result<float> parseValue(const rackterm_param_info& info, std::string_view text);

/// Parse a signed change for `nudge`: the units of parseValue ("+1dB",
/// "-100Hz", "+10%"), no range check. Errors: not a number, wrong unit.
Result<float> parseDelta(const rackterm_param_info& info, std::string_view text);

/// A value for display with its unit: "-12.0 dB", "1.50 kHz", "250 ms", "saw".
std::string formatValue(const rackterm_param_info& info, float value);

/// The choice names of an enum parameter ("" when it has none), split on '|'.
std::string choiceName(const rackterm_param_info& info, int index);

/// Where `value` sits in the range, 0..1 (log-scaled for LOG parameters).
float rangePosition(const rackterm_param_info& info, float value);

/// The value `steps` keyboard steps from `value` (1/100 of the range, log-
/// scaled for LOG, 1 for integers), clamped to the range.
float stepValue(const rackterm_param_info& info, float value, int steps);

}  // namespace rackterm::app
