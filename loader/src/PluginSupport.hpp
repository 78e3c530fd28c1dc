// What the LV2 and LADSPA adapters share: parameter ids made from port
// names, the descriptor's strings, a single-producer byte ring for the LV2
// worker, and the plugin log ring. Internal to the loader.
#pragma once

#include <rackterm/loader/Loader.hpp>
#include <rackterm/loader/Plugins.hpp>
#include <rackterm/processor.h>

#include <atomic>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::loader::plugins {

/// `name` made a parameter id: lower case, every run of other characters
/// than [a-z0-9] one '_', no '_' at either end ("Cutoff Frequency (Hz)" ->
/// "cutoff_frequency_hz"); "param" when nothing is left.
std::string portId(std::string_view name);

/// Make `ids` unique in place: the second "gain" becomes "gain_2", and so on.
void makeUnique(std::vector<std::string>& ids);

/// A choice name for an enumeration label: as portId, but "" stays "".
std::string choiceName(std::string_view label);

/// The unit in a LADSPA port name's last parentheses when it is one the
/// console knows ("Delay (ms)" -> "ms", "(Hz)" -> "Hz", "(dB)" -> "dB",
/// "(Seconds)" / "(s)" -> "s", "(%)" -> "%"), else "".
std::string unitFromName(std::string_view name);

/// The strings and the parameter table a plugin's descriptor points into;
/// they live as long as the plugin's module.
struct Table {
    std::deque<std::string> strings;
    std::vector<rackterm_param_info> params;
    rackterm_processor_v2 descriptor{};
    const char* keep(std::string s) {
        strings.push_back(std::move(s));
        return strings.back().c_str();
    }
};

/// A plugin's parameter before it goes into the table.
struct Param {
    std::string id, name, unit, choices;
    float min = 0.0f, max = 1.0f, def = 0.0f;
    uint32_t flags = 0;
};

/// Fill `table` (ids made unique, defaults clamped into the range, LOG
/// dropped where min <= 0) and set the descriptor's identity and channel
/// counts; the caller sets the function pointers. `id` is made [a-z0-9_].
void buildTable(Table& table, std::string_view id, const std::string& name, const std::string& version,
                uint32_t inputs, uint32_t outputs, std::vector<Param> params);

/// A plugin's control output ports, for controlOutputs(): filled by the
/// adapter after every run (relaxed atomic stores on the audio thread).
struct Outputs {
    struct Port {
        std::string id, name, unit;
    };
    std::vector<Port> ports;
};

/// One adapter's functions for the descriptor (its create entry is never
/// called: PluginHost::create makes the instances).
struct AdapterEntries {
    void (*destroy)(rackterm_instance*);
    void (*reset)(rackterm_instance*);
    void (*applyPlainValues)(rackterm_instance*, const float*, size_t);
    void (*process)(rackterm_instance*, const float* const*, float* const*, uint32_t);
    uint32_t (*latencyFrames)(rackterm_instance*);
};

/// What both adapters do once a plugin's ports are read: refuse a plugin
/// with no audio output or more than kMaxProcessorChannels a side, make the
/// control outputs' ids unique, build the table (buildTable; a plugin
/// without audio inputs still gets one input channel, which it does not
/// read) and set the descriptor's functions to `entries`. "" when the
/// descriptor is valid, else why not (one line, without the plugin's name).
std::string adaptPlugin(Table& table, std::vector<Outputs::Port>& outputs, size_t audioIn, size_t audioOut,
                        std::string_view id, const std::string& name, const std::string& version,
                        std::vector<Param> params, const AdapterEntries& entries);

/// A latency port's value as frames (both adapters' plugins report it on a
/// control output): 0 when it is not finite, not positive, or 1e7 or more.
inline uint32_t latencyOf(float v) {
    return std::isfinite(v) && v > 0.0f && v < 1.0e7f ? static_cast<uint32_t>(std::lround(v)) : 0;
}

/// [control] Append each of `ports` with its value now (`values[i]`,
/// relaxed atomic loads; the audio thread stores them after each run).
void listControlOutputs(const std::vector<Outputs::Port>& ports, const std::atomic<float>* values,
                        std::vector<ControlOutput>& out);

/// A ring of whole messages ([uint32 size][bytes]) between one writer and
/// one reader thread: wait-free on both sides, no allocation after
/// construction. Used by the LV2 worker (run() -> worker thread -> run()).
class ByteRing {
public:
    /// `capacity` bytes (rounded up to a power of two).
    explicit ByteRing(uint32_t capacity);
    /// [writer] Append one message of `size` bytes (0 is a message too); false
    /// (nothing written) when it does not fit.
    bool write(const void* data, uint32_t size) noexcept;
    /// [reader] True when a message waits; `*size` is then its size in bytes.
    bool peek(uint32_t* size) const noexcept;
    /// [reader] Take the next message into `out` (`capacity` bytes): true
    /// when it was copied; false when none waits, or when it is larger than
    /// `capacity`, in which case it is dropped (the ring never stalls on it).
    bool read(void* out, uint32_t capacity) noexcept;

private:
    void copyIn(uint32_t at, const void* data, uint32_t size) noexcept;
    void copyOut(uint32_t at, void* out, uint32_t size) const noexcept;
    std::vector<unsigned char> buffer_;
    uint32_t mask_;
    alignas(64) std::atomic<uint32_t> head_{0};  ///< written by the writer
    alignas(64) std::atomic<uint32_t> tail_{0};  ///< written by the reader
};

/// [any thread, wait-free] Format one plugin log line into the process's
/// fixed log ring ("PLUGIN: text", at most 255 bytes); counted as dropped
/// when the ring is full. vsnprintf on a stack buffer: no allocation.
void logLine(const char* plugin, const char* format, va_list args) noexcept;

/// [control] The lines logged since the last call (takePluginLog()).
std::vector<std::string> takeLog();

/// Offline: worker requests run inside run() (setPluginWorkSynchronous).
extern std::atomic<bool> gSynchronousWork;
/// In a sandbox child: reset() deactivates and activates at once.
extern std::atomic<bool> gResetInPlace;

/// What both adapters' instances share for a reset: reset() on the audio
/// thread sets `fault` (process() then outputs silence and the rack plays
/// the node dry) and `restart` (the control thread replaces the instance).
struct ResetState {
    std::atomic<bool> fault{false};
    std::atomic<bool> restart{false};
};
/// The adapters' ResetState of `instance`, or nullptr when it is not theirs.
ResetState* lv2ResetState(const rackterm_processor_v2& d, rackterm_instance* instance);
ResetState* ladspaResetState(const rackterm_processor_v2& d, rackterm_instance* instance);

/// The adapters' side of controlOutputs(): the ports of `instance`'s
/// plugin and their values now; false when it is not one of theirs.
bool lv2ControlOutputs(const rackterm_processor_v2& d, rackterm_instance* instance, std::vector<ControlOutput>& out);
bool ladspaControlOutputs(const rackterm_processor_v2& d, rackterm_instance* instance,
                          std::vector<ControlOutput>& out);

/// The LV2 adapter's side of sendMidi(); false when `instance` is not one of its own.
bool lv2SendMidi(const rackterm_processor_v2& d, rackterm_instance* instance, const uint8_t* bytes, uint32_t size);

/// The LV2 adapter's state (Plugins.hpp); `instance` and `target` are its
/// own instances (callers check with lv2Instance()).
bool isLv2Instance(const rackterm_processor_v2& d) noexcept;
bool lv2HasState(rackterm_instance* instance);
Result<void> lv2SaveState(rackterm_instance* instance, const std::string& dir);
Result<void> lv2RestoreState(rackterm_instance* instance, const std::string& dir);
Result<void> lv2CopyState(rackterm_instance* from, rackterm_instance* to);

/// The adapters' loaders and listings (Lv2.cpp, Ladspa.cpp).
Result<std::shared_ptr<Module>> loadLv2(const std::string& uri, double sampleRateHz);
Result<std::shared_ptr<Module>> loadLadspa(const std::string& name, double sampleRateHz);
std::vector<PluginInfo> lv2Plugins();
std::vector<PluginInfo> ladspaPlugins();
void forgetLv2();
void forgetLadspa();

/// The multiarch folder name this rackterm was built for ("x86_64-linux-gnu"), or "".
std::string multiarch();

}  // namespace rackterm::loader::plugins
