#include <rackterm/app/Script.hpp>

#include <rackterm/app/Commands.hpp>
#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>

#include <cmath>
#include <sstream>

namespace rackterm::app {

std::string Script::where(const ScriptLine& l, const std::string& message) const {
    return path + ":" + std::to_string(l.line) + ": " + message;
}

Result<double> parseTime(std::string_view text) {
    const auto bad = [&] { return Error{quote(text) + " is not a time; write 1.5s, 250ms or 1:30"}; };
    if (text.empty()) return bad();
    if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
        const auto m = parseDecimal(text.substr(0, colon));
        const auto s = parseDecimal(text.substr(colon + 1));
        if (!m || !s || !std::isfinite(*m) || !std::isfinite(*s) || *m < 0 || *s < 0) return bad();
        return *m * 60.0 + *s;
    }
    size_t used = 0;
    auto v = parseDecimalPrefix(text, used);
    if (!v || !std::isfinite(*v) || *v < 0) return bad();
    const std::string_view unit = text.substr(used);
    if (unit == "ms") return *v / 1000.0;
    if (!unit.empty() && unit != "s") return bad();
    return *v;
}

Result<Script> parseScript(std::string_view text, const std::string& path) {
    Script s;
    s.path = path;
    std::istringstream in{std::string(text)};
    std::string raw;
    for (uint32_t n = 1; std::getline(in, raw); ++n) {
        const auto words = splitWords(raw);
        if (words.empty()) continue;
        ScriptLine l;
        l.line = n;
        if (words[0] == "at") {
            if (words.size() < 3) return Error{s.where(l, "`at` needs a time and a command: at 1.5s set NODE.PARAM VALUE")};
            auto t = parseTime(words[1]);
            if (!t) return Error{s.where(l, t.error())};
            l.atSeconds = t.value();
            // The command is the rest of the line after the time word.
            const size_t timePos = raw.find(words[1], raw.find("at") + 2);
            l.command = raw.substr(timePos + words[1].size());
        } else {
            l.command = raw;
        }
        s.lines.push_back(std::move(l));
    }
    return s;
}

Result<Script> loadScript(const std::string& path) {
    auto text = files::readRegularFile(path, files::kMaxTextFileBytes, "script");
    if (!text) return Error{text.error()};
    return parseScript(text.value(), path);
}

}  // namespace rackterm::app
