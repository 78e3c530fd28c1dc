// The engine's events as log lines: xruns and NaN/Inf output muted per
// node, read from the engine's counters and rate-limited per source through
// EventThrottle (the first at once, then a count at most every 5 s).
// [control].
#pragma once

#include <rackterm/app/EventThrottle.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace rackterm::engine {
class Engine;
}

namespace rackterm::app {

class EventLog {
public:
    /// New lines at `now` (seconds, steady clock) from `engine`'s counters
    /// and its newest rack ("xrun: 3 new, 3 in all", "node 'x' produced
    /// NaN/Inf: its output is muted and it is reset (1 block)", ...).
    std::vector<std::string> take(const engine::Engine& engine, double now);
    /// A node left the rack: one added later under its id starts afresh.
    void forget(const std::string& nodeId) { throttle_.forget(nodeId); }

private:
    EventThrottle throttle_;
    uint64_t seenXruns_ = 0;
    uint64_t seenRackSerial_ = 0;
    std::vector<uint64_t> seenNonFinite_;  // per node of the rack with seenRackSerial_
};

}  // namespace rackterm::app
