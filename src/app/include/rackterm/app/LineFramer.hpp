// Command lines out of a byte stream (the control socket, headless stdin):
// bytes go in as they arrive, complete lines come out. Bounded: a line over
// kMaxLine bytes is refused once (an error reply) and dropped up to its
// newline, and at most `budget` lines are taken per call, so garbage or a
// flood never holds the control loop. A trailing '\r' is dropped. [control];
// a pure class, no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::app {

class LineFramer {
public:
    /// Longest command line, bytes (without the newline).
    static constexpr size_t kMaxLine = 4096;
    /// The reply to an over-long line.
    static constexpr const char* kTooLong = "line too long (at most 4096 bytes)";

    /// One item out: a complete line, or (tooLong) the notice that a line was
    /// refused; `text` is then empty.
    struct Item {
        std::string text;
        bool tooLong = false;
    };

    /// Bytes that may still be buffered before take() must run: stop reading
    /// the source at 0 (its kernel buffer holds the rest).
    size_t room() const noexcept { return pending_.size() >= 2 * kMaxLine ? 0 : 2 * kMaxLine - pending_.size(); }
    /// Append received bytes.
    void append(std::string_view bytes);
    /// Up to `budget` items, in order.
    std::vector<Item> take(size_t budget);
    /// True when a complete line waits (take() has more to give).
    bool hasLine() const noexcept;
    /// The source closed: a final line without a newline is taken as a line.
    void finish();

private:
    std::string pending_;
    bool discarding_ = false;  // inside an over-long line: drop up to its newline
};

}  // namespace rackterm::app
