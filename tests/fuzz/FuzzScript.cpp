// Fuzz the script parser: any bytes give a script or one "SCRIPT:LINE:" error
// line; `at` times are finite and not negative.
#include <rackterm/app/Script.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto s = rackterm::app::parseScript(text, "fuzz.txt");
    if (!s) {
        if (s.error().rfind("fuzz.txt:", 0) != 0) std::abort();
        return 0;
    }
    uint32_t last = 0;
    for (const auto& l : s->lines) {
        if (l.line <= last) std::abort();  // file order, one entry per line
        last = l.line;
        if (l.atSeconds && (!std::isfinite(*l.atSeconds) || *l.atSeconds < 0)) std::abort();
    }
    return 0;
}
