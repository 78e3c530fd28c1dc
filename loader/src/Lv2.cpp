// LV2 plugins behind the processor ABI, through lilv.
//
// One lilv world per process, made on first use and guarded by a mutex (lilv
// is not thread-safe; only control-side code calls it). Audio ports are
// connected to the rack's buffers in process(); control input ports are the
// parameters (port order); control outputs are read after every run; CV
// ports get zeroed blocks; atom ports get empty sequences (input) or a
// cleared buffer (output) before every run.
//
// Features offered: urid:map and unmap, options (sample rate, min / max /
// nominal block length), buf-size:boundedBlockLength and fixedBlockLength,
// worker:schedule, state:loadDefaultState, log:log (see offeredLv2Features()).
//
// A plugin that asks for fixedBlockLength (required or optional) always
// runs blocks of exactly the rack's maximum block (N frames): the adapter
// gathers the rack's blocks, of any length, into N-frame runs and plays
// each run's output during the next N frames, so the node reports N frames
// more latency (the graph compensates it) and a render with blocks cut by
// `at` lines, or ending short, equals one without.
#include "PluginSupport.hpp"

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/midi/midi.h>
#include <lv2/options/options.h>
#include <lv2/parameters/parameters.h>
#include <lv2/port-props/port-props.h>
#include <lv2/resize-port/resize-port.h>
#include <lv2/state/state.h>
#include <lv2/units/units.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <fcntl.h>
#include <semaphore.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace rackterm::loader {

std::vector<std::string> lv2Path() {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("LV2_PATH"); env && *env) {
        std::string_view all = env;
        while (!all.empty()) {
            const size_t colon = all.find(':');
            if (colon != 0) dirs.emplace_back(all.substr(0, colon));
            if (colon == std::string_view::npos) break;
            all.remove_prefix(colon + 1);
        }
    } else {
        dirs = {"~/.lv2", "/usr/local/lib/lv2", "/usr/lib/lv2"};
        if (const std::string ma = plugins::multiarch(); !ma.empty()) {
            dirs.push_back("/usr/local/lib/" + ma + "/lv2");
            dirs.push_back("/usr/lib/" + ma + "/lv2");
        }
    }
    const char* home = std::getenv("HOME");
    for (std::string& d : dirs)
        if (d.rfind("~/", 0) == 0 && home && *home) d = std::string(home) + d.substr(1);
    return dirs;
}

const std::vector<std::string>& offeredLv2Features() {
    static const std::vector<std::string> offered = {
        LV2_URID__map,          LV2_URID__unmap,       LV2_OPTIONS__options,  LV2_BUF_SIZE__boundedBlockLength,
        LV2_BUF_SIZE__fixedBlockLength,
        LV2_WORKER__schedule,   LV2_STATE__loadDefaultState, LV2_LOG__log,
        // Properties of the plugin, not services of the host: nothing to provide.
        LV2_CORE__hardRTCapable, LV2_CORE__inPlaceBroken, LV2_CORE__isLive,
        LV2_STATE__threadSafeRestore,
    };
    return offered;
}

namespace plugins {

namespace {

// ---- URIDs: one table per process, for every plugin and thread. ----

std::mutex gUridMutex;
std::unordered_map<std::string, LV2_URID>& uridTable() {
    static std::unordered_map<std::string, LV2_URID> t;
    return t;
}
std::deque<std::string>& uridNames() {
    static std::deque<std::string> n;  // URID i is n[i - 1]; a deque keeps c_str() stable
    return n;
}

LV2_URID mapUri(LV2_URID_Map_Handle, const char* uri) {
    if (!uri) return 0;
    std::lock_guard<std::mutex> lock(gUridMutex);
    auto& t = uridTable();
    if (auto it = t.find(uri); it != t.end()) return it->second;
    uridNames().emplace_back(uri);
    const auto id = static_cast<LV2_URID>(uridNames().size());
    t.emplace(uri, id);
    return id;
}

const char* unmapUri(LV2_URID_Unmap_Handle, LV2_URID urid) {
    std::lock_guard<std::mutex> lock(gUridMutex);
    const auto& n = uridNames();
    return urid >= 1 && urid <= n.size() ? n[urid - 1].c_str() : nullptr;
}

LV2_URID_Map gMap{nullptr, &mapUri};
LV2_URID_Unmap gUnmap{nullptr, &unmapUri};
LV2_Feature gMapFeature{LV2_URID__map, &gMap};
LV2_Feature gUnmapFeature{LV2_URID__unmap, &gUnmap};
LV2_Feature gBoundedFeature{LV2_BUF_SIZE__boundedBlockLength, nullptr};
LV2_Feature gFixedFeature{LV2_BUF_SIZE__fixedBlockLength, nullptr};
LV2_Feature gLoadDefaultFeature{LV2_STATE__loadDefaultState, nullptr};

// ---- The lilv world. ----

struct World {
    LilvWorld* world = nullptr;
    LilvNode *input, *output, *audio, *control, *cv, *atomPort, *connectionOptional, *integer, *toggled,
        *sampleRate, *enumeration, *logarithmic, *unit, *unitSymbol, *designation, *latency, *reportsLatency,
        *minimumSize, *minorVersion, *microVersion, *loadDefaultState, *workerInterface, *midiEvent, *stateInterface;
    ~World() {
        for (LilvNode* n : {input, output, audio, control, cv, atomPort, connectionOptional, integer, toggled,
                            sampleRate, enumeration, logarithmic, unit, unitSymbol, designation, latency,
                            reportsLatency, minimumSize, minorVersion, microVersion, loadDefaultState,
                            workerInterface, midiEvent, stateInterface})
            lilv_node_free(n);
        lilv_world_free(world);
    }
};

std::recursive_mutex gWorldMutex;
/// The world new modules come from, under gWorldMutex. Every module holds
/// its own reference (its plugin lives in that world): after
/// rescanPlugins() the old world goes when its last module does.
std::shared_ptr<World> gWorld;

World& world() {
    if (gWorld) return *gWorld;
    auto w = std::make_shared<World>();
    w->world = lilv_world_new();
    std::string path;
    for (const std::string& d : lv2Path()) path += (path.empty() ? "" : ":") + d;
    LilvNode* p = lilv_new_string(w->world, path.c_str());
    lilv_world_set_option(w->world, LILV_OPTION_LV2_PATH, p);
    lilv_node_free(p);
    lilv_world_load_all(w->world);
    LilvWorld* lw = w->world;
    w->input = lilv_new_uri(lw, LV2_CORE__InputPort);
    w->output = lilv_new_uri(lw, LV2_CORE__OutputPort);
    w->audio = lilv_new_uri(lw, LV2_CORE__AudioPort);
    w->control = lilv_new_uri(lw, LV2_CORE__ControlPort);
    w->cv = lilv_new_uri(lw, LV2_CORE__CVPort);
    w->atomPort = lilv_new_uri(lw, LV2_ATOM__AtomPort);
    w->connectionOptional = lilv_new_uri(lw, LV2_CORE__connectionOptional);
    w->integer = lilv_new_uri(lw, LV2_CORE__integer);
    w->toggled = lilv_new_uri(lw, LV2_CORE__toggled);
    w->sampleRate = lilv_new_uri(lw, LV2_CORE__sampleRate);
    w->enumeration = lilv_new_uri(lw, LV2_CORE__enumeration);
    w->logarithmic = lilv_new_uri(lw, LV2_PORT_PROPS__logarithmic);
    w->unit = lilv_new_uri(lw, LV2_UNITS__unit);
    w->unitSymbol = lilv_new_uri(lw, LV2_UNITS__symbol);
    w->designation = lilv_new_uri(lw, LV2_CORE__designation);
    w->latency = lilv_new_uri(lw, LV2_CORE__latency);
    w->reportsLatency = lilv_new_uri(lw, LV2_CORE__reportsLatency);
    w->minimumSize = lilv_new_uri(lw, LV2_RESIZE_PORT__minimumSize);
    w->minorVersion = lilv_new_uri(lw, LV2_CORE__minorVersion);
    w->microVersion = lilv_new_uri(lw, LV2_CORE__microVersion);
    w->loadDefaultState = lilv_new_uri(lw, LV2_STATE__loadDefaultState);
    w->workerInterface = lilv_new_uri(lw, LV2_WORKER__interface);
    w->midiEvent = lilv_new_uri(lw, LV2_MIDI__MidiEvent);
    w->stateInterface = lilv_new_uri(lw, LV2_STATE__interface);
    gWorld = std::move(w);
    return *gWorld;
}

std::string asString(const LilvNode* n) { return n ? lilv_node_as_string(n) : ""; }

/// A unit's symbol: the units: URIs the LV2 units extension defines, else
/// the unit's own units:symbol.
std::string unitOf(World& w, const LilvPlugin* plugin, const LilvPort* port) {
    LilvNodes* units = lilv_port_get_value(plugin, port, w.unit);
    std::string out;
    if (units && lilv_nodes_size(units) > 0) {
        const LilvNode* u = lilv_nodes_get_first(units);
        static const std::pair<const char*, const char*> known[] = {
            {LV2_UNITS__db, "dB"},   {LV2_UNITS__hz, "Hz"},      {LV2_UNITS__khz, "kHz"},   {LV2_UNITS__mhz, "MHz"},
            {LV2_UNITS__ms, "ms"},   {LV2_UNITS__s, "s"},        {LV2_UNITS__min, "min"},   {LV2_UNITS__pc, "%"},
            {LV2_UNITS__bpm, "bpm"}, {LV2_UNITS__cent, "cents"}, {LV2_UNITS__semitone12TET, "semitones"},
            {LV2_UNITS__oct, "oct"}, {LV2_UNITS__degree, "deg"}, {LV2_UNITS__frame, "frames"},
            {LV2_UNITS__beat, "beats"}, {LV2_UNITS__bar, "bars"}, {LV2_UNITS__midiNote, "note"},
            {LV2_UNITS__m, "m"},     {LV2_UNITS__cm, "cm"},      {LV2_UNITS__mm, "mm"},     {LV2_UNITS__km, "km"},
            {LV2_UNITS__coef, ""},
        };
        if (lilv_node_is_uri(u))
            for (const auto& [uri, symbol] : known)
                if (std::strcmp(lilv_node_as_uri(u), uri) == 0) {
                    out = symbol;
                    lilv_nodes_free(units);
                    return out;
                }
        if (LilvNode* s = lilv_world_get(w.world, u, w.unitSymbol, nullptr)) {
            out = lilv_node_as_string(s);
            lilv_node_free(s);
        }
    }
    lilv_nodes_free(units);
    return printable(out, 16);
}

/// What a port is to the adapter.
enum class Kind : uint8_t { unused, audioIn, audioOut, controlIn, controlOut, cvIn, cvOut, atomIn, atomOut };

struct PortPlan {
    Kind kind = Kind::unused;
    uint32_t atomBytes = 0;  ///< atom ports: the buffer's size
};

struct Host;

/// One instance: the plugin's and everything it is connected to.
struct Lv2Instance {
    /// [control] The folder the state was last restored from (lv2RestoreState,
    /// carried by lv2CopyState): files the plugin refers to there are copied,
    /// not linked, when it saves. Empty when it has not been restored.
    std::string stateFolder;
    Host* host = nullptr;
    ResetState reset;
    LilvInstance* instance = nullptr;
    LV2_Handle handle = nullptr;
    const LV2_Descriptor* lv2 = nullptr;
    std::vector<float> controls;  ///< a value per port index; control ports point here
    std::unique_ptr<std::atomic<float>[]> outValues;
    /// The plugin's latency port (lv2:reportsLatency) after its last run, in
    /// frames; read by latency() on any thread.
    std::atomic<uint32_t> reportedLatency{0};
    std::vector<std::vector<float>> blocks;  ///< CV ports, and audio ports until process() connects the rack's
    struct AtomBuffer {
        uint32_t port = 0;
        bool input = true;
        std::vector<uint64_t> data;  ///< 8-byte aligned, as atoms need
    };
    std::vector<AtomBuffer> atoms;
    LV2_URID sequenceUrid = 0, chunkUrid = 0, midiUrid = 0;
    /// MIDI from sendMidi() (control thread) for the atom input at atoms[midiAtom]; null when none takes MIDI.
    std::unique_ptr<ByteRing> midi;
    size_t midiAtom = 0;
    const float* connectedIn[kMaxProcessorChannels] = {};
    float* connectedOut[kMaxProcessorChannels] = {};

    // Fixed blocks (Host::fixedBlocks): the plugin's audio ports stay on
    // runIn / runOut (N frames each); `played` is the last run's output, heard
    // over the next N frames; `fill` frames of the next run are in.
    uint32_t fixedFrames = 0;
    uint32_t fill = 0;
    std::vector<std::vector<float>> runIn, runOut, played;

    // Features of this instance.
    float optSampleRate = 0.0f;
    int32_t optMinBlock = 1, optMaxBlock = 0, optNominalBlock = 0;
    LV2_Options_Option options[5]{};
    LV2_Worker_Schedule schedule{};
    LV2_Log_Log log{};
    LV2_Feature optionsFeature{}, scheduleFeature{}, logFeature{};
    const LV2_Feature* features[10]{};

    // The worker (plugins with work:interface).
    const LV2_Worker_Interface* worker = nullptr;
    std::unique_ptr<ByteRing> requests, responses;
    std::vector<unsigned char> workBuffer;      ///< the worker thread's
    std::vector<unsigned char> responseBuffer;  ///< the audio thread's, allocated at create
    std::thread thread;
    sem_t wake{};
    bool semaphore = false;
    std::atomic<bool> stop{false};
    /// An in-place reset (sandbox child) holds the worker: work() must not
    /// run beside deactivate() / activate() (LV2's instantiation class).
    std::atomic<bool> holdWork{false}, working{false};
    std::atomic<uint64_t> droppedRequests{0};
    std::atomic<uint64_t> scheduled{0}, completed{0};  ///< worker requests queued / done
};

struct Host final : PluginHost {
    std::shared_ptr<World> worldKeep;  ///< the world `plugin` lives in
    const LilvPlugin* plugin = nullptr;
    std::string uri, name;
    Table table;
    std::vector<PortPlan> ports;
    std::vector<uint32_t> paramPorts;   ///< port index of each parameter
    /// Per parameter: the port values of an enumeration whose values are
    /// not 0, 1, 2...: the parameter is then the choice's number; else empty.
    std::vector<std::vector<float>> enumValues;
    std::vector<uint32_t> outputPorts;  ///< port index of each control output
    std::vector<Outputs::Port> outputs;
    std::vector<uint32_t> audioIn, audioOut;
    long latencyPort = -1;
    long midiPort = -1;  ///< the first atom input that supports midi:MidiEvent, or -1
    bool hasWorker = false;
    bool hasState = false;    ///< state:interface
    bool fixedBlocks = false;  ///< asks for buf-size:fixedBlockLength
    LilvState* defaultState = nullptr;  ///< the plugin's state:state, restored after activation

    ~Host() override {
        std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
        if (defaultState) lilv_state_free(defaultState);
        worldKeep.reset();  // the last module of a rescanned world frees it
    }
    const rackterm_processor_v2& descriptor() const noexcept override { return table.descriptor; }
    rackterm_instance* create(double sampleRateHz, uint32_t maxBlockFrames, std::string& error) override;
};

Lv2Instance* cast(rackterm_instance* i) { return reinterpret_cast<Lv2Instance*>(i); }

// ---- log:log: formatted into the fixed ring from any thread. ----

LV2_URID gLogError = 0, gLogWarning = 0, gLogNote = 0, gLogTrace = 0;
const bool gTrace = [] {
    const char* t = std::getenv("RACKTERM_LV2_TRACE");
    return t && std::string(t) == "1";
}();

int logVprintf(LV2_Log_Handle handle, LV2_URID type, const char* fmt, va_list args) {
    auto* self = static_cast<Lv2Instance*>(handle);
    if (type == gLogTrace && !gTrace) return 0;  // trace is for the plugin's developer: RACKTERM_LV2_TRACE=1
    const char* level = type == gLogError ? "error: " : type == gLogWarning ? "warning: " : type == gLogTrace ? "trace: " : "";
    char prefixed[512];
    std::snprintf(prefixed, sizeof prefixed, "%s%s", level, fmt);
    logLine(self->host->table.descriptor.id, prefixed, args);
    return 1;
}

int logPrintf(LV2_Log_Handle handle, LV2_URID type, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    const int r = logVprintf(handle, type, fmt, args);
    va_end(args);
    return r;
}

// ---- worker:schedule ----

LV2_Worker_Status respond(LV2_Worker_Respond_Handle handle, uint32_t size, const void* data) {
    auto* self = static_cast<Lv2Instance*>(handle);
    return self->responses->write(data, size) ? LV2_WORKER_SUCCESS : LV2_WORKER_ERR_NO_SPACE;
}

LV2_Worker_Status scheduleWork(LV2_Worker_Schedule_Handle handle, uint32_t size, const void* data) {
    auto* self = static_cast<Lv2Instance*>(handle);
    if (!self->worker) return LV2_WORKER_ERR_UNKNOWN;
    if (gSynchronousWork.load(std::memory_order_relaxed))  // offline: now, as a freewheeling host does
        return self->worker->work(self->handle, &respond, self, size, data);
    if (!self->requests->write(data, size)) {
        self->droppedRequests.fetch_add(1, std::memory_order_relaxed);
        return LV2_WORKER_ERR_NO_SPACE;
    }
    self->scheduled.fetch_add(1, std::memory_order_release);
    sem_post(&self->wake);  // a futex wake at most: no lock, does not block
    return LV2_WORKER_SUCCESS;
}

void workerLoop(Lv2Instance* self) {
    for (;;) {
        while (sem_wait(&self->wake) != 0) {
        }
        if (self->stop.load(std::memory_order_acquire)) return;
        uint32_t size = 0;
        while (self->requests->peek(&size)) {
            self->working.store(true);  // then look at the hold: with the reset's order, one of us sees the other
            if (self->holdWork.load()) {
                self->working.store(false);
                if (self->stop.load(std::memory_order_acquire)) return;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
            if (self->workBuffer.size() < size + 1u) self->workBuffer.resize(size + 1u);  // +1: never empty
            self->requests->read(self->workBuffer.data(), size);
            self->worker->work(self->handle, &respond, self, size, self->workBuffer.data());
            self->working.store(false);
            self->completed.fetch_add(1, std::memory_order_release);
        }
    }
}

/// [audio] Hand the worker's answers to the plugin, then end its run.
void deliverResponses(Lv2Instance* self) {
    if (!self->worker) return;
    const auto capacity = static_cast<uint32_t>(self->responseBuffer.size());
    uint32_t size = 0;
    while (self->responses->peek(&size)) {  // a response larger than the buffer is dropped
        if (self->responses->read(self->responseBuffer.data(), capacity) && self->worker->work_response)
            self->worker->work_response(self->handle, size, self->responseBuffer.data());
    }
    if (self->worker->end_run) self->worker->end_run(self->handle);
}

// ---- The descriptor's functions. ----

void prepareAtoms(Lv2Instance* self) {
    for (auto& a : self->atoms) {
        auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(a.data.data());
        if (a.input) {
            seq->atom.size = sizeof(LV2_Atom_Sequence_Body);
            seq->atom.type = self->sequenceUrid;
            seq->body.unit = 0;
            seq->body.pad = 0;
        } else {
            seq->atom.size = static_cast<uint32_t>(a.data.size() * sizeof(uint64_t) - sizeof(LV2_Atom));
            seq->atom.type = self->chunkUrid;
        }
    }
    if (!self->midi) return;
    // Queued MIDI messages, at frame 0 of this block, in the order sent.
    auto& a = self->atoms[self->midiAtom];
    auto* seq = reinterpret_cast<LV2_Atom_Sequence*>(a.data.data());
    const size_t capacity = a.data.size() * sizeof(uint64_t);
    uint8_t msg[8];
    uint32_t size = 0;
    while (self->midi->peek(&size)) {
        const size_t used = sizeof(LV2_Atom) + seq->atom.size;
        const size_t need = sizeof(LV2_Atom_Event) + ((size + 7u) & ~7u);
        if (size == 0 || size > sizeof msg) {  // not a MIDI message: dropped
            self->midi->read(msg, sizeof msg);
            continue;
        }
        if (used + need > capacity) break;  // the rest waits for the next block
        self->midi->read(msg, sizeof msg);
        auto* ev = reinterpret_cast<LV2_Atom_Event*>(reinterpret_cast<uint8_t*>(seq) + used);
        ev->time.frames = 0;
        ev->body.size = size;
        ev->body.type = self->midiUrid;
        std::memcpy(ev + 1, msg, size);
        seq->atom.size += static_cast<uint32_t>(need);
    }
}

/// [control, before the instance plays] Let the work a restore scheduled
/// finish (at most 2 s) and hand its answers to the plugin now, so that an
/// instance starts with its state in place (a sampler with its sample).
void settle(Lv2Instance* self) {
    if (!self->worker) return;
    for (int waited = 0; waited < 2000 && self->completed.load(std::memory_order_acquire) <
                                              self->scheduled.load(std::memory_order_acquire);
         ++waited)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    deliverResponses(self);
}

void destroyInstance(rackterm_instance* instance) {
    Lv2Instance* self = cast(instance);
    if (!self) return;
    if (self->thread.joinable()) {
        self->stop.store(true, std::memory_order_release);
        sem_post(&self->wake);
        self->thread.join();
    }
    if (self->semaphore) sem_destroy(&self->wake);
    if (self->instance) {
        lilv_instance_deactivate(self->instance);
        lilv_instance_free(self->instance);
    }
    delete self;
}

void resetInstance(rackterm_instance* instance) {
    // LV2 has no reset but deactivate then activate, which may allocate: not
    // on the audio thread. The instance goes silent (the rack plays the node
    // dry) until the control thread replaces it; in a sandbox child, at once.
    Lv2Instance* self = cast(instance);
    if (gResetInPlace.load(std::memory_order_relaxed)) {
        // The child's own process: waiting here (for a work() in progress,
        // at most 200 ms) makes only this node late, which the host covers.
        self->holdWork.store(true);
        for (int waited = 0; waited < 200 && self->working.load(); ++waited)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (self->working.load()) {  // a long work(): no reset this time (the guard mutes the block)
            self->holdWork.store(false);
            return;
        }
        lilv_instance_deactivate(self->instance);
        lilv_instance_activate(self->instance);
        self->holdWork.store(false);
        self->fill = 0;  // a fixed-block plugin starts a new run, with nothing to play yet
        for (auto& b : self->played) std::fill(b.begin(), b.end(), 0.0f);
        return;
    }
    self->reset.fault.store(true, std::memory_order_release);
    self->reset.restart.store(true, std::memory_order_release);
}

void applyValues(rackterm_instance* instance, const float* values, size_t len) {
    Lv2Instance* self = cast(instance);
    const Host& h = *self->host;
    const size_t n = std::min(len, h.paramPorts.size());
    for (size_t i = 0; i < n; ++i) {
        const rackterm_param_info& p = h.table.params[i];
        const float v = std::isfinite(values[i]) ? std::clamp(values[i], p.min, p.max) : p.default_value;
        const std::vector<float>& e = h.enumValues[i];
        self->controls[h.paramPorts[i]] = e.empty() ? v : e[std::min(static_cast<size_t>(std::lround(v)), e.size() - 1)];
    }
}

void copyControlOutputs(Lv2Instance* self) {
    const Host& h = *self->host;
    for (size_t i = 0; i < h.outputPorts.size(); ++i)
        self->outValues[i].store(self->controls[h.outputPorts[i]], std::memory_order_relaxed);
    if (h.latencyPort >= 0)
        self->reportedLatency.store(latencyOf(self->controls[static_cast<size_t>(h.latencyPort)]),
                                    std::memory_order_relaxed);
}

/// [audio] A fixed-block plugin: gather `frames` into the current run, play
/// the previous run's output, and run the plugin each time N frames are in.
void processFixed(Lv2Instance* self, const float* const* inputs, float* const* outputs, uint32_t frames) {
    const Host& h = *self->host;
    const uint32_t n = self->fixedFrames;
    uint32_t done = 0;
    while (done < frames) {
        const uint32_t take = std::min(frames - done, n - self->fill);
        for (size_t c = 0; c < h.audioIn.size(); ++c)
            std::memcpy(self->runIn[c].data() + self->fill, inputs[c] + done, take * sizeof(float));
        for (size_t c = 0; c < h.audioOut.size(); ++c)
            std::memcpy(outputs[c] + done, self->played[c].data() + self->fill, take * sizeof(float));
        self->fill += take;
        done += take;
        if (self->fill == n) {
            prepareAtoms(self);
            lilv_instance_run(self->instance, n);
            deliverResponses(self);
            for (size_t c = 0; c < h.audioOut.size(); ++c) {  // heard next; the plugin writes the other buffer
                self->played[c].swap(self->runOut[c]);
                lilv_instance_connect_port(self->instance, h.audioOut[c], self->runOut[c].data());
            }
            self->fill = 0;
            copyControlOutputs(self);
        }
    }
}

void processBlock(rackterm_instance* instance, const float* const* inputs, float* const* outputs, uint32_t frames) {
    Lv2Instance* self = cast(instance);
    const Host& h = *self->host;
    if (self->reset.fault.load(std::memory_order_relaxed)) {  // reset after NaN/Inf: silent until replaced
        for (size_t c = 0; c < h.audioOut.size(); ++c) std::memset(outputs[c], 0, frames * sizeof(float));
        return;
    }
    if (self->fixedFrames) {
        processFixed(self, inputs, outputs, frames);
        return;
    }
    for (size_t c = 0; c < h.audioIn.size(); ++c)
        if (self->connectedIn[c] != inputs[c]) {
            self->connectedIn[c] = inputs[c];
            lilv_instance_connect_port(self->instance, h.audioIn[c], const_cast<float*>(inputs[c]));
        }
    for (size_t c = 0; c < h.audioOut.size(); ++c)
        if (self->connectedOut[c] != outputs[c]) {
            self->connectedOut[c] = outputs[c];
            lilv_instance_connect_port(self->instance, h.audioOut[c], outputs[c]);
        }
    prepareAtoms(self);
    lilv_instance_run(self->instance, frames);
    deliverResponses(self);
    copyControlOutputs(self);
}

uint32_t latency(rackterm_instance* instance) {
    Lv2Instance* self = cast(instance);
    const Host& h = *self->host;
    const uint32_t frames = self->fixedFrames;  // a fixed-block plugin is heard one run later
    if (h.latencyPort < 0) return frames;
    return frames + self->reportedLatency.load(std::memory_order_relaxed);
}

/// lilv_state_restore's port values: set the control port named `symbol`.
void setPortValue(const char* symbol, void* user, const void* value, uint32_t size, uint32_t type) {
    auto* self = static_cast<Lv2Instance*>(user);
    if (size != sizeof(float) || type != mapUri(nullptr, LV2_ATOM__Float)) return;
    World& w = *self->host->worldKeep;
    LilvNode* sym = lilv_new_string(w.world, symbol);
    const LilvPort* port = lilv_plugin_get_port_by_symbol(self->host->plugin, sym);
    lilv_node_free(sym);
    if (!port) return;
    const uint32_t index = lilv_port_get_index(self->host->plugin, port);
    if (index < self->controls.size()) std::memcpy(&self->controls[index], value, sizeof(float));
}

rackterm_instance* Host::create(double sampleRateHz, uint32_t maxBlockFrames, std::string& error) {
    if (maxBlockFrames == 0) {
        error = "a block of 0 frames";
        return nullptr;
    }
    auto self = std::make_unique<Lv2Instance>();
    self->host = this;
    self->sequenceUrid = mapUri(nullptr, LV2_ATOM__Sequence);
    self->chunkUrid = mapUri(nullptr, LV2_ATOM__Chunk);
    self->midiUrid = mapUri(nullptr, LV2_MIDI__MidiEvent);
    // options:options
    self->optSampleRate = static_cast<float>(sampleRateHz);
    self->optMaxBlock = static_cast<int32_t>(maxBlockFrames);
    self->optNominalBlock = static_cast<int32_t>(maxBlockFrames);
    if (fixedBlocks) self->optMinBlock = static_cast<int32_t>(maxBlockFrames);  // every run is N frames
    const LV2_URID floatType = mapUri(nullptr, LV2_ATOM__Float), intType = mapUri(nullptr, LV2_ATOM__Int);
    self->options[0] = {LV2_OPTIONS_INSTANCE, 0, mapUri(nullptr, LV2_PARAMETERS__sampleRate), sizeof(float), floatType,
                        &self->optSampleRate};
    self->options[1] = {LV2_OPTIONS_INSTANCE, 0, mapUri(nullptr, LV2_BUF_SIZE__minBlockLength), sizeof(int32_t),
                        intType, &self->optMinBlock};
    self->options[2] = {LV2_OPTIONS_INSTANCE, 0, mapUri(nullptr, LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t),
                        intType, &self->optMaxBlock};
    self->options[3] = {LV2_OPTIONS_INSTANCE, 0, mapUri(nullptr, LV2_BUF_SIZE__nominalBlockLength), sizeof(int32_t),
                        intType, &self->optNominalBlock};
    self->options[4] = {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr};
    self->optionsFeature = {LV2_OPTIONS__options, self->options};
    self->schedule = {self.get(), &scheduleWork};
    self->scheduleFeature = {LV2_WORKER__schedule, &self->schedule};
    self->log = {self.get(), &logPrintf, &logVprintf};
    self->logFeature = {LV2_LOG__log, &self->log};
    const LV2_Feature* list[] = {&gMapFeature,   &gUnmapFeature,          &self->optionsFeature,
                                 &gBoundedFeature, &self->scheduleFeature, &gLoadDefaultFeature,
                                 &self->logFeature, fixedBlocks ? &gFixedFeature : nullptr, nullptr};
    std::copy(std::begin(list), std::end(list), self->features);
    if (hasWorker) {
        self->requests = std::make_unique<ByteRing>(1u << 16);
        self->responses = std::make_unique<ByteRing>(1u << 16);
        self->responseBuffer.assign(1u << 16, 0);
        if (sem_init(&self->wake, 0, 0) != 0) {
            error = "cannot make the worker's semaphore";
            return nullptr;
        }
        self->semaphore = true;
    }
    std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
    self->instance = lilv_plugin_instantiate(plugin, sampleRateHz, self->features);
    if (!self->instance) {
        error = "the plugin's instantiate() returned NULL (its log may say why)";
        destroyInstance(reinterpret_cast<rackterm_instance*>(self.release()));
        return nullptr;
    }
    self->handle = lilv_instance_get_handle(self->instance);
    if (fixedBlocks) self->fixedFrames = maxBlockFrames;
    self->lv2 = lilv_instance_get_descriptor(self->instance);
    if (hasWorker) {
        self->worker = static_cast<const LV2_Worker_Interface*>(
            lilv_instance_get_extension_data(self->instance, LV2_WORKER__interface));
        if (self->worker && !self->worker->work) self->worker = nullptr;
    }
    // Connect every port before activation.
    self->controls.assign(ports.size(), 0.0f);
    self->outValues = std::make_unique<std::atomic<float>[]>(std::max<size_t>(outputPorts.size(), 1));
    for (size_t i = 0; i < paramPorts.size(); ++i) {
        const float def = table.params[i].default_value;
        self->controls[paramPorts[i]] = enumValues[i].empty() ? def : enumValues[i][static_cast<size_t>(def)];
    }
    for (uint32_t p = 0; p < ports.size(); ++p) {
        switch (ports[p].kind) {
        case Kind::controlIn:
        case Kind::controlOut: lilv_instance_connect_port(self->instance, p, &self->controls[p]); break;
        case Kind::audioIn:
        case Kind::audioOut:
            if (fixedBlocks) {  // for good: the plugin reads and writes the adapter's run buffers
                auto& run = ports[p].kind == Kind::audioIn ? self->runIn : self->runOut;
                run.emplace_back(maxBlockFrames, 0.0f);
                lilv_instance_connect_port(self->instance, p, run.back().data());
                if (ports[p].kind == Kind::audioOut) self->played.emplace_back(maxBlockFrames, 0.0f);
                break;
            }
            [[fallthrough]];
        case Kind::cvIn:
        case Kind::cvOut:
            self->blocks.emplace_back(maxBlockFrames, 0.0f);
            lilv_instance_connect_port(self->instance, p, self->blocks.back().data());
            break;
        case Kind::atomIn:
        case Kind::atomOut: {
            Lv2Instance::AtomBuffer a;
            a.port = p;
            a.input = ports[p].kind == Kind::atomIn;
            a.data.assign((ports[p].atomBytes + 7) / 8, 0);
            self->atoms.push_back(std::move(a));
            break;
        }
        case Kind::unused: lilv_instance_connect_port(self->instance, p, nullptr); break;
        }
    }
    for (size_t i = 0; i < self->atoms.size(); ++i) {
        lilv_instance_connect_port(self->instance, self->atoms[i].port, self->atoms[i].data.data());
        if (static_cast<long>(self->atoms[i].port) == midiPort) {
            self->midi = std::make_unique<ByteRing>(64 * 8);
            self->midiAtom = i;
        }
    }
    prepareAtoms(self.get());
    if (self->worker) self->thread = std::thread(&workerLoop, self.get());
    lilv_instance_activate(self->instance);
    if (latencyPort >= 0) {
        // A plugin reports its latency from run(): one block of silence at
        // the default values tells it before the node is placed in the graph
        // (as Ardour does), then deactivate + activate start it afresh.
        lilv_instance_run(self->instance, maxBlockFrames);
        copyControlOutputs(self.get());  // the latency among them
        settle(self.get());  // work it scheduled is done and answered before deactivate()
        prepareAtoms(self.get());
        lilv_instance_deactivate(self->instance);
        lilv_instance_activate(self->instance);
    }
    // state:loadDefaultState: the plugin's own state:state, after activation
    // (a plugin may hand the loading to its worker then).
    if (defaultState) {
        lilv_state_restore(defaultState, self->instance, &setPortValue, self.get(), 0, self->features);
        settle(self.get());
    }
    return reinterpret_cast<rackterm_instance*>(self.release());
}

/// The last path segment of `uri` made an id: ".../mda/Delay" -> "delay".
std::string idFromUri(const std::string& uri) {
    std::string u = uri;
    while (!u.empty() && (u.back() == '/' || u.back() == '#')) u.pop_back();
    const size_t cut = u.find_last_of("/#:");
    return portId(cut == std::string::npos ? u : u.substr(cut + 1));
}

std::vector<std::string> allUris() {
    std::vector<std::string> out;
    const LilvPlugins* all = lilv_world_get_all_plugins(world().world);
    LILV_FOREACH (plugins, it, all)
        out.push_back(lilv_node_as_uri(lilv_plugin_get_uri(lilv_plugins_get(all, it))));
    return out;
}

}  // namespace

std::vector<PluginInfo> lv2Plugins() {
    std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
    World& w = world();
    std::vector<PluginInfo> out;
    const LilvPlugins* all = lilv_world_get_all_plugins(w.world);
    LILV_FOREACH (plugins, it, all) {
        const LilvPlugin* p = lilv_plugins_get(all, it);
        PluginInfo info;
        info.reference = std::string("lv2:") + lilv_node_as_uri(lilv_plugin_get_uri(p));
        LilvNode* name = lilv_plugin_get_name(p);
        info.name = asString(name);
        lilv_node_free(name);
        if (const LilvNode* bundle = lilv_plugin_get_bundle_uri(p)) {
            char* path = lilv_file_uri_parse(lilv_node_as_uri(bundle), nullptr);
            info.file = path ? path : lilv_node_as_uri(bundle);
            lilv_free(path);
        }
        info.audioInputs = lilv_plugin_get_num_ports_of_class(p, w.audio, w.input, nullptr);
        info.audioOutputs = lilv_plugin_get_num_ports_of_class(p, w.audio, w.output, nullptr);
        info.controlInputs = lilv_plugin_get_num_ports_of_class(p, w.control, w.input, nullptr);
        info.controlOutputs = lilv_plugin_get_num_ports_of_class(p, w.control, w.output, nullptr);
        out.push_back(std::move(info));
    }
    std::sort(out.begin(), out.end(), [](const PluginInfo& a, const PluginInfo& b) { return a.reference < b.reference; });
    return out;
}

void forgetLv2() {
    // Loaded modules keep their world; the next lookup makes a fresh one.
    std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
    gWorld.reset();
}

Result<std::shared_ptr<Module>> loadLv2(const std::string& uri, double sampleRateHz) {
    const std::string reference = "lv2:" + uri;
    auto fail = [&](const std::string& what) { return Error{printable(reference, kPathChars) + ": " + what}; };
    if (uri.empty()) return fail("no URI; write lv2:URI (`rackterm processors lv2` lists them)");
    std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
    World& w = world();
    if (!gLogError) {
        gLogError = mapUri(nullptr, LV2_LOG__Error);
        gLogWarning = mapUri(nullptr, LV2_LOG__Warning);
        gLogNote = mapUri(nullptr, LV2_LOG__Note);
        gLogTrace = mapUri(nullptr, LV2_LOG__Trace);
    }
    LilvNode* uriNode = lilv_new_uri(w.world, uri.c_str());
    const LilvPlugin* plugin = uriNode ? lilv_plugins_get_by_uri(lilv_world_get_all_plugins(w.world), uriNode) : nullptr;
    if (!plugin) {
        lilv_node_free(uriNode);
        std::vector<std::string> uris = allUris();
        std::string near = nearest(uri, uris);
        if (near.empty()) {  // a URI whose last segment is close: ".../mda/Dely" -> ".../mda/Delay"
            const std::string tail = idFromUri(uri);
            for (const std::string& u : uris)
                if (editDistance(tail, idFromUri(u)) <= 1 && (near.empty() || u.size() < near.size())) near = u;
        }
        std::string path;
        for (const auto& d : lv2Path()) path += (path.empty() ? "" : ":") + d;
        return fail("no such LV2 plugin in " + path + (near.empty() ? "" : " (did you mean 'lv2:" + near + "'?)") +
                    "; `rackterm processors` lists the installed ones");
    }
    // Features: refuse a plugin that needs one rackterm does not offer.
    if (LilvNodes* required = lilv_plugin_get_required_features(plugin)) {
        std::string missing;
        LILV_FOREACH (nodes, it, required) {
            const std::string f = lilv_node_as_uri(lilv_nodes_get(required, it));
            const auto& offered = offeredLv2Features();
            if (std::find(offered.begin(), offered.end(), f) == offered.end() && missing.empty()) missing = f;
        }
        lilv_nodes_free(required);
        if (!missing.empty()) {
            lilv_node_free(uriNode);
            return fail("requires the LV2 feature <" + missing + ">, which rackterm does not offer; it cannot be hosted");
        }
    }
    auto host = std::make_unique<Host>();
    host->worldKeep = gWorld;
    host->plugin = plugin;
    host->uri = uri;
    LilvNode* name = lilv_plugin_get_name(plugin);
    host->name = name ? lilv_node_as_string(name) : uri;
    lilv_node_free(name);
    const uint32_t count = lilv_plugin_get_num_ports(plugin);
    host->ports.resize(count);
    std::vector<float> mins(count), maxs(count), defs(count);
    lilv_plugin_get_port_ranges_float(plugin, mins.data(), maxs.data(), defs.data());
    std::vector<Param> params;
    for (uint32_t i = 0; i < count; ++i) {
        const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
        const bool in = lilv_port_is_a(plugin, port, w.input), out = lilv_port_is_a(plugin, port, w.output);
        const std::string symbol = asString(lilv_port_get_symbol(plugin, port));
        LilvNode* pname = lilv_port_get_name(plugin, port);
        const std::string portName = pname ? lilv_node_as_string(pname) : symbol;
        lilv_node_free(pname);
        PortPlan& plan = host->ports[i];
        if (lilv_port_is_a(plugin, port, w.audio) && (in || out)) {
            plan.kind = in ? Kind::audioIn : Kind::audioOut;
            (in ? host->audioIn : host->audioOut).push_back(i);
        } else if (lilv_port_is_a(plugin, port, w.control) && (in || out)) {
            if (out) {
                plan.kind = Kind::controlOut;
                host->outputPorts.push_back(i);
                host->outputs.push_back({portId(symbol), portName, unitOf(w, plugin, port)});
                LilvNode* des = lilv_port_get(plugin, port, w.designation);
                const bool isLatency = (des && lilv_node_equals(des, w.latency)) ||
                                       lilv_port_has_property(plugin, port, w.reportsLatency);
                lilv_node_free(des);
                if (isLatency && host->latencyPort < 0) host->latencyPort = i;
                continue;
            }
            plan.kind = Kind::controlIn;
            host->paramPorts.push_back(i);
            Param p;
            p.id = portId(symbol);
            p.name = portName;
            p.unit = unitOf(w, plugin, port);
            const bool byRate = lilv_port_has_property(plugin, port, w.sampleRate);
            const float scale = byRate ? static_cast<float>(sampleRateHz) : 1.0f;
            const bool hasMin = !std::isnan(mins[i]), hasMax = !std::isnan(maxs[i]);
            p.min = hasMin ? mins[i] * scale : 0.0f;
            p.max = hasMax ? maxs[i] * scale : std::max(p.min + 1.0f, 1.0f);
            p.def = !std::isnan(defs[i]) ? defs[i] * scale : p.min;
            const bool enumeration = lilv_port_has_property(plugin, port, w.enumeration);
            if (lilv_port_has_property(plugin, port, w.toggled)) {
                p.flags |= RACKTERM_PARAM_TOGGLE;
                p.min = 0.0f;
                p.max = 1.0f;
            } else if (lilv_port_has_property(plugin, port, w.integer)) {
                p.flags |= RACKTERM_PARAM_INTEGER;
            }
            if (lilv_port_has_property(plugin, port, w.logarithmic)) p.flags |= RACKTERM_PARAM_LOG;
            std::vector<std::pair<float, std::string>> sp;
            if (LilvScalePoints* points = lilv_port_get_scale_points(plugin, port)) {
                LILV_FOREACH (scale_points, it, points) {
                    const LilvScalePoint* s = lilv_scale_points_get(points, it);
                    sp.emplace_back(lilv_node_as_float(lilv_scale_point_get_value(s)),
                                    choiceName(asString(lilv_scale_point_get_label(s))));
                }
                lilv_scale_points_free(points);
                std::sort(sp.begin(), sp.end());
            }
            std::vector<float> enumValues;
            if (!(p.flags & RACKTERM_PARAM_TOGGLE) && !sp.empty()) {
                std::vector<std::string> names;
                for (const auto& [v, n] : sp) names.push_back(n.empty() ? "choice" : n);
                makeUnique(names);
                bool numbered = true;  // values 0, 1, 2...: the choice's number is the port's value
                for (size_t k = 0; k < sp.size(); ++k) numbered = numbered && sp[k].first == static_cast<float>(k);
                // An integer port labelled at every value of its range is a choice too; one labelled
                // only at some values (0 = off of 0..10) keeps its range.
                const bool everyValue = p.min == 0.0f && p.max == static_cast<float>(sp.size() - 1);
                if (enumeration || (numbered && everyValue && (p.flags & RACKTERM_PARAM_INTEGER))) {
                    for (const auto& n : names) p.choices += (p.choices.empty() ? "" : "|") + n;
                    if (!numbered) {
                        // An enumeration of other values (0, 1/6, 2/6...): the
                        // parameter is the choice's number, the port gets its value.
                        size_t nearestIndex = 0;
                        for (size_t k = 0; k < sp.size(); ++k) {
                            enumValues.push_back(sp[k].first);
                            if (std::fabs(sp[k].first - p.def) < std::fabs(sp[nearestIndex].first - p.def)) nearestIndex = k;
                        }
                        p.def = static_cast<float>(nearestIndex);
                    }
                    p.min = 0.0f;
                    p.max = static_cast<float>(sp.size() - 1);
                    p.flags = RACKTERM_PARAM_INTEGER;
                }
            }
            host->enumValues.push_back(std::move(enumValues));
            params.push_back(std::move(p));
        } else if (lilv_port_is_a(plugin, port, w.cv) && (in || out)) {
            plan.kind = in ? Kind::cvIn : Kind::cvOut;
        } else if (lilv_port_is_a(plugin, port, w.atomPort) && (in || out)) {
            plan.kind = in ? Kind::atomIn : Kind::atomOut;
            plan.atomBytes = 8192;
            if (in && host->midiPort < 0 && lilv_port_supports_event(plugin, port, w.midiEvent)) host->midiPort = i;
            if (LilvNode* min = lilv_port_get(plugin, port, w.minimumSize)) {
                if (lilv_node_is_int(min) && lilv_node_as_int(min) > 0)
                    plan.atomBytes = std::max<uint32_t>(plan.atomBytes, static_cast<uint32_t>(lilv_node_as_int(min)));
                lilv_node_free(min);
            }
        } else if (lilv_port_has_property(plugin, port, w.connectionOptional)) {
            plan.kind = Kind::unused;
        } else {
            lilv_node_free(uriNode);
            return fail("port " + std::to_string(i) + " (" + printable(symbol, 64) +
                        ") is of a type rackterm cannot connect (not audio, control, CV or atom)");
        }
    }
    host->hasWorker = lilv_plugin_has_extension_data(plugin, w.workerInterface);
    host->hasState = lilv_plugin_has_extension_data(plugin, w.stateInterface);
    {
        LilvNode* fixed = lilv_new_uri(w.world, LV2_BUF_SIZE__fixedBlockLength);
        host->fixedBlocks = lilv_plugin_has_feature(plugin, fixed);
        lilv_node_free(fixed);
    }
    if (lilv_plugin_has_feature(plugin, w.loadDefaultState))
        host->defaultState = lilv_state_new_from_world(w.world, &gMap, uriNode);
    std::string version = "lv2";
    {
        LilvNode* minor = lilv_world_get(w.world, uriNode, w.minorVersion, nullptr);
        LilvNode* micro = lilv_world_get(w.world, uriNode, w.microVersion, nullptr);
        if (minor && lilv_node_is_int(minor))
            version = std::to_string(lilv_node_as_int(minor)) + "." +
                      std::to_string(micro && lilv_node_is_int(micro) ? lilv_node_as_int(micro) : 0);
        lilv_node_free(minor);
        lilv_node_free(micro);
    }
    lilv_node_free(uriNode);
    const std::string why = adaptPlugin(host->table, host->outputs, host->audioIn.size(), host->audioOut.size(),
                                        idFromUri(uri), host->name, version, std::move(params),
                                        {&destroyInstance, &resetInstance, &applyValues, &processBlock, &latency});
    if (!why.empty()) return fail(why);
    return Module::fromPlugin(std::move(host), reference, sampleRateHz);
}

bool isLv2Instance(const rackterm_processor_v2& d) noexcept { return d.process == &processBlock; }

ResetState* lv2ResetState(const rackterm_processor_v2& d, rackterm_instance* instance) {
    return d.process == &processBlock && instance ? &cast(instance)->reset : nullptr;
}

bool lv2HasState(rackterm_instance* instance) { return instance && cast(instance)->host->hasState; }

Result<void> lv2SaveState(rackterm_instance* instance, const std::string& dir) {
    Lv2Instance* self = cast(instance);
    // Written into a new folder beside `dir`, which then takes its place:
    // files the plugin keeps in the old folder (a sample restored from it)
    // are copied over before the old folder goes, and a failed save leaves
    // the last good state. Files it refers to elsewhere are linked (relative
    // links, right from either folder: they are siblings).
    const std::filesystem::path target(dir);
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    std::string fresh = dir + ".saving-XXXXXX";
    if (ec || !::mkdtemp(fresh.data()))
        return Error{"cannot make a folder beside " + printable(dir, kPathChars) + ": " +
                     (ec ? ec.message() : std::string(std::strerror(errno)))};
    auto discard = [&fresh] {
        std::error_code ignored;
        std::filesystem::remove_all(fresh, ignored);
    };
    const bool hadOld = std::filesystem::is_directory(target, ec);
    // The files to copy are those in the folder the state came from (this
    // one, or another session's after a save-as or a carried state).
    std::string scratch = hadOld ? dir : std::string();
    if (!self->stateFolder.empty() && std::filesystem::is_directory(self->stateFolder, ec)) scratch = self->stateFolder;
    {
        std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
        World& w = *self->host->worldKeep;
        LilvState* state = lilv_state_new_from_instance(
            self->host->plugin, self->instance, &gMap, scratch.empty() ? nullptr : scratch.c_str(), fresh.c_str(),
            fresh.c_str(), fresh.c_str(), nullptr, nullptr, LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, self->features);
        if (!state) {
            discard();
            return Error{"the plugin did not save its state"};
        }
        // lilv keeps going when the plugin's save() fails, with no properties:
        // that must not replace a state that has some.
        if (lilv_state_get_num_properties(state) == 0 && std::filesystem::exists(dir + "/state.ttl", ec)) {
            lilv_state_free(state);
            discard();
            return Error{"the plugin saved an empty state (its save failed?); the previous state in " +
                         printable(dir, kPathChars) + " is kept"};
        }
        const int r = lilv_state_save(w.world, &gMap, &gUnmap, state, nullptr, fresh.c_str(), "state.ttl");
        lilv_state_free(state);
        if (r != 0) {
            discard();
            return Error{"cannot write its state to " + printable(fresh, kPathChars)};
        }
    }
    if (hadOld) {  // one atomic exchange: `dir` is the old state or the new one, never neither
        const auto exchanged = files::exchangePaths(fresh, dir);
        if (exchanged && exchanged.value()) {
            discard();  // the old state, now at the new folder's name
            return {};
        }
        if (!exchanged) {
            discard();
            return Error{"cannot put the new state in place of " + printable(dir, kPathChars) + ": " + exchanged.error()};
        }
        // A filesystem without the exchange (some network and FUSE ones): the
        // old folder aside, the new one in, the old one removed.
        const std::string aside = fresh + ".old";
        if (::rename(dir.c_str(), aside.c_str()) != 0 || ::rename(fresh.c_str(), dir.c_str()) != 0) {
            const std::string why = std::strerror(errno);
            if (!std::filesystem::exists(dir, ec)) ::rename(aside.c_str(), dir.c_str());  // put the old one back
            discard();
            return Error{"cannot put the new state in place of " + printable(dir, kPathChars) + ": " + why};
        }
        std::filesystem::remove_all(aside, ec);
    } else if (::rename(fresh.c_str(), dir.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        discard();
        return Error{"cannot put the state in " + printable(dir, kPathChars) + ": " + why};
    }
    return {};
}

Result<void> lv2RestoreState(rackterm_instance* instance, const std::string& dir) {
    Lv2Instance* self = cast(instance);
    const std::string file = dir + "/state.ttl";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return Error{printable(file, kPathChars) + " does not exist"};
    std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
    World& w = *self->host->worldKeep;
    LilvState* state = lilv_state_new_from_file(w.world, &gMap, nullptr, file.c_str());
    if (!state) return Error{printable(file, kPathChars) + " is not a plugin state lilv can read"};
    const LilvNode* of = lilv_state_get_plugin_uri(state);
    if (!of || self->host->uri != lilv_node_as_uri(of)) {
        const std::string other = of ? lilv_node_as_uri(of) : "no plugin";
        lilv_state_free(state);
        return Error{printable(file, kPathChars) + " is the state of " + printable(other, 200) + ", not of " +
                     printable(self->host->uri, 200)};
    }
    lilv_state_restore(state, self->instance, &setPortValue, self, 0, self->features);
    lilv_state_free(state);
    settle(self);
    self->stateFolder = std::filesystem::weakly_canonical(dir, ec).string();
    if (ec) self->stateFolder = dir;
    return {};
}

Result<void> lv2CopyState(rackterm_instance* from, rackterm_instance* to) {
    Lv2Instance* a = cast(from);
    Lv2Instance* b = cast(to);
    if (a->host->uri != b->host->uri) return Error{"state is carried only between instances of the same plugin"};
    {
        // In memory: no folder, so the paths of files the plugin refers to
        // stay as they are (absolute) and the new instance uses the same files.
        std::lock_guard<std::recursive_mutex> lock(gWorldMutex);
        LilvState* state = lilv_state_new_from_instance(a->host->plugin, a->instance, &gMap, nullptr, nullptr, nullptr,
                                                        nullptr, nullptr, nullptr, LV2_STATE_IS_POD, a->features);
        if (!state) return Error{"the plugin did not save its state"};
        lilv_state_restore(state, b->instance, &setPortValue, b, 0, b->features);
        lilv_state_free(state);
    }
    settle(b);
    b->stateFolder = a->stateFolder;  // b refers to the same files
    return {};
}

bool lv2SendMidi(const rackterm_processor_v2& d, rackterm_instance* instance, const uint8_t* bytes, uint32_t size) {
    if (d.process != &processBlock || !instance) return false;
    Lv2Instance* self = cast(instance);
    return self->midi && self->midi->write(bytes, size);
}

bool lv2ControlOutputs(const rackterm_processor_v2& d, rackterm_instance* instance, std::vector<ControlOutput>& out) {
    if (d.process != &processBlock || !instance) return false;
    const Lv2Instance* self = cast(instance);
    listControlOutputs(self->host->outputs, self->outValues.get(), out);
    return true;
}

}  // namespace plugins

}  // namespace rackterm::loader
