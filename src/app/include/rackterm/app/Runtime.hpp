// Runtime: one open session wired to one engine. Loads every node's
// processor, checks the session's parameter ids and values against the
// processors' tables (errors carry the session's file:line:column), builds
// and publishes the rack, and carries out parameter and bypass changes,
// keeping the session (what `save` writes) in step with what plays.
//
// All member functions are [control].
#pragma once

#include <rackterm/app/EventThrottle.hpp>
#include <rackterm/common/Result.hpp>
#include <rackterm/config/Session.hpp>
#include <rackterm/engine/Recorder.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::app {

/// Meter readings after ballistics, in dBFS (-inf shown as -120).
struct NodeMeter {
    float peakDb[2] = {-120, -120};
    float rmsDb[2] = {-120, -120};
    float holdDb[2] = {-120, -120};
    float cpuShare = 0;  ///< share of the block period this node took, 0..1
};

struct MeterView {
    std::vector<NodeMeter> nodes;
    NodeMeter master;
    float dspLoad = 0;  ///< rack time / block period, 0..1
};

/// What a hot swap did to a node's parameters.
struct SwapReport {
    size_t params = 0;                 ///< parameters of the new processor
    size_t added = 0, removed = 0;     ///< ids new in it / gone from it
    std::vector<std::string> clamped;  ///< "id: 30.0 dB -> 24.0 dB" for values moved into a new range
    /// "6 parameters (+2 new, -1 removed)" plus clamp notes.
    std::string summary() const;
};

class Runtime {
public:
    /// Load `session` for a rack at `sampleRateHz` with blocks of at most
    /// `maxBlockFrames`; the rack is built and published. Errors: an unknown
    /// processor (did you mean), a module that fails the loader, an unknown
    /// parameter id (did you mean) or a value out of range, an unreadable
    /// player file; each as one line with the session's file:line:column.
    static Result<std::unique_ptr<Runtime>> open(config::Session session, double sampleRateHz,
                                                 uint32_t maxBlockFrames);
    ~Runtime();

    engine::Engine& engine() noexcept { return *engine_; }
    const engine::Engine& engine() const noexcept { return *engine_; }
    const config::Session& session() const noexcept { return session_; }
    double sampleRate() const noexcept { return sampleRate_; }
    uint32_t maxBlockFrames() const noexcept { return maxBlockFrames_; }
    bool dirty() const noexcept { return dirty_; }

    size_t nodeCount() const noexcept { return nodes_.size(); }
    const std::string& nodeId(size_t n) const { return nodes_[n].id; }
    const rackterm_processor_v2& descriptor(size_t n) const { return *nodes_[n].descriptor; }
    float value(size_t node, size_t param) const;
    bool bypassed(size_t node) const;

    /// Index of node `id`; error with did-you-mean.
    Result<size_t> findNode(std::string_view id) const;
    /// Node and parameter indices of "NODE.PARAM"; error with did-you-mean.
    Result<std::pair<size_t, size_t>> findParam(std::string_view target) const;

    /// Set a plain value (must be in range) and send it to the audio thread.
    /// Returns the generation that carries it.
    Result<uint64_t> setValue(size_t node, size_t param, float plain);
    /// Set or clear a node's bypass (crossfaded on the audio thread).
    uint64_t setBypass(size_t node, bool bypass);

    /// Hot swap: replace node `node`'s processor by a new instance of the
    /// module at `modulePath` (loaded from a private copy). The new instance
    /// gets every current value whose id still exists (clamped to its range),
    /// defaults for new ids; removed ids are dropped (also from the session).
    /// The rack that carries it crossfades from the old instance over the
    /// session's crossfade time. On any error the old processor keeps playing.
    Result<SwapReport> swapNode(size_t node, const std::string& modulePath);
    /// The module file a node was loaded from ("" for the player).
    std::string modulePath(size_t node) const;
    /// [control, often] Finish swaps whose crossfade is over: publish a rack
    /// without the replaced instances so they (and unused modules) are freed.
    void tick();
    /// True while a swap's crossfade is still running.
    bool swapping() const noexcept { return fading_; }

    /// Add a node `id` running `processor` (a built-in name or a .so path) at
    /// chain position `position` (0 = first; >= nodeCount() = last). The rack
    /// that carries it fades it in from bypass over 5 ms (no click).
    Result<std::string> addNode(const std::string& id, const std::string& processor, size_t position);
    /// Remove a node: it is bypassed (5 ms crossfade), then a rack without it
    /// goes out. Live, this waits (at most ~50 ms) for the bypass to settle;
    /// with `offline`, the rack changes at once.
    Result<std::string> removeNode(size_t node, bool offline);
    /// Replace the session's nodes by those of the session at `path` (the
    /// JACK client name and connections stay). The running session goes on
    /// when the new one fails to load.
    Result<std::string> loadSession(const std::string& path);

    /// Record the master output to `path` (format from its extension).
    Result<std::string> startRecording(const std::string& path);
    /// Stop recording; waits for the audio thread to leave the recorder
    /// unless `offline`. Reports frames written and blocks dropped.
    Result<std::string> stopRecording(bool offline);
    bool recording() const noexcept { return recorder_ != nullptr; }

    /// Save to `path` ("" = the session's own file). Clears the unsaved flag.
    Result<std::string> save(const std::string& path);

    /// Read the newest meters and apply ballistics; `now` in seconds.
    void updateMeters(double now);
    const MeterView& meters() const noexcept { return meters_; }
    /// New engine events as log lines at time `now` (seconds): xruns and
    /// NaN/Inf output muted per node, each rate-limited (the first at once,
    /// then a count at most every 5 s), and notes from loading (a sound file
    /// with more channels than the player plays).
    std::vector<std::string> takeEvents(double now);

private:
    struct Node {
        std::string id;
        const rackterm_processor_v2* descriptor;
        rackterm_instance* instance;
        std::shared_ptr<void> owner;
        std::string path;  // module file ("" for the player)
        std::string note;  // a warning from loading it, or ""
    };
    Runtime() = default;
    Result<void> loadNode(const config::NodeSpec& spec);
    /// Load a node's processor and check its parameters, without adding it.
    Result<Node> buildNode(const config::NodeSpec& spec) const;
    /// The rack as it plays now (values and bypass from the newest rack).
    std::vector<engine::NodeSetup> currentSetups() const;
    /// The rack as the session file describes it (values and bypass from the session).
    std::vector<engine::NodeSetup> initialSetups() const;
    std::vector<engine::NodeSetup> setupsFrom(const engine::Rack* rack) const;
    void publishRack(std::vector<engine::NodeSetup> setups);

    config::Session session_;
    std::unique_ptr<engine::Engine> engine_;
    std::vector<Node> nodes_;
    double sampleRate_ = 48000;
    uint32_t maxBlockFrames_ = 256;
    bool dirty_ = false;
    bool fading_ = false;
    MeterView meters_;
    double lastMeterTime_ = 0;
    std::vector<double> holdTime_;
    uint64_t seenXruns_ = 0;
    uint64_t seenRackSerial_ = 0;
    std::vector<uint64_t> seenNonFinite_;  // per node of the rack with seenRackSerial_
    EventThrottle throttle_;
    std::vector<std::string> notes_;       // warnings from loading, for takeEvents
    std::unique_ptr<engine::Recorder> recorder_;
};

}  // namespace rackterm::app
