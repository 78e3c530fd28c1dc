// Fuzz the control socket's (and headless stdin's) line framing: the input
// is cut into chunks as a socket would deliver them; every line out is at
// most 4096 bytes and holds no newline, and the buffer never outgrows its
// bound while the reader respects room().
#include <rackterm/app/LineFramer.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using rackterm::app::LineFramer;
    if (size < 2) return 0;
    LineFramer f;
    const size_t budget = 1 + data[0] % 8;  // lines per turn
    size_t chunk = 1 + data[1] * 64;        // bytes per read
    size_t pos = 2, room = 0;
    auto check = [&](const std::vector<LineFramer::Item>& items) {
        if (items.size() > budget) std::abort();
        for (const auto& it : items) {
            if (it.text.size() > LineFramer::kMaxLine || it.text.find('\n') != std::string::npos) std::abort();
            if (it.tooLong && !it.text.empty()) std::abort();
        }
    };
    while (pos < size) {
        room = f.room();
        if (room == 0) {  // the reader stops reading until lines are taken
            check(f.take(budget));
            if (f.room() == 0 && !f.hasLine()) std::abort();  // stuck: full and nothing to take
            continue;
        }
        const size_t n = std::min({chunk, room, size - pos});
        f.append(std::string_view(reinterpret_cast<const char*>(data + pos), n));
        pos += n;
        chunk = 1 + (chunk * 31 + data[pos - 1]) % 9000;
        check(f.take(budget));
    }
    f.finish();
    for (int i = 0; i < 100000 && f.hasLine(); ++i) check(f.take(budget));
    if (f.hasLine()) std::abort();
    return 0;
}
