#include <rackterm/app/Journal.hpp>

#include <algorithm>

namespace rackterm::app {

std::string Edit::what() const {
    switch (kind) {
        case Kind::SetValue: return "set " + node + "." + param;
        case Kind::SetBypass: return "bypass " + node;
        case Kind::AddNode: return "add " + node;
        case Kind::RemoveNode: return "remove " + node;
        case Kind::Load: return label.empty() ? "load " + (sessionAfter ? sessionAfter->path : std::string("?")) : label;
        case Kind::Connections: return label;
    }
    return "edit";
}

void Journal::record(Edit edit, double now, bool merge) {
    steps_.erase(steps_.begin() + static_cast<long>(cursor_), steps_.end());
    if (merge && cursor_ > 0 && edit.kind == Edit::Kind::SetValue) {
        Edit& top = steps_[cursor_ - 1];
        const bool saved = std::any_of(saved_.begin(), saved_.end(), [&](const auto& s) { return s.second == top.serial; });
        if (top.kind == Edit::Kind::SetValue && top.node == edit.node && top.param == edit.param && !saved &&
            now - top.time < kMergeSeconds && now >= top.time) {
            top.after = edit.after;
            top.time = now;
            top.serial = next_++;
            return;
        }
    }
    edit.time = now;
    edit.serial = next_++;
    steps_.push_back(std::move(edit));
    ++cursor_;
    while (steps_.size() > capacity_) {
        base_ = steps_.front().serial;
        steps_.pop_front();
        --cursor_;
    }
}

void Journal::stepBack() noexcept {
    if (cursor_ > 0) --cursor_;
}

void Journal::stepForward() noexcept {
    if (cursor_ < steps_.size()) ++cursor_;
}

void Journal::markSaved(const std::string& path) {
    for (auto& s : saved_)
        if (s.first == path) {
            s.second = state();
            return;
        }
    saved_.emplace_back(path, state());
}

bool Journal::atSaved(const std::string& path) const {
    for (const auto& s : saved_)
        if (s.first == path) return s.second == state();
    return state() == 0 && path.empty();
}

}  // namespace rackterm::app
