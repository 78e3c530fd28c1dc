// Fuzz the session loader: any bytes are either a session or one error line
// with FILE:LINE:COL; a session survives formatSession() -> parseSession()
// unchanged (what `save` writes, `load` reads back); saving it unchanged keeps
// its bytes, and after edits (a value, a bypass, a parameter and a node
// removed, a node added) the text saved reads back as the edited session.
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

    const SessionText kept = sessionText(s.value());
    if (!text.empty() && (!kept.editedInPlace || kept.text != text)) std::abort();  // nothing changed: the same bytes
    Session edited = s.value();
    for (NodeSpec& n : edited.nodes) {
        n.bypass = !n.bypass;
        if (!n.params.empty()) n.params.front().value += 1;
        if (n.params.size() > 1) n.params.pop_back();
    }
    if (!edited.nodes.empty()) edited.nodes.erase(edited.nodes.begin());
    NodeSpec added;
    added.id = "fuzz_added";
    added.processor = "gain";
    added.params.push_back({"gain_db", -1.5, {}});
    if (edited.findNode(added.id) < 0) edited.nodes.insert(edited.nodes.begin() + edited.nodes.size() / 2, added);
    const SessionText out = sessionText(edited);
    auto back = parseSession(out.text, "edited.toml");
    if (!back || formatSession(back.value()) != formatSession(edited)) std::abort();
    return 0;
}
