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
    /// A read-only descriptor of the bytes that were loaded (the private
    /// copy, unlinked): a sandbox child loads the same build from it even
    /// when the file at path() was rebuilt since. -1 when it could not be kept.
    int fd() const noexcept { return fd_; }

private:
    friend Result<std::shared_ptr<Module>> loadModule(const std::string& path);
    Module(void* handle, const rackterm_processor_v2* d, std::string path, int fd)
        : handle_(handle), descriptor_(d), path_(std::move(path)), fd_(fd) {}
    void* handle_;
    const rackterm_processor_v2* descriptor_;
    std::string path_;
    int fd_;
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

private:
    std::shared_ptr<Module> module_;
    rackterm_instance* instance_;
    const rackterm_processor_v2* descriptor_;
    std::shared_ptr<IsolatedProcessor> isolated_;
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
