// Later<T>: the result of an operation that may finish after the call that
// started it (a remove waits for its fade-out, a swap for the crossfade
// before it). The control loop completes it; whoever holds a copy polls
// ready(). Copies share one state. [control] only: no locking.
#pragma once

#include <rackterm/common/Result.hpp>

#include <memory>
#include <optional>

namespace rackterm::app {

template <class T>
class Later {
public:
    /// Not finished yet.
    Later() : state_(std::make_shared<std::optional<Result<T>>>()) {}
    /// Finished already with `result`.
    static Later done(Result<T> result) {
        Later l;
        l.finish(std::move(result));
        return l;
    }
    /// True once finish() was called (on any copy).
    bool ready() const noexcept { return state_->has_value(); }
    /// The result; only when ready().
    const Result<T>& result() const { return **state_; }
    /// Complete it (the first call wins; later calls are ignored).
    void finish(Result<T> result) const {
        if (!ready()) state_->emplace(std::move(result));
    }

private:
    std::shared_ptr<std::optional<Result<T>>> state_;
};

}  // namespace rackterm::app
