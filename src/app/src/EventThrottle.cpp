#include <rackterm/app/EventThrottle.hpp>

namespace rackterm::app {

void EventThrottle::add(const std::string& key, uint64_t count) {
    if (count) states_[key].held += count;
}

std::vector<EventThrottle::Report> EventThrottle::due(double now) {
    std::vector<Report> out;
    for (auto& [key, st] : states_) {
        if (st.held == 0 || (st.reported && now - st.lastReport < interval_)) continue;
        out.push_back(Report{key, st.held, !st.reported, st.reported ? now - st.lastReport : 0.0});
        st.held = 0;
        st.reported = true;
        st.lastReport = now;
    }
    return out;
}

}  // namespace rackterm::app
