#include <rackterm/loader/Loader.hpp>
#include <rackterm/loader/Plugins.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Text.hpp>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>
#include <cstring>
#include <filesystem>
#include <set>

namespace rackterm::loader {

namespace fs = std::filesystem;

namespace {

Error fail(const std::string& path, const std::string& what) { return Error{printable(path, kPathChars) + ": " + what}; }

/// Copy `from` into a fresh private directory; returns the copy's path or "".
std::string privateCopy(const std::string& from, std::string& why) {
    static std::atomic<unsigned> counter{0};
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    fs::path base = (runtime && *runtime && fs::is_directory(runtime)) ? fs::path(runtime) : fs::temp_directory_path();
    std::string tmpl = (base / "rackterm-module-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
        why = std::string("cannot make a private directory in ") + base.string() + ": " + std::strerror(errno);
        return {};
    }
    fs::path copy = fs::path(tmpl) / (std::to_string(counter++) + "-" + fs::path(from).filename().string());
    std::error_code ec;
    fs::copy_file(from, copy, ec);
    if (ec) {
        why = "cannot copy the module to " + copy.string() + ": " + ec.message();
        fs::remove(tmpl, ec);
        return {};
    }
    return copy.string();
}

void removePrivateCopy(const std::string& copy) {
    std::error_code ec;
    fs::remove(copy, ec);
    fs::remove(fs::path(copy).parent_path(), ec);
}

bool validId(const char* id) {
    if (!id || !*id) return false;
    for (const char* p = id; *p; ++p)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
    return true;
}

}  // namespace

std::shared_ptr<Module> Module::fromPlugin(std::unique_ptr<PluginHost> plugin, std::string reference,
                                          double tableRateHz) {
    std::shared_ptr<Module> m(new Module(nullptr, &plugin->descriptor(), std::move(reference), -1));
    m->plugin_ = std::move(plugin);
    m->tableRate_ = tableRateHz;
    return m;
}

Module::~Module() {
    plugin_.reset();  // the plugin's instances are gone; it closes its own library
    if (handle_) dlclose(handle_);
    if (fd_ >= 0) ::close(fd_);
}

namespace {

/// One hook call on a helper thread: the control thread waits for it at most
/// kHookTimeoutSeconds, and a hook that never returns keeps only this.
struct HookCall {
    std::mutex mutex;
    std::condition_variable finished;
    bool done = false;
    int32_t result = 0;
    std::string error;
};

/// Run `hook` (returning 0 on success) on a helper thread; false in
/// `inTime` when it did not return within the time-out (the thread is then
/// left to run, detached).
std::shared_ptr<HookCall> runHook(std::function<int32_t()> hook, const rackterm_processor_v2& d, bool& inTime) {
    auto call = std::make_shared<HookCall>();
    std::thread worker;
    try {
        worker = std::thread([call, hook = std::move(hook), &d]() {
            const int32_t r = hook();
            std::string why;
            if (r != 0) {
                const char* e = d.last_error ? d.last_error() : nullptr;  // the same thread: its thread-local text
                why = e && *e ? printable(e, 300) : "it returned " + std::to_string(r);
            }
            std::lock_guard lock(call->mutex);
            call->result = r;
            call->error = std::move(why);
            call->done = true;
            call->finished.notify_all();
        });
    } catch (const std::system_error& e) {  // no thread to be had: the hook is not run, and that is a failure
        call->done = true;
        call->result = -1;
        call->error = std::string("rackterm could not start a thread for it (") + e.what() + ")";
        inTime = true;
        return call;
    }
    worker.detach();
    std::unique_lock lock(call->mutex);
    inTime = call->finished.wait_for(lock, std::chrono::duration<double>(kHookTimeoutSeconds), [&] { return call->done; });
    return call;
}

/// What a hung hook keeps alive forever: the module stays mapped (the hook's
/// thread still runs its code) and the instance allocated (the hook may
/// still use it). Deliberately never freed, and kept reachable.
void abandon(std::shared_ptr<Module> module, const rackterm_instance* instance) {
    struct Abandoned {
        std::mutex guard;
        std::vector<std::shared_ptr<Module>> modules;
        std::vector<const rackterm_instance*> instances;
    };
    static auto* kept = new Abandoned;
    std::lock_guard lock(kept->guard);
    kept->modules.push_back(std::move(module));
    kept->instances.push_back(instance);
}

std::string hookTimeText() {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g s", kHookTimeoutSeconds);
    return buf;
}

}  // namespace

Result<void> Instance::callHook(const char* name, std::function<int32_t()> hook, const char* afterHang) {
    const rackterm_processor_v2& d = module_->descriptor();
    bool inTime = false;
    auto call = runHook(std::move(hook), d, inTime);
    const std::string who = printable(module_->path(), kPathChars) + ": processor '" + d.id + "': " + name + "() ";
    if (!inTime) {
        abandoned_ = true;
        abandon(module_, instance_);
        return Error{who + "did not return within " + hookTimeText() + "; " + afterHang + " (fix the hook: it must not block)"};
    }
    if (call->result != 0) return Error{who + "failed: " + call->error};
    return {};
}

Result<void> Instance::activate() {
    if (activated_ || abandoned_ || isolated_ || !instance_) return {};
    const rackterm_processor_v2& d = module_->descriptor();
    activated_ = true;
    if (!RACKTERM_HAS_ENTRY(&d, activate) || !d.activate) return {};
    rackterm_instance* inst = instance_;
    auto r = callHook("activate", [&d, inst] { return d.activate(inst); }, "the node is treated as failed");
    if (!r && !abandoned_) deactivated_ = true;  // it never became active: no deactivate() owed
    return r;
}

Result<void> Instance::deactivate(uint32_t reason) {
    if (!activated_ || deactivated_ || abandoned_ || isolated_ || !instance_) return {};
    deactivated_ = true;
    const rackterm_processor_v2& d = module_->descriptor();
    if (!RACKTERM_HAS_ENTRY(&d, deactivate) || !d.deactivate) return {};
    rackterm_instance* inst = instance_;
    return callHook("deactivate", [&d, inst, reason] {
        d.deactivate(inst, reason);
        return int32_t{0};
    }, "its instance is abandoned");
}

Instance::~Instance() {
    if (!instance_ || isolated_) return;
    (void)deactivate(reason_);  // the owner logged nothing it could act on
    if (abandoned_) return;     // its hook's thread may still use it: never destroyed (callHook kept it)
    module_->descriptor().destroy(instance_);
}

std::string validateDescriptor(const rackterm_processor_v2& d) {
    if (!validId(d.id)) return "processor id must be non-empty [a-z0-9_]";
    if (!d.name || !d.version) return "processor name and version must be set";
    if (d.input_channels < 1 || d.input_channels > kMaxProcessorChannels || d.output_channels < 1 ||
        d.output_channels > kMaxProcessorChannels)
        return "processor has " + std::to_string(d.input_channels) + " in / " + std::to_string(d.output_channels) +
               " out channels; a processor has 1 to " + std::to_string(kMaxProcessorChannels) + " of each";
    if (!d.create || !d.destroy || !d.reset || !d.apply_plain_values || !d.process || !d.last_error)
        return "a function pointer (create, destroy, reset, apply_plain_values, process, last_error) is NULL";
    if (d.param_count > 0 && !d.params) return "param_count is " + std::to_string(d.param_count) + " but params is NULL";
    if (d.param_count > 1024) return "param_count " + std::to_string(d.param_count) + " is over the limit of 1024";
    std::set<std::string> seen;
    for (uint32_t i = 0; i < d.param_count; ++i) {
        const rackterm_param_info& p = d.params[i];
        const std::string where = "parameter " + std::to_string(i);
        if (!validId(p.id)) return where + ": id must be non-empty [a-z0-9_]";
        if (!seen.insert(p.id).second) return where + ": duplicate id '" + p.id + "'";
        if (!p.name || !p.unit) return where + " '" + p.id + "': name and unit must not be NULL";
        if (!std::isfinite(p.min) || !std::isfinite(p.max) || !std::isfinite(p.default_value))
            return where + " '" + p.id + "': min, max and default must be finite";
        if (!(p.min <= p.default_value && p.default_value <= p.max))
            return where + " '" + p.id + "': needs min <= default <= max, found " + std::to_string(p.min) + " <= " +
                   std::to_string(p.default_value) + " <= " + std::to_string(p.max);
        if ((p.flags & RACKTERM_PARAM_LOG) && p.min <= 0.0f)
            return where + " '" + p.id + "': a log parameter needs min > 0";
    }
    return {};
}

Result<std::shared_ptr<Module>> loadModule(const std::string& path, double sampleRateHz) {
    if (isPluginReference(path)) return loadPlugin(path, sampleRateHz > 0.0 ? sampleRateHz : 48000.0);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return fail(path, "no such file; check the path or build the processor first");
    if (!S_ISREG(st.st_mode))
        return fail(path, std::string("is ") + files::kindOf(st.st_mode) + ", not a processor module; give the path of a .so");
    std::string why;
    const std::string copy = privateCopy(path, why);
    if (copy.empty()) return fail(path, why);
    dlerror();
    void* handle = dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
    const int bytes = handle ? ::open(copy.c_str(), O_RDONLY | O_CLOEXEC) : -1;  // for a sandbox child
    removePrivateCopy(copy);  // the mapping stays valid after unlink
    auto closeBytes = [bytes] {
        if (bytes >= 0) ::close(bytes);
    };
    if (!handle) {
        const char* e = dlerror();
        std::string detail = e ? e : "unknown error";
        if (auto pos = detail.find(copy); pos != std::string::npos) detail.replace(pos, copy.size(), path);
        return fail(path, "not a loadable shared object (" + printable(detail, 400) + "); build it as a processor module (a .so)");
    }
    auto entry = reinterpret_cast<rackterm_entry_fn>(dlsym(handle, RACKTERM_ENTRY_SYMBOL));
    if (!entry) {
        dlclose(handle);
        closeBytes();
        return fail(path, std::string("no ") + RACKTERM_ENTRY_SYMBOL +
                              " symbol; export one with RACKTERM_PROCESSOR(YourClass) from rackterm/Processor.hpp");
    }
    const rackterm_processor_v2* d = entry();
    if (!d) {
        dlclose(handle);
        closeBytes();
        return fail(path, std::string(RACKTERM_ENTRY_SYMBOL) + "() returned NULL; it must return its descriptor");
    }
    // abi_version is the first field in every version of the ABI: read it alone first.
    uint32_t version = 0;
    std::memcpy(&version, d, sizeof version);
    if (version != RACKTERM_ABI_VERSION) {
        dlclose(handle);
        closeBytes();
        return fail(path, "processor ABI v" + std::to_string(version) + " found, rackterm needs v" +
                              std::to_string(RACKTERM_ABI_VERSION) +
                              "; rebuild the processor against this rackterm's rackterm/processor.h");
    }
    // Read what the message needs before dlclose: the descriptor lives in the module's memory.
    if (const uint32_t size = d->struct_size; size < RACKTERM_V2_BASE_SIZE) {
        dlclose(handle);
        closeBytes();
        return fail(path, "descriptor is " + std::to_string(size) + " bytes, ABI v2 needs at least " +
                              std::to_string(RACKTERM_V2_BASE_SIZE) +
                              "; rebuild against this rackterm's rackterm/processor.h");
    }
    if (std::string bad = validateDescriptor(*d); !bad.empty()) {
        dlclose(handle);
        closeBytes();
        return fail(path, "invalid processor descriptor: " + bad);
    }
    return std::shared_ptr<Module>(new Module(handle, d, path, bytes));
}

uint32_t latencyFrames(const rackterm_processor_v2& d, rackterm_instance* instance) {
    if (!instance || !RACKTERM_HAS_ENTRY(&d, latency_frames) || !d.latency_frames) return 0;
    return d.latency_frames(instance);
}

Result<std::unique_ptr<Instance>> createInstance(const std::shared_ptr<Module>& module, double sampleRateHz,
                                                 uint32_t maxBlockFrames) {
    const rackterm_processor_v2& d = module->descriptor();
    if (PluginHost* plugin = module->plugin()) {
        std::string why;
        rackterm_instance* inst = plugin->create(sampleRateHz, maxBlockFrames, why);
        if (!inst)
            return Error{printable(module->path(), kPathChars) + ": could not be created at " +
                         std::to_string(static_cast<long>(sampleRateHz)) + " Hz, " + std::to_string(maxBlockFrames) +
                         " frames: " + why};
        return std::make_unique<Instance>(module, inst);  // plugins have no rackterm lifecycle hooks
    }
    rackterm_instance* inst = d.create(sampleRateHz, maxBlockFrames);
    if (!inst) {
        const char* why = d.last_error();
        std::string detail = (why && *why) ? printable(why, 200) : "create() returned NULL";
        return fail(module->path(), "processor '" + std::string(d.id) + "' could not be created at " +
                                        std::to_string(static_cast<long>(sampleRateHz)) + " Hz, " +
                                        std::to_string(maxBlockFrames) + " frames: " + detail);
    }
    auto made = std::make_unique<Instance>(module, inst);
    if (auto active = made->activate(); !active) {
        return Error{active.error()};  // a hung hook's instance is kept (abandoned), not destroyed
    }
    return made;
}

}  // namespace rackterm::loader
