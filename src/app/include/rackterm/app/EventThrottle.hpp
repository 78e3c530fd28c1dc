// Rate limit for events that repeat (a node's NaN/Inf output, xruns): the
// first occurrence of each is reported at once; later ones are counted and
// reported as one summary line at most once per interval, so a node that
// misbehaves every block writes a line every few seconds, not ten a second.
// [control]; a pure class (time is passed in).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rackterm::app {

class EventThrottle {
public:
    /// `intervalSeconds`: the shortest time between two reports of one key.
    explicit EventThrottle(double intervalSeconds = 5.0) : interval_(intervalSeconds) {}

    /// One report line's worth: `count` occurrences of `key`; `first` for the
    /// first report of that key; `seconds` since its previous report (0 for
    /// the first).
    struct Report {
        std::string key;
        uint64_t count = 0;
        bool first = false;
        double seconds = 0;
    };

    /// `count` new occurrences of `key` (reported by the next due()).
    void add(const std::string& key, uint64_t count);
    /// The reports due at `now`: keys never reported, and keys whose counts
    /// have waited at least the interval since their last report.
    std::vector<Report> due(double now);
    /// Forget `key` (its node was removed).
    void forget(const std::string& key) { states_.erase(key); }

private:
    struct State {
        uint64_t held = 0;
        bool reported = false;
        double lastReport = 0;
    };
    double interval_;
    std::map<std::string, State> states_;
};

}  // namespace rackterm::app
