// The processor loader: dlopen()s a private copy of a processor module, checks
// its ABI before touching anything else, validates its parameter table, and
// creates instances. Every function is [control]: never call it from the
// audio thread (it allocates, copies files and calls dlopen/dlclose).
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/processor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace rackterm::loader {

/// What stands behind a plugin module (an LV2 or LADSPA plugin adapted to
/// the processor ABI, Plugins.hpp): it owns the descriptor, its parameter
/// table and the plugin's library, and creates instances (the descriptor's
/// own create() has no way to know which plugin it is for).
class PluginHost {
public:
    virtual ~PluginHost() = default;
    /// The adapter's descriptor: the same ABI v2 table a module exports.
    virtual const rackterm_processor_v2& descriptor() const noexcept = 0;
    /// [control] A new instance at `sampleRateHz` for blocks of at most
    /// `maxBlockFrames`, its parameters at their defaults; nullptr with
    /// `error` set (one line) when the plugin refuses.
    virtual rackterm_instance* create(double sampleRateHz, uint32_t maxBlockFrames, std::string& error) = 0;
};

/// A loaded module: a processor .so, or a plugin (`lv2:URI`,
/// `ladspa:LABEL`) behind the same descriptor. dlclose() runs in the
/// destructor, so keep the module alive (shared_ptr) as long as any
/// instance made from it exists.
class Module {
public:
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    /// The validated descriptor; valid while the module lives.
    const rackterm_processor_v2& descriptor() const noexcept { return *descriptor_; }
    /// The path the module was loaded from (not the private copy).
    const std::string& path() const noexcept { return path_; }
    /// A read-only descriptor of the bytes that were loaded (the private
    /// copy, unlinked): a sandbox child loads the same build from it even
    /// when the file at path() was rebuilt since. -1 when it could not be kept.
    int fd() const noexcept { return fd_; }
    /// The plugin behind a `lv2:` or `ladspa:` module, else nullptr.
    PluginHost* plugin() const noexcept { return plugin_.get(); }
    /// The sample rate the parameter table was made for, Hz: a plugin's
    /// sample-rate-relative ranges depend on it (0 for a processor .so,
    /// whose table does not).
    double tableRate() const noexcept { return tableRate_; }

    /// [control] A plugin module (Plugins.hpp); `reference` is its name,
    /// `lv2:URI` or `ladspa:...`, which path() then returns.
    static std::shared_ptr<Module> fromPlugin(std::unique_ptr<PluginHost> plugin, std::string reference,
                                              double tableRateHz);

private:
    friend Result<std::shared_ptr<Module>> loadModule(const std::string& path, double sampleRateHz);
    Module(void* handle, const rackterm_processor_v2* d, std::string path, int fd)
        : handle_(handle), descriptor_(d), path_(std::move(path)), fd_(fd) {}
    void* handle_;
    const rackterm_processor_v2* descriptor_;
    std::string path_;
    int fd_;
    std::unique_ptr<PluginHost> plugin_;
    double tableRate_ = 0.0;
};

class IsolatedProcessor;

/// An instance and the module it came from: in this process, or isolated in
/// a child (Isolation.hpp), whose host side then provides descriptor() and
/// get(). destroy() (or the child's end) runs in the destructor [control];
/// the module is released after the instance.
class Instance {
public:
    Instance(std::shared_ptr<Module> module, rackterm_instance* instance) noexcept
        : module_(std::move(module)), instance_(instance), descriptor_(&module_->descriptor()) {}
    Instance(std::shared_ptr<Module> module, std::shared_ptr<IsolatedProcessor> isolated) noexcept;
    ~Instance();
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    /// What the rack calls: the module's descriptor, or the host side's of an isolated instance.
    const rackterm_processor_v2& descriptor() const noexcept { return *descriptor_; }
    rackterm_instance* get() const noexcept { return instance_; }
    const std::shared_ptr<Module>& module() const noexcept { return module_; }
    /// The child process behind this instance, or nullptr when it runs in process.
    const std::shared_ptr<IsolatedProcessor>& isolated() const noexcept { return isolated_; }

    /// [control] Run the processor's activate() hook (when its build has
    /// one), at most once, within kHookTimeoutSeconds. Error (one line) when
    /// it fails (with its last_error() text) or does not return in time; a
    /// hook that hung leaves the instance abandoned: never called again,
    /// never destroyed, its module never closed.
    Result<void> activate();
    /// [control] Run deactivate(reason) (RACKTERM_DEACTIVATE_*) when the
    /// instance was activated and not yet deactivated: after its last
    /// process(). Error when the hook does not return in time (the instance
    /// is then abandoned as above). The destructor calls it with the reason
    /// setDeactivateReason() gave when nobody did.
    Result<void> deactivate(uint32_t reason);
    /// The reason the destructor passes to deactivate(): RACKTERM_DEACTIVATE_REMOVE
    /// unless the owner said otherwise (a swap: RELOAD; quitting: SHUTDOWN).
    void setDeactivateReason(uint32_t reason) noexcept { reason_ = reason; }

private:
    /// Run lifecycle hook `name` (returning 0 on success) within
    /// kHookTimeoutSeconds; on a hang the instance is abandoned and the
    /// error ends with `afterHang`.
    Result<void> callHook(const char* name, std::function<int32_t()> hook, const char* afterHang);

    std::shared_ptr<Module> module_;
    rackterm_instance* instance_;
    const rackterm_processor_v2* descriptor_;
    std::shared_ptr<IsolatedProcessor> isolated_;
    uint32_t reason_ = RACKTERM_DEACTIVATE_REMOVE;
    bool activated_ = false, deactivated_ = false, abandoned_ = false;
};

/// Seconds a lifecycle hook (activate, deactivate) may take before rackterm
/// reports it and treats its instance as failed (ABI: processor.h).
inline constexpr double kHookTimeoutSeconds = 2.0;

/// Load `path`: copy it to a private temporary file (so a rebuilt file at the
/// same path is a new module), dlopen(RTLD_NOW | RTLD_LOCAL) the copy, find
/// rackterm_processor_entry, check abi_version and struct_size, then validate
/// the descriptor. Errors (one line, naming the file): file missing, not a
/// shared object, no entry symbol, entry returned NULL, ABI version mismatch
/// (found vN, needed v2, rebuild against this rackterm/processor.h), struct
/// too small, invalid parameter table, missing function pointer.
///
/// `lv2:URI`, `ladspa:LABEL` and `ladspa:FILE.so:LABEL` load that plugin
/// instead (Plugins.hpp), with its parameter table made for `sampleRateHz`
/// (sample-rate-relative ranges; 0 means 48 kHz). Errors name the plugin:
/// not installed (with a did-you-mean), a required LV2 feature rackterm
/// does not offer, port layouts rackterm cannot run.
Result<std::shared_ptr<Module>> loadModule(const std::string& path, double sampleRateHz = 0.0);

/// Check a descriptor's fields and parameter table: non-empty unique ids of
/// [a-z0-9_], finite min <= default <= max, min > 0 for LOG, 2 x 2 channels,
/// every function pointer set. Returns "" when valid, else the problem.
std::string validateDescriptor(const rackterm_processor_v2& d);

/// [control] What `instance` of descriptor `d` reports as its latency,
/// frames: its latency_frames() when the build has that optional entry (its
/// struct_size covers it) and sets it, else 0.
uint32_t latencyFrames(const rackterm_processor_v2& d, rackterm_instance* instance);

/// Create an instance at `sampleRateHz` for blocks of at most `maxBlockFrames`,
/// then activate it (Instance::activate) so it is ready for process().
/// Error when create() returns NULL, with the processor's last_error() text
/// (which says whether create() threw), or when activate() fails or hangs.
Result<std::unique_ptr<Instance>> createInstance(const std::shared_ptr<Module>& module,
                                                 double sampleRateHz, uint32_t maxBlockFrames);

}  // namespace rackterm::loader
