// Text a user typed, made safe and exact: quoting it back in one-line
// messages, and reading decimal numbers the same way in every locale.
// [any thread, not audio]: these allocate.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace rackterm {

/// How much of a user's value a message quotes back.
inline constexpr size_t kQuoteChars = 80;
/// How much of a path a message shows (paths are longer than values).
inline constexpr size_t kPathChars = 240;

/// The length of the UTF-8 sequence that byte `lead` starts (1 to 4), or 0
/// when it cannot start one.
size_t utf8LeadLength(unsigned char lead);
/// The length of the valid UTF-8 sequence at the start of `text` (1 to 4),
/// or 0 when it is not one (bad continuation, truncated, overlong, surrogate,
/// beyond U+10FFFF) or `text` is empty.
size_t utf8SequenceLength(std::string_view text);

/// `text` made fit for one line of a message, a log pane or a socket reply:
/// control bytes become escapes (`\n`, `\t`, `\r`, `\x00`), bytes that are not
/// valid UTF-8 become `\xNN`, and after `maxChars` characters the rest is cut
/// and `...` appended.
std::string printable(std::string_view text, size_t maxChars = kQuoteChars);

/// printable(text) in single quotes: how messages quote an offending value.
std::string quote(std::string_view text, size_t maxChars = kQuoteChars);

/// A plain decimal number at the start of `text`: optional sign, digits with
/// an optional decimal point, optional exponent (`1e3`, `2.5E-2`). Hex
/// (`0x10`, `0x1p4`), `inf` and `nan` are not numbers here. Locale-free
/// (always `.`). Sets `used` to the characters read. nullopt when `text`
/// does not start with one or it is out of double's range. -0 reads as 0.
std::optional<double> parseDecimalPrefix(std::string_view text, size_t& used);

/// parseDecimalPrefix() of the whole of `text`; nullopt when anything follows.
std::optional<double> parseDecimal(std::string_view text);

}  // namespace rackterm
