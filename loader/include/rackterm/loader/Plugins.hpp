// LV2 and LADSPA plugins as processor modules. `lv2:URI`, `ladspa:LABEL`
// and `ladspa:FILE.so:LABEL` name a plugin wherever a processor .so path is
// accepted (loadModule); the plugin is adapted to the processor ABI v2
// (processor.h): the same parameter table, apply_plain_values, process and
// reset, so the rack, bypass, crossfades, the graph and isolation treat it
// as any other node.
//
// LV2 goes through lilv (no TTL parsing of ours); LADSPA through dlopen and
// ladspa.h. Discovery follows each ecosystem's rules: LV2_PATH (default
// ~/.lv2:/usr/local/lib/lv2:/usr/lib/lv2 and the multiarch folders) and
// LADSPA_PATH (default /usr/local/lib/ladspa:/usr/lib/ladspa and the
// multiarch folders).
//
// Every function here is [control] unless it says otherwise.
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/loader/Loader.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm::loader {

/// True for a plugin name: it starts with "lv2:" or "ladspa:".
bool isPluginReference(std::string_view name) noexcept;

/// Load the plugin `reference` names, its parameter table made for
/// `sampleRateHz` (LV2 lv2:sampleRate and LADSPA SAMPLE_RATE ranges are
/// multiplied by it). Errors, one line each, starting with the reference:
/// not installed (did-you-mean over what is), an LV2 plugin that requires a
/// feature rackterm does not offer (naming the feature URI), a LADSPA label
/// found in several files (naming them: write ladspa:FILE.so:LABEL), no
/// audio output, more than 8 audio ports a side, a port type rackterm
/// cannot connect.
Result<std::shared_ptr<Module>> loadPlugin(const std::string& reference, double sampleRateHz);

/// One installed plugin, as `list processors` shows it.
struct PluginInfo {
    std::string reference;  ///< "lv2:http://..." or "ladspa:amp_mono" ("ladspa:FILE.so:LABEL" when the label is in several files)
    std::string name;       ///< "MDA Delay"
    std::string file;       ///< LV2: the bundle folder; LADSPA: the .so
    uint32_t audioInputs = 0;
    uint32_t audioOutputs = 0;
    uint32_t controlInputs = 0;
    uint32_t controlOutputs = 0;
};

/// Every installed LV2 plugin (sorted by URI), then every LADSPA plugin
/// (sorted by label). The LV2 world and the LADSPA scan are made once per
/// process; rescanPlugins() makes them again.
std::vector<PluginInfo> installedPlugins();

/// Forget what was scanned: the next lookup reads LV2_PATH and LADSPA_PATH
/// and the folders again (new installs; tests that change the paths).
void rescanPlugins();

/// The folders searched, in order: LV2_PATH's, or the default list.
std::vector<std::string> lv2Path();
/// LADSPA_PATH's folders, or the default list.
std::vector<std::string> ladspaPath();

/// A plugin's control output port (a compressor's gain reduction, a
/// plugin's latency): its id (LV2 symbol; LADSPA name made [a-z0-9_]),
/// name, unit, and its value after the last block.
struct ControlOutput {
    std::string id;
    std::string name;
    std::string unit;
    float value = 0.0f;
};

/// [control] The control outputs of `instance` when it is a plugin's
/// (empty for a processor .so or an isolated instance), with the values the
/// audio thread left after its last block (read without a lock).
std::vector<ControlOutput> controlOutputs(const Instance& instance);

/// [control] Queue one MIDI message (1 to 3 bytes, e.g. note on: 0x90 KEY
/// VELOCITY) for `instance`'s first atom input port that takes MIDI events
/// (an LV2 instrument, a sampler): the audio thread puts it at frame 0 of
/// the instance's next block (through a wait-free ring). False when the
/// instance has no such port (not an LV2 plugin, isolated, an effect) or 64
/// messages already wait.
bool sendMidi(const Instance& instance, const uint8_t* bytes, uint32_t size);

/// The flag the rack reads after each block of `instance` to play the
/// node's dry signal instead of its output: an isolated instance's (its
/// child did not answer) or a plugin's (it was reset after NaN/Inf and
/// waits for a new instance); nullptr for other instances.
const std::atomic<bool>* faultFlag(const Instance& instance);

/// [control] True once per reset of a plugin instance: the rack reset it
/// after it put out NaN or Inf. A plugin cannot be reset on the audio
/// thread (LV2 and LADSPA activate() may allocate), so it goes silent, its
/// fault flag set, until the control thread replaces it by a new instance.
bool takePluginRestartRequest(const Instance& instance);

/// In a rackterm-sandbox child only: a plugin's reset deactivates and
/// activates it where it is (the child is the plugin's own process).
void resetPluginsInPlace(bool inPlace) noexcept;

/// True when `instance` runs an LV2 plugin with the state interface (its
/// state is more than its control values: a sampler's file, a table).
bool hasPluginState(const Instance& instance);

/// [control] Save the state of `instance` (which may be playing: LV2 lets
/// save() run beside run()) into folder `dir` as lilv writes it: state.ttl
/// plus the files the plugin keeps (files it keeps in `dir` itself, e.g. a
/// sample restored from there, are copied; files elsewhere are linked). The
/// state is written into a new folder beside `dir` that then replaces it in
/// one atomic exchange (renameat2), so `dir` always holds a whole state, and
/// a failed save leaves the previous one (lilv reports a plugin's failed
/// save() as a state without properties: that never replaces a state that
/// has some). Files the plugin took from the folder its state was last
/// restored from are copied, others linked. Control values are not in it
/// (the session has them). Error (one line) when the plugin fails to save or
/// the folder cannot be written (a filesystem without renameat2's exchange
/// gets two renames instead).
Result<void> savePluginState(const Instance& instance, const std::string& dir);

/// [control] Restore the state saved in folder `dir` into `instance`, which
/// must not be playing yet (a new instance, before its rack is published).
/// Error when `dir` holds no state.ttl of this plugin.
Result<void> restorePluginState(const Instance& instance, const std::string& dir);

/// [control] Carry the state of `from` (may be playing) into `to` (not yet
/// playing), the same plugin: a hot swap keeps a sampler's file. In memory
/// (lilv_state without a folder): files the plugin refers to keep their
/// paths, so the new instance uses the same files; a plugin that can only
/// save by writing new files (LV2 makePath) carries no such files this way.
/// Error (one line) when the two are not the same plugin or `from` fails to save.
Result<void> copyPluginState(const Instance& from, const Instance& to);

/// [control] Take the lines plugins wrote through LV2 log:log since the
/// last call, oldest first, each "PLUGIN: text" without the newline
/// (trace messages only when RACKTERM_LV2_TRACE=1 is set). The
/// audio and worker threads only copy into a fixed ring (never a lock or an
/// allocation); lines that did not fit are counted in one line at the end.
std::vector<std::string> takePluginLog();

/// [control] Offline renders set this: an LV2 plugin's worker requests run
/// at once, inside its run(), so that a render is the same every time (as
/// a freewheeling host does). Live (the default), a worker thread per
/// instance runs them and the answers reach the plugin after a later run().
void setPluginWorkSynchronous(bool synchronous) noexcept;

/// The LV2 features rackterm offers a plugin at instantiation: any other
/// feature a plugin requires makes it refused.
const std::vector<std::string>& offeredLv2Features();

}  // namespace rackterm::loader
