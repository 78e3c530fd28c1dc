// The start of the block the calling audio thread is running, for processors
// that wait within it (isolated processors share one deadline per block
// instead of each taking its own share of the period).
#pragma once

#include <cstdint>

namespace rackterm {

/// [audio] Steady-clock nanoseconds at which the calling thread's current
/// rack block began; 0 when it runs none. Set by engine::Rack::process.
inline thread_local uint64_t tBlockStartNs = 0;

}  // namespace rackterm
