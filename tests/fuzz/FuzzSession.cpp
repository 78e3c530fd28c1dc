// Fuzz the session loader: any bytes are either a session or one error line
// with FILE:LINE:COL; a session survives formatSession() -> parseSession()
// unchanged (what `save` writes, `load` reads back).
#include <rackterm/config/Session.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace rackterm::config;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto s = parseSession(text, "fuzz.toml");
    if (!s) {
        const std::string& e = s.error();
        if (e.empty() || e.find('\n') != std::string::npos || e.rfind("fuzz.toml", 0) != 0) std::abort();
        return 0;
    }
    const std::string saved = formatSession(s.value());
    auto again = parseSession(saved, "saved.toml");
    if (!again) std::abort();  // what save writes must load
    if (formatSession(again.value()) != saved) std::abort();  // and round-trip exactly
    if (again->nodes.size() != s->nodes.size()) std::abort();
    return 0;
}
