#include <rackterm/engine/JackRegistry.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>

#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rackterm::engine {

namespace {
constexpr uint32_t kMagic = 0x4a41434b;  // "JACK"
constexpr size_t kServers = 8;            // MAX_SERVERS
constexpr size_t kServerArray = 24;       // offset of server[0] in jack_shm_header_t

uint32_t readU32(const std::string& b, size_t at) {
    uint32_t v;
    std::memcpy(&v, b.data() + at, sizeof v);
    return v;
}

bool alive(int pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }
}  // namespace

size_t JackRegistry::dead() const noexcept {
    size_t n = 0;
    for (const auto& s : servers) n += s.running ? 0 : 1;
    return n;
}

std::string JackRegistry::problem() const {
    if (free() > 0) return {};
    std::string deadNames, liveNames;
    for (const auto& s : servers) {
        std::string& list = s.running ? liveNames : deadNames;
        list += (list.empty() ? "" : ", ") + printable(s.name, 64) + " (pid " + std::to_string(s.pid) + ")";
    }
    std::string out = "JACK's server registry " + std::string(kJackRegistryPath) + " is full (" + std::to_string(slots) +
                      " of " + std::to_string(slots) + " slots";
    if (!liveNames.empty()) out += "; running: " + liveNames;
    if (dead() == 0) return out + "), so no other JACK server can start; stop a server you do not need";
    out += "; " + std::to_string(dead()) + " held by servers that were killed without unregistering: " + deadNames +
           "), so no other JACK server can start; a dead slot is freed when a server of its name starts again "
           "(e.g. `jackd -n NAME -d dummy`, then stop it), or remove the registry file while no JACK server runs";
    return out;
}

std::optional<JackRegistry> readJackRegistry(const std::string& path) {
    auto bytes = files::readRegularFile(path, 1 << 20, "JACK registry");
    if (!bytes) return std::nullopt;
    const std::string& b = bytes.value();
    if (b.size() < kServerArray || readU32(b, 0) != kMagic) return std::nullopt;
    const size_t headerLength = readU32(b, 16);
    if (headerLength > b.size() || headerLength < kServerArray + kServers * 8) return std::nullopt;
    const size_t stride = (headerLength - kServerArray) / kServers;
    JackRegistry r;
    r.slots = kServers;
    for (size_t i = 0; i < kServers; ++i) {
        const size_t at = kServerArray + i * stride;
        int32_t pid;
        std::memcpy(&pid, b.data() + at, sizeof pid);
        if (pid == 0) continue;
        JackServerSlot s;
        s.pid = pid;
        const char* name = b.data() + at + 4;
        const std::string full(name, strnlen(name, stride - 4));  // "jack-UID:NAME:"
        s.name = full;
        if (full.rfind("jack-", 0) == 0) {
            const size_t colon = full.find(':');
            if (colon != std::string::npos) {
                s.uid = std::atoi(full.substr(5, colon - 5).c_str());
                s.name = full.substr(colon + 1);
                if (!s.name.empty() && s.name.back() == ':') s.name.pop_back();
            }
        }
        s.running = alive(pid);
        r.servers.push_back(std::move(s));
    }
    return r;
}

}  // namespace rackterm::engine
