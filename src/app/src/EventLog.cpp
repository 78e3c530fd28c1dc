#include <rackterm/app/EventLog.hpp>

#include <rackterm/engine/rt/Engine.hpp>

#include <cstdio>

namespace rackterm::app {

namespace {
/// The throttle's key for xruns: never a node id (those are [a-z0-9_]).
constexpr const char* kXrunKey = "xrun!";
}  // namespace

std::vector<std::string> EventLog::take(const engine::Engine& engine, double now) {
    std::vector<std::string> out;
    const auto& ev = engine.events();
    if (uint64_t x = ev.xruns.load(); x != seenXruns_) {
        throttle_.add(kXrunKey, x - seenXruns_);
        seenXruns_ = x;
    }
    if (const engine::Rack* rack = engine.rack()) {
        if (rack->serial() != seenRackSerial_) {  // a new rack counts from 0
            seenRackSerial_ = rack->serial();
            seenNonFinite_.assign(rack->nodeCount(), 0);
        }
        for (uint32_t n = 0; n < rack->nodeCount() && n < seenNonFinite_.size(); ++n) {
            const uint64_t count = rack->nonFiniteCount(n);
            if (count > seenNonFinite_[n]) throttle_.add(rack->nodeId(n), count - seenNonFinite_[n]);
            seenNonFinite_[n] = count;
        }
    }
    char seconds[32];
    for (const auto& r : throttle_.due(now)) {
        std::snprintf(seconds, sizeof seconds, "%.1f s", r.seconds);
        if (r.key == kXrunKey)
            out.push_back("xrun: " + std::to_string(r.count) + (r.first ? " new" : " more in the last " + std::string(seconds)) +
                          ", " + std::to_string(seenXruns_) + " in all");
        else if (r.first)
            out.push_back("node '" + r.key + "' produced NaN/Inf: its output is muted and it is reset (" +
                          std::to_string(r.count) + (r.count == 1 ? " block)" : " blocks)"));
        else
            out.push_back("node '" + r.key + "' produced NaN/Inf again in " + std::to_string(r.count) +
                          (r.count == 1 ? " block" : " blocks") + " in the last " + seconds + " (muted)");
    }
    return out;
}

}  // namespace rackterm::app
