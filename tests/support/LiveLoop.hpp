// The control loop and the audio thread played by one test thread: commands
// whose reply is pending (a fade-out, a crossfade) finish as they do live,
// block by block. Header-only: for tests that link rackterm_app.
#pragma once

#include <rackterm/app/Commands.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace rackterm::test {

/// Play `reply` to its end: while it is pending, run one block of `frames`
/// frames of silence through the engine, then tick the runtime (at most
/// `maxBlocks` blocks; still pending after that: an error reply).
inline app::Reply settle(app::Runtime& rt, app::Reply reply, uint32_t frames = 64, int maxBlocks = 20000) {
    std::vector<float> l(frames), r(frames);
    float* out[2] = {l.data(), r.data()};
    for (int b = 0; reply.waiting() && b < maxBlocks; ++b) {
        rt.engine().process(nullptr, out, frames);
        rt.tick();
        if (auto final = reply.pending()) reply = std::move(*final);
    }
    if (reply.waiting()) return app::Reply{false, "still pending after " + std::to_string(maxBlocks) + " blocks", false};
    return reply;
}

/// Wait for `reply` while another thread plays the audio: tick the runtime
/// every 0.2 ms for at most `seconds`.
inline app::Reply await(app::Runtime& rt, app::Reply reply, double seconds = 10.0) {
    const double end = app::nowSeconds() + seconds;
    while (reply.waiting() && app::nowSeconds() < end) {
        rt.tick();
        if (auto final = reply.pending()) reply = std::move(*final);
        else std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    if (reply.waiting()) return app::Reply{false, "still pending", false};
    return reply;
}

/// execute() `line` and settle() its reply.
inline app::Reply run(app::CommandContext& ctx, const std::string& line, uint32_t frames = 64) {
    return settle(ctx.runtime, app::execute(ctx, line), frames);
}

}  // namespace rackterm::test
