// The control loop and the audio thread played by one test thread: commands
// whose reply is pending (a fade-out, a crossfade) finish as they do live,
// block by block. Header-only: for tests that link rackterm_app.
#pragma once

#include <rackterm/app/Commands.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
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

/// A 1 kHz sine at amplitude 0.5 played through the runtime's engine on a
/// thread of its own (64-frame blocks at 48 kHz, 0.2 ms apart), as the
/// audio thread would; the left output is kept (at most `seconds` of it).
/// The control thread meanwhile runs commands with await().
class SineThread {
public:
    explicit SineThread(app::Runtime& rt, double seconds = 30) : rt_(rt) {
        out_.reserve(static_cast<size_t>(48000 * seconds));
        thread_ = std::thread([this] { loop(); });
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ~SineThread() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    /// The largest step between neighbouring output samples after the first 0.1 s (stop() first).
    float largestStep() const {
        float step = 0;
        for (size_t i = 4800; i < out_.size(); ++i) step = std::max(step, std::fabs(out_[i] - out_[i - 1]));
        return step;
    }
    /// The largest step of the clean sine itself.
    static float cleanStep() { return 2.0f * 0.5f * std::sin(3.14159265f * 1000.0f / 48000.0f); }

private:
    void loop() {
        std::vector<float> in(64), l(64), r(64);
        uint64_t phase = 0;
        while (!stop_.load()) {
            for (float& x : in) x = 0.5f * std::sin(2.0f * 3.14159265f * 1000.0f * static_cast<float>(phase++ % 48000) / 48000.0f);
            const float* ins[2] = {in.data(), in.data()};
            float* outs[2] = {l.data(), r.data()};
            rt_.engine().process(ins, outs, 64);
            if (out_.size() + 64 < out_.capacity()) out_.insert(out_.end(), l.begin(), l.end());
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
    }
    app::Runtime& rt_;
    std::atomic<bool> stop_{false};
    std::vector<float> out_;
    std::thread thread_;
};

/// execute() `line` and settle() its reply.
inline app::Reply run(app::CommandContext& ctx, const std::string& line, uint32_t frames = 64) {
    return settle(ctx.runtime, app::execute(ctx, line), frames);
}

}  // namespace rackterm::test
