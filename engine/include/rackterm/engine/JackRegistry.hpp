// jackd2's server registry: the shared-memory segment
// /dev/shm/jack-shm-registry in which every JACK server registers its name
// and process id. It has 8 slots. A server killed with SIGKILL never frees
// its slot, and jackd reclaims a dead slot only when a server of the same
// name starts again, so on a box where a few servers died that way no new
// server can start ("Too many servers already active"). rackterm reads the
// registry (never writes it) to say so when it cannot reach a server.
//
// Layout (jackd2 1.9.x, common/shm.h, jack_shm_header_t): u32 magic "JACK",
// u16 protocol, 2 bytes padding, u32 type, u32 size, u32 hdr_len, u32
// entry_len, then 8 x { i32 pid; char name[...] } up to hdr_len. Names are
// "jack-UID:SERVER:".
//
// [control]: reads a file; allocates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace rackterm::engine {

/// Where jackd2 keeps its registry (POSIX shared memory).
inline constexpr const char* kJackRegistryPath = "/dev/shm/jack-shm-registry";

/// One registered JACK server.
struct JackServerSlot {
    int pid = 0;
    std::string name;  ///< the server name ("default", "rackterm-demo")
    int uid = -1;      ///< the user it runs as (from "jack-UID:NAME:"), -1 when unknown
    bool running = false;
};

/// What the registry holds.
struct JackRegistry {
    size_t slots = 0;                     ///< 8 in jackd2
    std::vector<JackServerSlot> servers;  ///< the used slots
    size_t free() const noexcept { return slots - servers.size(); }
    size_t dead() const noexcept;
    /// One line when no server can register (no free slot), naming the dead
    /// servers and the remedy; "" while a slot is free.
    std::string problem() const;
};

/// Read the registry at `path`. nullopt when there is none (no JACK server
/// ever ran since boot) or it is not jackd2's layout.
std::optional<JackRegistry> readJackRegistry(const std::string& path = kJackRegistryPath);

}  // namespace rackterm::engine
