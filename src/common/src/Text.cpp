#include <rackterm/common/Text.hpp>

#include <charconv>
#include <cstdio>

namespace rackterm {

size_t utf8LeadLength(unsigned char c) {
    return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
}

size_t utf8SequenceLength(std::string_view s) {
    if (s.empty()) return 0;
    const auto c = static_cast<unsigned char>(s[0]);
    const size_t len = utf8LeadLength(c);
    if (len == 0 || len > s.size()) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7fu >> len);
    for (size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[k]);
        if ((cc >> 6) != 0x2) return 0;
        cp = (cp << 6) | (cc & 0x3fu);
    }
    const bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

namespace {

void appendHex(std::string& out, unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
}

}  // namespace

std::string printable(std::string_view text, size_t maxChars) {
    std::string out;
    size_t chars = 0;
    for (size_t i = 0; i < text.size(); ++chars) {
        if (chars == maxChars) {
            out += "...";
            break;
        }
        const auto c = static_cast<unsigned char>(text[i]);
        const size_t len = utf8SequenceLength(text.substr(i));
        if (len > 1) {
            out.append(text.substr(i, len));
            i += len;
            continue;
        }
        ++i;
        switch (c) {
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (len == 0 || c < 0x20 || c == 0x7f) appendHex(out, c);
                else out += static_cast<char>(c);
        }
    }
    return out;
}

std::string quote(std::string_view text, size_t maxChars) { return "'" + printable(text, maxChars) + "'"; }

std::optional<double> parseDecimalPrefix(std::string_view text, size_t& used) {
    size_t i = 0;
    const bool negative = i < text.size() && text[i] == '-';
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    const size_t numberStart = i;
    auto digits = [&] {
        const size_t from = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
        return i - from;
    };
    size_t mantissa = digits();
    if (i < text.size() && text[i] == '.') {
        ++i;
        mantissa += digits();
    }
    if (mantissa == 0) return std::nullopt;
    // "0x10": the digit 0 followed by an x is hex, not zero with a unit.
    if (i < text.size() && (text[i] == 'x' || text[i] == 'X') && i == numberStart + 1 && text[numberStart] == '0')
        return std::nullopt;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        size_t j = i + 1;
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        size_t k = j;
        while (k < text.size() && text[k] >= '0' && text[k] <= '9') ++k;
        if (k > j) i = k;  // "1e" without digits: the e is left for a unit
    }
    double v = 0;
    const auto r = std::from_chars(text.data() + numberStart, text.data() + i, v, std::chars_format::general);
    if (r.ec != std::errc() || r.ptr != text.data() + i) return std::nullopt;
    used = i;
    if (negative) v = -v;
    if (v == 0) v = 0;  // -0 is 0
    return v;
}

std::optional<double> parseDecimal(std::string_view text) {
    size_t used = 0;
    auto v = parseDecimalPrefix(text, used);
    if (!v || used != text.size()) return std::nullopt;
    return v;
}

}  // namespace rackterm
