// LADSPA plugins behind the processor ABI: dlopen and ladspa.h.
//
// Parameters come from the control input ports in port order; ranges and
// defaults from the port range hints as ladspa.h defines them (bounds
// multiplied by the sample rate under LADSPA_HINT_SAMPLE_RATE, LOW /
// MIDDLE / HIGH defaults interpolated linearly, or geometrically under
// LADSPA_HINT_LOGARITHMIC, rounded under LADSPA_HINT_INTEGER).
#include "PluginSupport.hpp"

#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>

#include <ladspa.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

namespace rackterm::loader {

namespace fs = std::filesystem;

std::vector<std::string> ladspaPath() {
    std::vector<std::string> dirs;
    if (const char* env = std::getenv("LADSPA_PATH"); env && *env) {
        std::string_view all = env;
        while (!all.empty()) {
            const size_t colon = all.find(':');
            if (colon != 0) dirs.emplace_back(all.substr(0, colon));
            if (colon == std::string_view::npos) break;
            all.remove_prefix(colon + 1);
        }
        return dirs;
    }
    dirs = {"/usr/local/lib/ladspa", "/usr/lib/ladspa"};
    if (const std::string ma = plugins::multiarch(); !ma.empty()) {
        dirs.push_back("/usr/local/lib/" + ma + "/ladspa");
        dirs.push_back("/usr/lib/" + ma + "/ladspa");
    }
    return dirs;
}

namespace plugins {

namespace {

/// One plugin found in a LADSPA library.
struct Entry {
    std::string label, name, file;  ///< file: full path of the .so
    unsigned long index = 0;        ///< its index for ladspa_descriptor()
    PluginInfo info;
};

std::mutex gCatalogMutex;
std::vector<Entry>* gCatalog = nullptr;  ///< under gCatalogMutex; made on first use

uint32_t countPorts(const LADSPA_Descriptor* d, LADSPA_PortDescriptor kind) {
    uint32_t n = 0;
    for (unsigned long p = 0; p < d->PortCount; ++p)
        if ((d->PortDescriptors[p] & kind) == kind) ++n;
    return n;
}

/// Every plugin of every .so in the LADSPA path, in path order (a file name
/// found again in a later folder is shadowed by the first, as PATH does).
std::vector<Entry> scan() {
    std::vector<Entry> out;
    std::vector<std::string> seenFiles;
    for (const std::string& dir : ladspaPath()) {
        std::error_code ec;
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dir, ec))
            if (e.path().extension() == ".so") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const fs::path& file : files) {
            const std::string base = file.filename().string();
            if (std::find(seenFiles.begin(), seenFiles.end(), base) != seenFiles.end()) continue;
            seenFiles.push_back(base);
            void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!h) continue;
            auto fn = reinterpret_cast<LADSPA_Descriptor_Function>(dlsym(h, "ladspa_descriptor"));
            for (unsigned long i = 0; fn && i < 4096; ++i) {
                const LADSPA_Descriptor* d = fn(i);
                if (!d) break;
                if (!d->Label) continue;
                Entry e;
                e.label = d->Label;
                e.name = d->Name ? d->Name : d->Label;
                e.file = file.string();
                e.index = i;
                e.info.name = e.name;
                e.info.file = e.file;
                e.info.audioInputs = countPorts(d, LADSPA_PORT_AUDIO | LADSPA_PORT_INPUT);
                e.info.audioOutputs = countPorts(d, LADSPA_PORT_AUDIO | LADSPA_PORT_OUTPUT);
                e.info.controlInputs = countPorts(d, LADSPA_PORT_CONTROL | LADSPA_PORT_INPUT);
                e.info.controlOutputs = countPorts(d, LADSPA_PORT_CONTROL | LADSPA_PORT_OUTPUT);
                out.push_back(std::move(e));
            }
            dlclose(h);
        }
    }
    // The reference: the label alone, or FILE.so:LABEL when the label is in several files.
    for (Entry& e : out) {
        const auto same = std::count_if(out.begin(), out.end(), [&](const Entry& o) { return o.label == e.label; });
        e.info.reference =
            "ladspa:" + (same > 1 ? fs::path(e.file).filename().string() + ":" + e.label : e.label);
    }
    return out;
}

const std::vector<Entry>& catalog() {
    if (!gCatalog) gCatalog = new std::vector<Entry>(scan());
    return *gCatalog;
}

/// What one instance needs on the audio thread.
struct Host;
struct LadspaInstance {
    const Host* host = nullptr;
    ResetState reset;
    LADSPA_Handle handle = nullptr;
    std::vector<LADSPA_Data> ports;       ///< a value per port (control ports point here)
    std::vector<std::vector<float>> scratch;  ///< audio ports until process() connects them
    std::unique_ptr<std::atomic<float>[]> outValues;  ///< control outputs after the last run
    const float* connectedIn[kMaxProcessorChannels] = {};
    float* connectedOut[kMaxProcessorChannels] = {};
};

struct Host final : PluginHost {
    void* library = nullptr;
    const LADSPA_Descriptor* d = nullptr;
    Table table;
    std::string reference;
    std::vector<unsigned long> paramPorts;  ///< port index of each parameter
    std::vector<unsigned long> outputPorts;  ///< port index of each control output
    std::vector<Outputs::Port> outputs;
    std::vector<unsigned long> audioIn, audioOut;
    long latencyOutput = -1;  ///< index into outputPorts of a "latency" output, or -1

    ~Host() override {
        if (library) dlclose(library);
    }
    const rackterm_processor_v2& descriptor() const noexcept override { return table.descriptor; }
    rackterm_instance* create(double sampleRateHz, uint32_t maxBlockFrames, std::string& error) override;
};

LadspaInstance* cast(rackterm_instance* i) { return reinterpret_cast<LadspaInstance*>(i); }

void destroyInstance(rackterm_instance* instance) {
    LadspaInstance* self = cast(instance);
    if (!self) return;
    if (self->handle) {
        if (self->host->d->deactivate) self->host->d->deactivate(self->handle);
        self->host->d->cleanup(self->handle);
    }
    delete self;
}

void resetInstance(rackterm_instance* instance) {
    // LADSPA clears a plugin's state by deactivate() then activate(), which
    // may allocate: not on the audio thread. Silent (the rack plays the node
    // dry) until the control thread replaces it; in a sandbox child, at once.
    LadspaInstance* self = cast(instance);
    if (gResetInPlace.load(std::memory_order_relaxed)) {
        const LADSPA_Descriptor* d = self->host->d;
        if (d->deactivate) d->deactivate(self->handle);
        if (d->activate) d->activate(self->handle);
        return;
    }
    self->reset.fault.store(true, std::memory_order_release);
    self->reset.restart.store(true, std::memory_order_release);
}

void applyValues(rackterm_instance* instance, const float* values, size_t len) {
    LadspaInstance* self = cast(instance);
    const Host& h = *self->host;
    const size_t n = std::min(len, h.paramPorts.size());
    for (size_t i = 0; i < n; ++i) {
        const rackterm_param_info& p = h.table.params[i];
        const float v = values[i];
        self->ports[h.paramPorts[i]] = std::isfinite(v) ? std::clamp(v, p.min, p.max) : p.default_value;
    }
}

void processBlock(rackterm_instance* instance, const float* const* inputs, float* const* outputs, uint32_t frames) {
    LadspaInstance* self = cast(instance);
    const Host& h = *self->host;
    const LADSPA_Descriptor* d = h.d;
    if (self->reset.fault.load(std::memory_order_relaxed)) {  // reset after NaN/Inf: silent until replaced
        for (size_t c = 0; c < h.audioOut.size(); ++c) std::memset(outputs[c], 0, frames * sizeof(float));
        return;
    }
    for (size_t c = 0; c < h.audioIn.size(); ++c)
        if (self->connectedIn[c] != inputs[c]) {
            self->connectedIn[c] = inputs[c];
            d->connect_port(self->handle, h.audioIn[c], const_cast<float*>(inputs[c]));
        }
    for (size_t c = 0; c < h.audioOut.size(); ++c)
        if (self->connectedOut[c] != outputs[c]) {
            self->connectedOut[c] = outputs[c];
            d->connect_port(self->handle, h.audioOut[c], outputs[c]);
        }
    d->run(self->handle, frames);
    for (size_t i = 0; i < h.outputPorts.size(); ++i)
        self->outValues[i].store(self->ports[h.outputPorts[i]], std::memory_order_relaxed);
}

uint32_t latency(rackterm_instance* instance) {
    LadspaInstance* self = cast(instance);
    const Host& h = *self->host;
    if (h.latencyOutput < 0) return 0;
    return latencyOf(self->ports[h.outputPorts[static_cast<size_t>(h.latencyOutput)]]);
}

rackterm_instance* Host::create(double sampleRateHz, uint32_t maxBlockFrames, std::string& error) {
    LADSPA_Handle handle = d->instantiate(d, static_cast<unsigned long>(std::lround(sampleRateHz)));
    if (!handle) {
        error = "the plugin's instantiate() returned NULL";
        return nullptr;
    }
    auto self = std::make_unique<LadspaInstance>();
    self->host = this;
    self->handle = handle;
    self->ports.assign(d->PortCount, 0.0f);
    self->outValues = std::make_unique<std::atomic<float>[]>(std::max<size_t>(outputPorts.size(), 1));
    for (size_t i = 0; i < paramPorts.size(); ++i) self->ports[paramPorts[i]] = table.params[i].default_value;
    for (unsigned long p = 0; p < d->PortCount; ++p)
        if (LADSPA_IS_PORT_CONTROL(d->PortDescriptors[p])) d->connect_port(handle, p, &self->ports[p]);
    // Audio ports point at scratch blocks until process() connects the rack's.
    for (const auto* list : {&audioIn, &audioOut})
        for (const unsigned long p : *list) {
            self->scratch.emplace_back(maxBlockFrames, 0.0f);
            d->connect_port(handle, p, self->scratch.back().data());
        }
    if (d->activate) d->activate(handle);
    return reinterpret_cast<rackterm_instance*>(self.release());
}

/// The plugin's parameter for control input port `p` at `rate`.
Param paramFor(const LADSPA_Descriptor* d, unsigned long p, double rate) {
    const LADSPA_PortRangeHint& hint = d->PortRangeHints[p];
    const LADSPA_PortRangeHintDescriptor h = hint.HintDescriptor;
    Param out;
    out.name = d->PortNames[p] ? d->PortNames[p] : "port " + std::to_string(p);
    out.id = portId(out.name);
    out.unit = unitFromName(out.name);
    const float scale = LADSPA_IS_HINT_SAMPLE_RATE(h) ? static_cast<float>(rate) : 1.0f;
    const bool below = LADSPA_IS_HINT_BOUNDED_BELOW(h), above = LADSPA_IS_HINT_BOUNDED_ABOVE(h);
    const float lo = hint.LowerBound * scale, hi = hint.UpperBound * scale;
    const bool log = LADSPA_IS_HINT_LOGARITHMIC(h);
    if (LADSPA_IS_HINT_TOGGLED(h)) {
        out.min = 0.0f;
        out.max = 1.0f;
        out.flags = RACKTERM_PARAM_TOGGLE;
    } else {
        // An unbounded side gets a wide finite bound: the ABI's ranges are finite.
        out.min = below ? lo : (above ? std::min(hi, 0.0f) - 1.0e4f : -1.0e4f);
        out.max = above ? hi : (below ? std::max(lo, 0.0f) + 1.0e4f : 1.0e4f);
        if (LADSPA_IS_HINT_INTEGER(h)) out.flags |= RACKTERM_PARAM_INTEGER;
        if (log) out.flags |= RACKTERM_PARAM_LOG;
    }
    auto between = [&](double wLow) {
        if (log && out.min > 0.0f && out.max > 0.0f)
            return static_cast<float>(std::exp(std::log(out.min) * wLow + std::log(out.max) * (1.0 - wLow)));
        return static_cast<float>(out.min * wLow + out.max * (1.0 - wLow));
    };
    float def = below ? out.min : (above ? out.max : 0.0f);
    switch (h & LADSPA_HINT_DEFAULT_MASK) {
    case LADSPA_HINT_DEFAULT_MINIMUM: def = out.min; break;
    case LADSPA_HINT_DEFAULT_LOW: def = between(0.75); break;
    case LADSPA_HINT_DEFAULT_MIDDLE: def = between(0.5); break;
    case LADSPA_HINT_DEFAULT_HIGH: def = between(0.25); break;
    case LADSPA_HINT_DEFAULT_MAXIMUM: def = out.max; break;
    case LADSPA_HINT_DEFAULT_0: def = 0.0f; break;
    case LADSPA_HINT_DEFAULT_1: def = 1.0f; break;
    case LADSPA_HINT_DEFAULT_100: def = 100.0f; break;
    case LADSPA_HINT_DEFAULT_440: def = 440.0f; break;
    default: break;
    }
    if (LADSPA_IS_HINT_INTEGER(h)) def = std::round(def);
    out.def = def;
    return out;
}

std::vector<std::string> labels() {
    std::vector<std::string> out;
    for (const Entry& e : catalog()) out.push_back(e.label);
    return out;
}

}  // namespace

std::vector<PluginInfo> ladspaPlugins() {
    std::lock_guard<std::mutex> lock(gCatalogMutex);
    std::vector<PluginInfo> out;
    for (const Entry& e : catalog()) out.push_back(e.info);
    std::stable_sort(out.begin(), out.end(), [](const PluginInfo& a, const PluginInfo& b) { return a.reference < b.reference; });
    return out;
}

void forgetLadspa() {
    std::lock_guard<std::mutex> lock(gCatalogMutex);
    delete gCatalog;
    gCatalog = nullptr;
}

Result<std::shared_ptr<Module>> loadLadspa(const std::string& name, double sampleRateHz) {
    const std::string reference = "ladspa:" + name;
    auto fail = [&](const std::string& what) { return Error{printable(reference, kPathChars) + ": " + what}; };
    std::string file, label = name;
    if (const size_t colon = name.rfind(':'); colon != std::string::npos) {
        file = name.substr(0, colon);
        label = name.substr(colon + 1);
    }
    if (label.empty()) return fail("no label; write ladspa:LABEL or ladspa:FILE.so:LABEL");
    Entry found;
    {
        std::lock_guard<std::mutex> lock(gCatalogMutex);
        std::vector<const Entry*> matches;
        for (const Entry& e : catalog()) {
            if (e.label != label) continue;
            // FILE.so matches by name in LADSPA_PATH; a path (with a '/') only that very file.
            if (!file.empty() && e.file != file &&
                (file.find('/') != std::string::npos || fs::path(e.file).filename() != fs::path(file).filename()))
                continue;
            matches.push_back(&e);
        }
        if (matches.empty() && !file.empty() && file.find('/') != std::string::npos) {
            // A file outside LADSPA_PATH, named by its path.
            void* h = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
            if (!h) return fail("cannot load " + printable(file, kPathChars) + ": " + printable(dlerror(), 300));
            auto fn = reinterpret_cast<LADSPA_Descriptor_Function>(dlsym(h, "ladspa_descriptor"));
            for (unsigned long i = 0; fn && i < 4096; ++i) {
                const LADSPA_Descriptor* d = fn(i);
                if (!d) break;
                if (d->Label && label == d->Label) {
                    found.label = label;
                    found.file = file;
                    found.index = i;
                    break;
                }
            }
            dlclose(h);
            if (found.file.empty()) return fail(printable(file, kPathChars) + " has no plugin labelled " + quote(label));
        } else if (matches.empty()) {
            std::string hint = didYouMean(label, labels());
            if (!hint.empty()) hint = " (did you mean 'ladspa:" + nearest(label, labels()) + "'?)";
            return fail("no LADSPA plugin with that label in " + [] {
                       std::string p;
                       for (const auto& d : ladspaPath()) p += (p.empty() ? "" : ":") + d;
                       return p;
                   }() + hint + "; `rackterm processors` lists the installed ones");
        } else if (matches.size() > 1) {
            std::string which;
            for (const Entry* e : matches)
                which += (which.empty() ? "" : ", ") + std::string("ladspa:") + fs::path(e->file).filename().string() + ":" + label;
            return fail("the label is in several files; name one: " + which);
        } else {
            found = *matches.front();
        }
    }
    auto host = std::make_unique<Host>();
    host->reference = reference;
    dlerror();
    host->library = dlopen(found.file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!host->library) return fail("cannot load " + printable(found.file, kPathChars) + ": " + printable(dlerror(), 300));
    auto fn = reinterpret_cast<LADSPA_Descriptor_Function>(dlsym(host->library, "ladspa_descriptor"));
    const LADSPA_Descriptor* d = fn ? fn(found.index) : nullptr;
    if (!d || !d->Label || label != d->Label) return fail(printable(found.file, kPathChars) + " changed since it was scanned; try again");
    if (!d->instantiate || !d->connect_port || !d->run || !d->cleanup)
        return fail("the plugin lacks instantiate, connect_port, run or cleanup");
    host->d = d;
    std::vector<Param> params;
    for (unsigned long p = 0; p < d->PortCount; ++p) {
        const LADSPA_PortDescriptor pd = d->PortDescriptors[p];
        if (LADSPA_IS_PORT_AUDIO(pd)) {
            (LADSPA_IS_PORT_INPUT(pd) ? host->audioIn : host->audioOut).push_back(p);
        } else if (LADSPA_IS_PORT_CONTROL(pd) && LADSPA_IS_PORT_INPUT(pd)) {
            host->paramPorts.push_back(p);
            params.push_back(paramFor(d, p, sampleRateHz));
        } else if (LADSPA_IS_PORT_CONTROL(pd) && LADSPA_IS_PORT_OUTPUT(pd)) {
            host->outputPorts.push_back(p);
            const std::string pname = d->PortNames[p] ? d->PortNames[p] : "port " + std::to_string(p);
            host->outputs.push_back({portId(pname), pname, unitFromName(pname)});
            if (host->latencyOutput < 0 && portId(pname) == "latency")
                host->latencyOutput = static_cast<long>(host->outputPorts.size() - 1);
        }
    }
    const std::string why = adaptPlugin(host->table, host->outputs, host->audioIn.size(), host->audioOut.size(), label,
                                        d->Name ? d->Name : label, "ladspa " + std::to_string(d->UniqueID),
                                        std::move(params),
                                        {&destroyInstance, &resetInstance, &applyValues, &processBlock, &latency});
    if (!why.empty()) return fail(why);
    return Module::fromPlugin(std::move(host), reference, sampleRateHz);
}

ResetState* ladspaResetState(const rackterm_processor_v2& d, rackterm_instance* instance) {
    return d.process == &processBlock && instance ? &cast(instance)->reset : nullptr;
}

bool ladspaControlOutputs(const rackterm_processor_v2& d, rackterm_instance* instance, std::vector<ControlOutput>& out) {
    if (d.process != &processBlock || !instance) return false;
    const LadspaInstance* self = cast(instance);
    listControlOutputs(self->host->outputs, self->outValues.get(), out);
    return true;
}

}  // namespace plugins

}  // namespace rackterm::loader
