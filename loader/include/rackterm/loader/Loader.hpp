// The processor loader: dlopen()s a private copy of a processor module, checks
// its ABI before touching anything else, validates its parameter table, and
// creates instances. Every function is [control]: never call it from the
// audio thread (it allocates, copies files and calls dlopen/dlclose).
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/processor.h>

#include <cstdint>
#include <memory>
#include <string>

namespace rackterm::loader {

/// A loaded module. dlclose() runs in the destructor, so keep the module
/// alive (shared_ptr) as long as any instance made from it exists.
class Module {
public:
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    /// The validated descriptor; valid while the module lives.
    const rackterm_processor_v2& descriptor() const noexcept { return *descriptor_; }
    /// The path the module was loaded from (not the private copy).
    const std::string& path() const noexcept { return path_; }

private:
    friend Result<std::shared_ptr<Module>> loadModule(const std::string& path);
    Module(void* handle, const rackterm_processor_v2* d, std::string path)
        : handle_(handle), descriptor_(d), path_(std::move(path)) {}
    void* handle_;
    const rackterm_processor_v2* descriptor_;
    std::string path_;
};

/// An instance and the module it came from. destroy() runs in the destructor
/// [control]; the module is released after the instance.
class Instance {
public:
    Instance(std::shared_ptr<Module> module, rackterm_instance* instance) noexcept
        : module_(std::move(module)), instance_(instance) {}
    ~Instance();
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    const rackterm_processor_v2& descriptor() const noexcept { return module_->descriptor(); }
    rackterm_instance* get() const noexcept { return instance_; }
    const std::shared_ptr<Module>& module() const noexcept { return module_; }

private:
    std::shared_ptr<Module> module_;
    rackterm_instance* instance_;
};

/// Load `path`: copy it to a private temporary file (so a rebuilt file at the
/// same path is a new module), dlopen(RTLD_NOW | RTLD_LOCAL) the copy, find
/// rackterm_processor_entry, check abi_version and struct_size, then validate
/// the descriptor. Errors (one line, naming the file): file missing, not a
/// shared object, no entry symbol, entry returned NULL, ABI version mismatch
/// (found vN, needed v2, rebuild against this rackterm/processor.h), struct
/// too small, invalid parameter table, missing function pointer.
Result<std::shared_ptr<Module>> loadModule(const std::string& path);

/// Check a descriptor's fields and parameter table: non-empty unique ids of
/// [a-z0-9_], finite min <= default <= max, min > 0 for LOG, 2 x 2 channels,
/// every function pointer set. Returns "" when valid, else the problem.
std::string validateDescriptor(const rackterm_processor_v2& d);

/// [control] What `instance` of descriptor `d` reports as its latency,
/// frames: its latency_frames() when the build has that optional entry (its
/// struct_size covers it) and sets it, else 0.
uint32_t latencyFrames(const rackterm_processor_v2& d, rackterm_instance* instance);

/// Create an instance at `sampleRateHz` for blocks of at most `maxBlockFrames`.
/// Error when create() returns NULL, with the processor's last_error() text
/// (which says whether create() threw).
Result<std::unique_ptr<Instance>> createInstance(const std::shared_ptr<Module>& module,
                                                 double sampleRateHz, uint32_t maxBlockFrames);

}  // namespace rackterm::loader
