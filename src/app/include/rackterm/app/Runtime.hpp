// Runtime: the session document of one open session and the engine that
// plays it.
//
// The document (nodes with id, processor, parameters, bypass, watch, file)
// is the single source of truth. The engine's rack is a projection of it:
// every rack is built from the document, never kept in step beside it.
// Every change a command makes is an edit in the journal, so it can be
// undone and redone; the unsaved flag follows the journal.
//
// Changes to the rack's structure (add, remove, load, hot swap, and undo or
// redo of them) are operations run one after another by the control loop:
// each starts once the rack it changes has settled (no fade or crossfade
// running) and may wait for the audio thread (a removed node is faded out
// first, a swapped one crossfades). Nothing here sleeps: a call returns at
// once, with a Later that tick() completes. Parameter and bypass changes
// apply at once. Offline (setOffline), nothing waits for the audio thread.
//
// All member functions are [control].
#pragma once

#include <rackterm/app/EventLog.hpp>
#include <rackterm/app/Journal.hpp>
#include <rackterm/app/Later.hpp>
#include <rackterm/app/Meters.hpp>
#include <rackterm/app/ParamMapping.hpp>
#include <rackterm/common/Result.hpp>
#include <rackterm/config/Session.hpp>
#include <rackterm/processor.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::engine {
class Engine;
class Recorder;
struct GraphPlan;
}  // namespace rackterm::engine

namespace rackterm::app {

class TrialRun;

/// The meters of every node (chain order) and the master, after ballistics.
struct MeterView {
    std::vector<NodeMeter> nodes;
    NodeMeter master;
    float dspLoad = 0;  ///< rack time / block period, 0..1
};

/// What the status line and `status` show of the engine, as plain values.
struct EngineStatus {
    double sampleRate = 0;     ///< Hz
    uint32_t blockFrames = 0;  ///< frames per block (JACK's buffer size live)
    float dspLoad = 0;         ///< percent of the block period (JACK's estimate live)
    uint64_t xruns = 0;        ///< since the session opened
    bool serverLost = false;   ///< the JACK server went away and is not back yet (set by Live)
};

/// The graph as the rack runs it: what `list nodes`, `status`, the rack
/// pane and the graph view show.
struct GraphInfo {
    std::vector<size_t> order;         ///< node indices in processing order
    std::vector<uint32_t> latency;     ///< per node: its own latency, frames
    std::vector<uint32_t> outLatency;  ///< per node: lag of its output behind the graph input, frames
    std::vector<uint32_t> copies;      ///< per node: instances run (2 = dual mono on a stereo connection)
    std::vector<uint32_t> inWidth, outWidth;  ///< per node: channels read / written
    uint32_t totalLatency = 0;         ///< lag of the graph output behind its input, frames
};

/// Seconds a hot-swapped build is watched (and the previous one kept loaded).
inline constexpr double kWatchSeconds = 5.0;

/// How a value change joins the journal.
enum class Merge {
    No,   ///< its own undo step
    Run,  ///< joins the previous step when it set the same parameter under a second ago (held keys, nudge)
};

class Runtime {
public:
    /// Load `session` for a rack at `sampleRateHz` with blocks of at most
    /// `maxBlockFrames`; the rack is built and published. Errors: an unknown
    /// processor (did you mean), a module that fails the loader, an unknown
    /// parameter id (did you mean) or a value out of range, an unreadable
    /// player file; each as one line with the session's file:line:column;
    /// an isolated node whose child does not start. Isolated nodes' children
    /// run at SCHED_FIFO `realtimePriority` (0 = normal scheduling).
    /// `offline`: an offline render from the start (as setOffline(true), but
    /// before the nodes are made: a plugin's work at creation, such as a
    /// sampler loading its default sample, is done before the first block).
    static Result<std::unique_ptr<Runtime>> open(config::Session session, double sampleRateHz,
                                                 uint32_t maxBlockFrames, int realtimePriority = 0,
                                                 bool offline = false);
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    /// The engine the backends run (JACK's process callback, the offline
    /// render, tests playing the audio thread). Declared only: include
    /// <rackterm/engine/rt/Engine.hpp> to use it.
    engine::Engine& engine() noexcept { return *engine_; }
    const engine::Engine& engine() const noexcept { return *engine_; }

    // ---- the document -------------------------------------------------
    /// The session as it is now (what `save` writes): a copy.
    config::Session document() const;
    /// The [session] name and the file the document came from ("" when none).
    const std::string& name() const noexcept { return doc_.name; }
    const std::string& path() const noexcept { return doc_.path; }
    double sampleRate() const noexcept { return sampleRate_; }
    uint32_t maxBlockFrames() const noexcept { return maxBlockFrames_; }
    /// True when the document differs from its file: the journal is not at
    /// the state last saved or loaded, or a hot swap changed values since.
    bool dirty() const;

    size_t nodeCount() const noexcept { return nodes_.size(); }
    const std::string& nodeId(size_t n) const { return nodes_[n].spec.id; }
    const config::NodeSpec& nodeSpec(size_t n) const { return nodes_[n].spec; }
    const rackterm_processor_v2& descriptor(size_t n) const { return *nodes_[n].proc.descriptor; }
    /// A parameter's plain value: the document's, else the processor's default.
    float value(size_t node, size_t param) const;
    /// A plugin's control output port (a compressor's gain reduction), read-only.
    struct ControlReading {
        std::string id, name, unit;
        float value = 0.0f;  ///< after the audio thread's last block
    };
    /// [control] Node `n`'s control outputs with their values now: an LV2 or
    /// LADSPA plugin's output control ports (empty for other processors and
    /// for isolated nodes, whose ports are in their sandbox).
    std::vector<ControlReading> controlOutputs(size_t n) const;
    /// [control] Send a MIDI note on (`velocity` 1..127) or off (0) for
    /// `key` (0..127) to node `id`: an LV2 plugin with a MIDI input (an
    /// instrument, a sampler), every dual-mono copy of it, at the start of
    /// its next block. Error (one line) when the node has no MIDI input or
    /// is isolated.
    Result<std::string> sendNote(const std::string& id, int key, int velocity);
    bool bypassed(size_t node) const { return nodes_[node].spec.bypass; }
    /// Node `n`'s lifecycle state (docs/packages.md): "active" in the rack,
    /// "quiescing" while it fades out before a swap, remove or unload,
    /// "unloaded" once its package was uninstalled under it (bypassed, its
    /// instance deactivated). ("discovered" and "loaded" pass while a node
    /// is being made, before it joins the rack.)
    const char* nodeState(size_t n) const;
    /// Why node `n` cannot leave bypass ("node 'x' is unloaded (its package
    /// was uninstalled); ..."), or "" when it can.
    std::string whyUnloaded(size_t n) const;
    /// The package node `n` runs ("ID VERSION" as loaded), or "" for other
    /// processors and for an unloaded node (it runs nothing).
    std::string nodePackage(size_t n) const;
    /// `upgrade ID`: hot-swap every node running a component of package
    /// `id` to the files installed now (trial, crossfade, values carried by
    /// id, as `reload`); the reply and the log name each node's swap report.
    /// Error when no node uses the package.
    Later<std::string> upgradePackage(const std::string& id);
    /// `unload ID`: every node running package `id` fades to bypass, then
    /// its instances are deactivated (RACKTERM_DEACTIVATE_UNINSTALL) and it
    /// shows "unloaded": it stays in the session, passing its input through,
    /// until `reload` finds the package again. Error when no node uses it.
    Later<std::string> unloadPackage(const std::string& id);
    /// The module file a node was loaded from ("" for the player).
    const std::string& modulePath(size_t node) const { return nodes_[node].proc.path; }
    /// True when node `n` runs an LV2 or LADSPA plugin (lv2:, ladspa:).
    bool nodeIsPlugin(size_t n) const;
    /// Channels of the reserved `input` and `output` nodes (the JACK ports),
    /// fixed when the session opened.
    uint32_t inputCount() const noexcept { return inputs_; }
    uint32_t outputCount() const noexcept { return outputs_; }
    /// True when the session has no connections: the nodes form a chain in file order.
    bool isChain() const noexcept { return doc_.connections.empty(); }
    /// The connections the graph runs: the document's, or for a chain the
    /// chain written out (input -> first node -> ... -> output).
    std::vector<config::ConnectionSpec> connections() const;
    /// The graph of the newest rack: order, latency, dual-mono copies.
    const GraphInfo& graph() const noexcept { return graph_; }
    /// Node indices in the order the rack runs them (file order when the
    /// newest rack does not cover every node).
    std::vector<size_t> processingOrder() const;
    /// Counts changes of the node list (add, remove, load, and their undo): hot reload re-watches when it moves.
    uint64_t structureSerial() const noexcept { return structureSerial_; }

    /// Index of node `id`; error with did-you-mean.
    Result<size_t> findNode(std::string_view id) const;
    /// Node and parameter indices of "NODE.PARAM"; error with did-you-mean.
    Result<std::pair<size_t, size_t>> findParam(std::string_view target) const;

    // ---- edits (journaled) --------------------------------------------
    /// Set a plain value (must be finite and in range; -0 becomes 0) in the
    /// document and send it to the audio thread. One undo step, or part of
    /// the previous one with Merge::Run.
    Result<void> setValue(size_t node, size_t param, float plain, Merge merge = Merge::No);
    /// Set or clear a node's bypass (crossfaded on the audio thread).
    void setBypass(size_t node, bool bypass);
    /// Add a node `id` running `processor` (a built-in name or a .so path,
    /// relative to the session's folder), faded in from bypass (no click).
    /// In a chain: last, or after (`before` false) / before node `anchor` as
    /// the rack is when the operation runs. In a graph: unconnected, or
    /// spliced into `anchor`'s outgoing connections (after: anchor -> id ->
    /// what anchor fed) or incoming ones (before). Errors: id taken or
    /// malformed, the node limit, no node `anchor`, a processor that does
    /// not load, a splice whose channel counts do not fit.
    Later<std::string> addNode(const std::string& id, const std::string& processor, const std::string& anchor = "",
                               bool before = false);
    /// Remove node `id`: it is faded out through its bypass, then a rack
    /// without it goes out. In a graph its connections go too; a node fed
    /// by one connection is spliced out (its source feeds what it fed, the
    /// levels multiplied), else its outgoing connections fade out first.
    Later<std::string> removeNode(const std::string& id);
    /// Replace the document by the session at `path` (the JACK client and
    /// control socket keep their name). The running session goes on when the
    /// new one fails to load.
    Later<std::string> loadSession(const std::string& path);
    /// Make `recovered` (the same session with the edits a recovery file
    /// kept) the document, as unsaved edits and one undo step ("recover"):
    /// `undo` goes back to the file's state. Errors as loadSession.
    Later<std::string> recoverDocument(config::Session recovered);
    /// Connect `from` ("NODE", "NODE:out_K", "input") to `to` ("NODE",
    /// "NODE:in_K", "output") at `gainDb` (a send level), or set the level of
    /// that connection when it exists. The connection fades in (no click).
    /// A chain is written out as connections first. Errors: an unknown node
    /// or port (did you mean), channel counts that do not fit, a loop
    /// without feedback (with its path), the connection limit.
    Later<std::string> connect(const std::string& from, const std::string& to, double gainDb = 0,
                               bool feedback = false);
    /// Remove the connection `from` -> `to` (as listed): it fades out, then
    /// goes. Errors: no such connection (the node's connections are named),
    /// the last connection of a graph (a session without connections is a chain).
    Later<std::string> disconnect(const std::string& from, const std::string& to);
    /// Reverse the newest edit / repeat the newest undone one, through the
    /// same paths as the edit (a removed node comes back faded in at its
    /// place with its values and bypass). Error when there is nothing to undo / redo.
    Later<std::string> undo();
    Later<std::string> redo();
    const Journal& journal() const noexcept { return journal_; }

    // ---- the rest -----------------------------------------------------
    /// Hot swap: replace node `id`'s processor by a new instance of the
    /// module at `modulePath` (loaded from a private copy). Values map by
    /// mapParameters(); removed ids leave the document, clamped values are
    /// written to it (not an undo step). The rack crossfades from the old
    /// instance over the session's crossfade time. The Later is ready when
    /// the new instance plays; on any error the old one keeps playing. With
    /// `sameModule` (hot reload: the file was rebuilt in place), the swap is
    /// refused when the node no longer runs `modulePath` by then (a load or
    /// undo replaced it with another node of the same id).
    Later<SwapReport> swapNode(const std::string& id, const std::string& modulePath, bool sameModule = false);
    /// True while a swap's crossfade is running or an operation waits.
    bool swapping() const noexcept { return !ops_.empty(); }
    /// True while operations or waits are pending (tick() has work).
    bool busy() const noexcept { return !ops_.empty() || !waits_.empty(); }

    /// Ready once the audio thread has applied every change made so far;
    /// an error after `timeoutSeconds` when it does not move.
    Later<std::string> waitApplied(double timeoutSeconds = 5.0);

    /// Record the master output to `path` (format from its extension).
    Result<std::string> startRecording(const std::string& path);
    /// Stop recording: ready once the audio thread has left the recorder
    /// (two blocks) and the file is closed. Reports frames written and
    /// blocks dropped.
    Later<std::string> stopRecording();
    bool recording() const noexcept { return recorder_ != nullptr; }

    /// Save to `path` ("" = the session's own file), keeping the file's
    /// comments and layout. Saving to the own file (also through another
    /// name for it) clears the unsaved flag. An operation: it runs once the
    /// operations before it are done, so what is saved is one state of the
    /// journal.
    Later<std::string> save(const std::string& path);

    /// Rebuild the rack for `sampleRateHz` and blocks of at most
    /// `maxBlockFrames` (a JACK server that came back with other settings):
    /// every node's processor is created again with its current values
    /// (player files decoded again at the new rate) and a fresh rack is
    /// published; delay lines and feedback blocks start empty. Call when
    /// !busy() and the audio is stopped. Error, with nothing changed, when a
    /// processor does not load again.
    Result<void> reformat(double sampleRateHz, uint32_t maxBlockFrames);

    /// Offline render: operations never wait for the audio thread (racks
    /// change at the next block); isolated nodes get the offline deadline
    /// and a crashed one is restarted before the next block.
    void setOffline(bool offline);
    /// SCHED_FIFO priority for isolated nodes' children (JACK's client
    /// priority; 0 = none). Applies to children started from now on.
    void setRealtimePriority(int priority) noexcept { realtimePriority_ = priority; }

    /// True while an isolated node's child is starting, or ended or stuck and
    /// not yet restarted: tick() soon (every few milliseconds) to bring it back.
    bool isolationPending() const;
    /// True when node `n` runs in a rackterm-sandbox child (`isolate`).
    bool nodeIsolated(size_t n) const;
    /// What the console shows beside an isolated node: "" while it plays,
    /// else "crashed (SIGSEGV)", "late 4.1 ms", "stuck", "restarting" or
    /// "failed" (3 failures in 10 s: bypassed until `reload NODE`).
    std::string nodeFault(size_t n) const;

    /// [control, often] Free racks the audio thread handed back, advance
    /// pending operations and waits.
    void tick();

    /// Read the newest meters and apply ballistics; `now` in seconds.
    void updateMeters(double now);
    const MeterView& meters() const noexcept { return meterView_; }
    /// The engine as plain values (rate, block, DSP load, xruns, server lost).
    EngineStatus status() const;
    /// New log lines at time `now` (seconds): notes from loading (a sound
    /// file with more channels than the player plays), then the engine's
    /// events through EventLog (xruns, NaN/Inf mutes; rate-limited).
    std::vector<std::string> takeEvents(double now);

private:
    /// A hot swap watched for kWatchSeconds: the previous build stays loaded,
    /// and the new one goes back to it when it outputs NaN/Inf or is over
    /// budget in that time.
    struct Watch {
        std::string id;                 // the node
        std::shared_ptr<void> build;    // the new build's module (the node must still run it)
        std::shared_ptr<void> previous; // the build to go back to
        std::string previousPath;
        std::string previousPackage;    // "ID VERSION" the previous build came from, or ""
        double until = 0;               // seconds (nowSeconds)
        bool reverting = false;
        uint64_t rack = 0;              // serial of the rack its NaN/Inf count is read from
        uint64_t baseline = 0;          // that count when the crossfade was over
    };
    /// A loaded processor: what a rack node runs.
    struct Processor {
        const rackterm_processor_v2* descriptor = nullptr;
        rackterm_instance* instance = nullptr;
        std::shared_ptr<void> owner;  // keeps instance and module alive
        std::string path;             // module file ("" for the player)
        std::string note;             // a warning from loading it, or ""
        /// Dual mono: more instances of the same module (made when a rack needs them).
        std::vector<rackterm_instance*> copies;
        std::vector<std::shared_ptr<void>> copyOwners;
        std::shared_ptr<void> module;  // the loader::Module copies are made from (none for the player)
        std::string package;           // "ID VERSION" of the package it came from, else ""
    };
    /// [control] Set the reason every instance of `proc` gets in its
    /// deactivate() when freed (RACKTERM_DEACTIVATE_*).
    static void setDeactivateReason(const Processor& proc, uint32_t reason);
    /// [control] After a save to `sessionPath`: remove the state folders
    /// rackterm wrote beside it (NAME.state/NODE/ with a state.ttl, or a
    /// save's leftover NODE.saving-*) whose node is not in `kept`, and
    /// NAME.state itself when that leaves it empty. Nothing else is touched.
    static void pruneStateFolders(const std::string& sessionPath, const std::set<std::string>& kept);
    /// Where node `nodeId`'s plugin state is saved for the session file
    /// `sessionPath`: NAME.state/NODE beside it (NAME: the file's stem).
    static std::string pluginStateDir(const std::string& sessionPath, const std::string& nodeId);
    /// [control, each tick] Replace every plugin instance the rack reset
    /// after NaN/Inf (it plays dry meanwhile) by a new one through swapNode;
    /// after 3 restarts in 10 s a node stays dry until `reload`.
    void restartResetPlugins();
    std::map<std::string, std::vector<double>> pluginRestarts_;  ///< node id -> restart times (s)
    /// Carry an LV2 plugin's state from `from` (may be playing) into `to`
    /// (not yet playing) when both run the same plugin; a note when it fails.
    void carryPluginState(const Processor& from, const Processor& to) const;
    /// One node of the document with what plays it.
    struct Node {
        config::NodeSpec spec;
        Processor proc;
        MeterBallistics meter;
        bool quiescing = false;  ///< fading out before a swap, remove or unload
        bool unloaded = false;   ///< its package went: bypassed, instances deactivated
    };
    /// One queued operation: step() runs it on; true once it is finished.
    struct Operation {
        std::function<bool()> step;
    };
    /// Extra state for one node of the next rack (a fade in, a crossfade).
    struct Fade {
        size_t node = SIZE_MAX;
        bool fadeIn = false;
        Processor from;  // swap: the instance crossfaded from
    };

    Runtime() = default;
    /// Load a node's processor and check its parameters against it. With
    /// `adapt` (bringing back a node from the journal, whose processor may
    /// have been rebuilt since), ids the processor lacks are dropped from
    /// `spec` and values clamped into range instead of failing; `adapted`
    /// says whether anything changed. With `restoreState` (a session being
    /// opened or loaded), an LV2 plugin's state saved beside `sessionPath`
    /// (NAME.state/NODE/) is restored into the new instance.
    Result<Processor> loadProcessor(config::NodeSpec& spec, const std::string& sessionPath, bool adapt = false,
                                    bool* adapted = nullptr, bool restoreState = false) const;
    /// Build a rack from the document (plus `fade`) and publish it. With
    /// `rampNew`, connections the previous rack did not have fade in and
    /// changed levels ramp; connections in `fadeOut` ramp to silence.
    void publishRack(const Fade& fade, bool rampNew = false,
                     const std::vector<config::ConnectionSpec>& fadeOut = {});
    void publishRack() { publishRack(Fade{SIZE_MAX, false, {}}); }
    /// Plan the graph of `nodes` with `connections` (the document's graph
    /// when they are the document's). Errors name the connection's place.
    Result<std::shared_ptr<engine::GraphPlan>> plan(const std::vector<const Node*>& nodes,
                                                    const std::vector<config::ConnectionSpec>& connections,
                                                    bool chain) const;
    Result<std::shared_ptr<engine::GraphPlan>> planDocument(const std::vector<config::ConnectionSpec>& connections,
                                                            const Node* extra = nullptr, size_t extraAt = 0,
                                                            size_t without = SIZE_MAX) const;
    /// The chain of the nodes written out as connections.
    std::vector<config::ConnectionSpec> chainConnections() const;

    /// The document's plain values of node `n`, table order.
    std::vector<float> values(size_t n) const;
    /// True when the newest rack has no fade running and the audio thread
    /// took every change (or the audio is not running, or offline).
    bool settled() const;
    bool audioStalled() const;
    void submit(Operation op);
    void runOperations();

    // Operations. `record`: add an undo step when done; `done` gets the result.
    using Done = std::function<void(const Result<std::string>&)>;
    /// Add `spec` at `position`, or next to `anchor` when it is not "";
    /// `connections` (from the journal) replaces the document's, else a graph is spliced.
    Operation addOp(config::NodeSpec spec, size_t position, std::string anchor, bool before, bool record, Done done,
                    std::optional<std::vector<config::ConnectionSpec>> connections = std::nullopt);
    Operation removeOp(std::string id, bool record, Done done,
                       std::optional<std::vector<config::ConnectionSpec>> connections = std::nullopt);
    /// Install a new instance of `module` (a loader::Module) in node `n`,
    /// values mapped by id, crossfaded from the one playing; finishes
    /// `later` (an error leaves the node as it was). True when a rack went out.
    bool installBuild(size_t n, const std::shared_ptr<void>& module, const std::string& path,
                      const Later<SwapReport>& later);
    /// One turn of the trial of the module at `path` with `values` (by id),
    /// started on the first call: nullopt while it runs, "" when it passed
    /// (or the module does not load, which the caller's load reports), else
    /// "trial (256-frame blocks at 48000 Hz): WHY".
    std::optional<std::string> trialStep(std::unique_ptr<TrialRun>& trial, const std::string& path,
                                         const std::vector<std::pair<std::string, float>>& values);
    /// Make node `spec`'s instance of `module` (a loader::Module) from file
    /// `path`: in process, or in a rackterm-sandbox child when isolates(spec).
    /// A non-empty `stateOf` (a session file) restores the plugin state saved
    /// beside it for this node, if any (else the caller carries the state of
    /// the instance it replaces, or the plugin starts from its default).
    Result<Processor> instantiate(const std::shared_ptr<void>& module, const config::NodeSpec& spec,
                                  const std::string& path, const std::string& stateOf = {}) const;
    /// True when `spec` runs isolated: its own `isolate`, else [engine] isolate
    /// ("watched" by default). Never a player.
    bool isolates(const config::NodeSpec& spec) const;
    /// Supervise every isolated child (IsolatedProcessor::supervise): log
    /// what happened; a watched new build that failed is reverted.
    void superviseIsolated();
    /// Check every node of the newest rack: a swapped build within its watch
    /// that output NaN/Inf or went over budget is reverted; another node
    /// over budget is bypassed and named.
    void watchNodes();
    /// Go back from `watch`'s new build to the previous one (`why` it
    /// failed, `after` seconds after the swap), crossfaded, and say so.
    Operation revertOp(const Watch& watch, std::string why, double after);
    /// Make `target` the document's connections: removed ones fade out
    /// first, new ones fade in, changed levels ramp.
    Operation graphOp(std::vector<config::ConnectionSpec> target, std::string label, bool record, Done done);
    /// graphOp of the connections `make` computes when the operation starts (with its label).
    Operation deferredGraphOp(
        std::function<Result<std::pair<std::vector<config::ConnectionSpec>, std::string>>()> make, Done done);
    /// With `recovered`, the document becomes `target` as unsaved edits (recoverDocument).
    Operation loadOp(std::shared_ptr<const config::Session> target, bool record, Done done, bool recovered = false);
    Operation journalOp(bool undo, Later<std::string> later);
    /// Set one parameter's document value (nullopt: back to the default) and send it.
    Result<std::string> applyValue(const std::string& node, const std::string& param, std::optional<double> value);
    Result<std::string> applyBypass(const std::string& node, bool bypass);
    /// Set node `node`'s bypass in the document and send it (no undo step).
    void playBypass(size_t node, bool bypass);
    /// Why node `id` cannot be added to the rack as it is now (taken, the node limit), or nullopt.
    std::optional<Error> addRefusal(const std::string& id) const;

    config::Session doc_;  // name, engine, path, sourceText, connections; its nodes are nodes_[i].spec
    uint32_t inputs_ = 2, outputs_ = 2;
    GraphInfo graph_;
    std::vector<config::ConnectionSpec> published_;  // the connections of the newest rack (a chain written out)
    std::vector<Node> nodes_;
    std::unique_ptr<engine::Engine> engine_;
    Journal journal_;
    bool extraDirty_ = false;  // a hot swap changed values the journal does not hold
    double sampleRate_ = 48000;
    uint32_t maxBlockFrames_ = 256;
    bool offline_ = false;
    uint64_t structureSerial_ = 0;
    std::deque<Operation> ops_;
    double headSince_ = 0;  // when the operation at the head of ops_ began (seconds)
    uint64_t opGeneration_ = 0;  // the newest generation an operation issued: what settled() waits for
    std::vector<std::function<bool()>> waits_;  // each true once finished
    std::vector<Watch> watches_;               // hot swaps still watched
    /// An isolated instance (a loader::Instance with a child) and its node.
    struct Isolated {
        std::string id;
        std::weak_ptr<void> instance;
        uint32_t failures = 0;  // its failure count when last supervised
    };
    mutable std::vector<Isolated> isolated_;
    mutable std::set<std::string> isolatedPluginSaid_;  // plugin nodes told they run isolated
    mutable bool sandboxMissingSaid_ = false;
    int realtimePriority_ = 0;
    uint64_t lastBlocks_ = 0;
    double lastBlockTime_ = 0;
    MeterView meterView_;
    MeterBallistics master_;
    double lastMeterTime_ = 0;
    EventLog events_;
    mutable std::vector<std::string> notes_;  // warnings from loading, for takeEvents
    std::unique_ptr<engine::Recorder> recorder_;
    std::vector<std::shared_ptr<engine::Recorder>> parkedRecorders_;  // stopped while the audio thread stood still
};

/// Seconds on the steady clock.
double nowSeconds();

}  // namespace rackterm::app
