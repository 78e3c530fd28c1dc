// What the LV2 and LADSPA adapters share, and the public side of Plugins.hpp.
#include "PluginSupport.hpp"

#include <rackterm/loader/Isolation.hpp>

#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <stdlib.h>

namespace rackterm::loader {

namespace plugins {

std::atomic<bool> gSynchronousWork{false};
std::atomic<bool> gResetInPlace{false};

namespace {
std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}
}  // namespace

std::string portId(std::string_view name) {
    std::string id;
    bool gap = false;
    for (const char ch : name) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) && c < 0x80) {
            if (gap && !id.empty()) id += '_';
            gap = false;
            id += static_cast<char>(std::tolower(c));
        } else {
            gap = true;
        }
    }
    return id.empty() ? std::string("param") : id;
}

std::string choiceName(std::string_view label) {
    const std::string id = portId(label);
    return id == "param" && label.find("param") == std::string_view::npos ? std::string() : id;
}

void makeUnique(std::vector<std::string>& ids) {
    for (size_t i = 0; i < ids.size(); ++i) {
        const std::string base = ids[i];
        for (int n = 2;; ++n) {
            bool taken = false;
            for (size_t j = 0; j < i && !taken; ++j) taken = ids[j] == ids[i];
            if (!taken) break;
            ids[i] = base + "_" + std::to_string(n);
        }
    }
}

std::string unitFromName(std::string_view name) {
    const size_t open = name.rfind('(');
    const size_t close = name.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) return {};
    const std::string inner = lower(name.substr(open + 1, close - open - 1));
    if (inner == "hz") return "Hz";
    if (inner == "khz") return "kHz";
    if (inner == "db" || inner == "dbfs") return "dB";
    if (inner == "ms") return "ms";
    if (inner == "s" || inner == "seconds" || inner == "sec") return "s";
    if (inner == "%" || inner == "percent") return "%";
    return {};
}

void buildTable(Table& table, std::string_view id, const std::string& name, const std::string& version,
                uint32_t inputs, uint32_t outputs, std::vector<Param> params) {
    std::vector<std::string> ids;
    for (const Param& p : params) ids.push_back(p.id);
    makeUnique(ids);
    table.params.clear();
    for (size_t i = 0; i < params.size(); ++i) {
        Param& p = params[i];
        if (!(p.min <= p.max)) std::swap(p.min, p.max);
        p.def = std::clamp(p.def, p.min, p.max);
        if (p.min <= 0.0f) p.flags &= ~RACKTERM_PARAM_LOG;
        rackterm_param_info info{};
        info.id = table.keep(ids[i]);
        info.name = table.keep(p.name);
        info.unit = table.keep(p.unit);
        info.min = p.min;
        info.max = p.max;
        info.default_value = p.def;
        info.flags = p.flags;
        info.choices = p.choices.empty() ? nullptr : table.keep(p.choices);
        table.params.push_back(info);
    }
    rackterm_processor_v2& d = table.descriptor;
    d.abi_version = RACKTERM_ABI_VERSION;
    d.struct_size = sizeof(rackterm_processor_v2);
    d.id = table.keep(portId(id));
    d.name = table.keep(name);
    d.version = table.keep(version);
    d.input_channels = inputs;
    d.output_channels = outputs;
    d.params = table.params.empty() ? nullptr : table.params.data();
    d.param_count = static_cast<uint32_t>(table.params.size());
}

namespace {
rackterm_instance* createUnused(double, uint32_t) { return nullptr; }
const char* noError() { return ""; }
}  // namespace

std::string adaptPlugin(Table& table, std::vector<Outputs::Port>& outputs, size_t audioIn, size_t audioOut,
                        std::string_view id, const std::string& name, const std::string& version,
                        std::vector<Param> params, const AdapterEntries& entries) {
    if (audioOut == 0) return "has no audio output; rackterm runs plugins that make or change sound";
    if (audioIn > kMaxProcessorChannels || audioOut > kMaxProcessorChannels)
        return "has " + std::to_string(audioIn) + " audio inputs and " + std::to_string(audioOut) +
               " outputs; a node has 1 to " + std::to_string(kMaxProcessorChannels) + " a side";
    std::vector<std::string> ids;
    for (const auto& o : outputs) ids.push_back(o.id);
    makeUnique(ids);
    for (size_t i = 0; i < ids.size(); ++i) outputs[i].id = ids[i];
    buildTable(table, id, name, version, std::max<uint32_t>(1, static_cast<uint32_t>(audioIn)),
               static_cast<uint32_t>(audioOut), std::move(params));
    rackterm_processor_v2& desc = table.descriptor;
    desc.create = &createUnused;
    desc.destroy = entries.destroy;
    desc.reset = entries.reset;
    desc.apply_plain_values = entries.applyPlainValues;
    desc.process = entries.process;
    desc.last_error = &noError;
    desc.latency_frames = entries.latencyFrames;
    if (std::string bad = validateDescriptor(desc); !bad.empty()) return "cannot be adapted: " + bad;
    return {};
}

void listControlOutputs(const std::vector<Outputs::Port>& ports, const std::atomic<float>* values,
                        std::vector<ControlOutput>& out) {
    for (size_t i = 0; i < ports.size(); ++i)
        out.push_back({ports[i].id, ports[i].name, ports[i].unit, values[i].load(std::memory_order_relaxed)});
}

ByteRing::ByteRing(uint32_t capacity) {
    uint32_t size = 64;
    while (size < capacity) size <<= 1;
    buffer_.assign(size, 0);
    mask_ = size - 1;
}

void ByteRing::copyIn(uint32_t at, const void* data, uint32_t size) noexcept {
    const auto* bytes = static_cast<const unsigned char*>(data);
    const uint32_t start = at & mask_;
    const uint32_t first = std::min(size, static_cast<uint32_t>(buffer_.size()) - start);
    std::memcpy(buffer_.data() + start, bytes, first);
    std::memcpy(buffer_.data(), bytes + first, size - first);
}

void ByteRing::copyOut(uint32_t at, void* out, uint32_t size) const noexcept {
    auto* bytes = static_cast<unsigned char*>(out);
    const uint32_t start = at & mask_;
    const uint32_t first = std::min(size, static_cast<uint32_t>(buffer_.size()) - start);
    std::memcpy(bytes, buffer_.data() + start, first);
    std::memcpy(bytes + first, buffer_.data(), size - first);
}

bool ByteRing::write(const void* data, uint32_t size) noexcept {
    const uint32_t head = head_.load(std::memory_order_relaxed);
    const uint32_t tail = tail_.load(std::memory_order_acquire);
    const uint32_t used = head - tail;
    if (size > buffer_.size() || static_cast<uint64_t>(used) + sizeof size + size > buffer_.size()) return false;
    copyIn(head, &size, sizeof size);
    if (size) copyIn(head + sizeof size, data, size);  // an empty message may come with no data at all
    head_.store(head + static_cast<uint32_t>(sizeof size) + size, std::memory_order_release);
    return true;
}

bool ByteRing::peek(uint32_t* size) const noexcept {
    const uint32_t tail = tail_.load(std::memory_order_relaxed);
    if (head_.load(std::memory_order_acquire) == tail) return false;
    copyOut(tail, size, sizeof *size);
    return true;
}

bool ByteRing::read(void* out, uint32_t capacity) noexcept {
    const uint32_t tail = tail_.load(std::memory_order_relaxed);
    if (head_.load(std::memory_order_acquire) == tail) return false;
    uint32_t size = 0;
    copyOut(tail, &size, sizeof size);
    const bool fits = size <= capacity;
    if (fits && size) copyOut(tail + sizeof size, out, size);
    tail_.store(tail + static_cast<uint32_t>(sizeof size) + size, std::memory_order_release);
    return fits;
}

namespace {

/// The plugin log: a bounded multi-producer ring of fixed slots (Vyukov's
/// bounded queue: a sequence number per slot, one CAS to claim it).
constexpr size_t kLogSlots = 256;
constexpr size_t kLogLine = 256;
struct LogSlot {
    std::atomic<size_t> sequence{0};
    char text[kLogLine];
};
struct LogRing {
    LogRing() {
        for (size_t i = 0; i < kLogSlots; ++i) slots[i].sequence.store(i, std::memory_order_relaxed);
    }
    LogSlot slots[kLogSlots];
    alignas(64) std::atomic<size_t> enqueue{0};
    alignas(64) size_t dequeue = 0;  ///< the control thread's, under takeMutex
    std::atomic<uint64_t> dropped{0};
    std::mutex takeMutex;  ///< control side only: two takers take in turn
};
LogRing& logRing() {
    static LogRing ring;
    return ring;
}

}  // namespace

void logLine(const char* plugin, const char* format, va_list args) noexcept {
    LogRing& r = logRing();
    size_t pos = r.enqueue.load(std::memory_order_relaxed);
    // A bounded number of tries: a writer that keeps losing the race drops its line.
    for (int attempt = 0; attempt < 16; ++attempt) {
        LogSlot& slot = r.slots[pos % kLogSlots];
        const size_t seq = slot.sequence.load(std::memory_order_acquire);
        const auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
        if (diff == 0) {
            if (r.enqueue.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
                int n = std::snprintf(slot.text, kLogLine, "%s: ", plugin);
                if (n < 0 || static_cast<size_t>(n) >= kLogLine) n = 0;
                std::vsnprintf(slot.text + n, kLogLine - static_cast<size_t>(n), format, args);
                slot.sequence.store(pos + 1, std::memory_order_release);
                return;
            }
        } else if (diff < 0) {
            break;  // full
        } else {
            pos = r.enqueue.load(std::memory_order_relaxed);
        }
    }
    r.dropped.fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::string> takeLog() {
    LogRing& r = logRing();
    std::lock_guard<std::mutex> lock(r.takeMutex);
    std::vector<std::string> out;
    for (;;) {
        LogSlot& slot = r.slots[r.dequeue % kLogSlots];
        if (slot.sequence.load(std::memory_order_acquire) != r.dequeue + 1) break;
        std::string line = slot.text;
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
        out.push_back(printable(line, kLogLine));
        slot.sequence.store(r.dequeue + kLogSlots, std::memory_order_release);
        ++r.dequeue;
    }
    if (const uint64_t lost = r.dropped.exchange(0, std::memory_order_relaxed))
        out.push_back("plugins logged " + std::to_string(lost) + " more lines than the log ring holds; they were dropped");
    return out;
}

std::string multiarch() {
#ifdef RACKTERM_MULTIARCH
    return RACKTERM_MULTIARCH;
#else
    return {};
#endif
}

}  // namespace plugins

bool isPluginReference(std::string_view name) noexcept {
    return name.rfind("lv2:", 0) == 0 || name.rfind("ladspa:", 0) == 0;
}

Result<std::shared_ptr<Module>> loadPlugin(const std::string& reference, double sampleRateHz) {
    if (reference.rfind("lv2:", 0) == 0) return plugins::loadLv2(reference.substr(4), sampleRateHz);
    if (reference.rfind("ladspa:", 0) == 0) return plugins::loadLadspa(reference.substr(7), sampleRateHz);
    return Error{quote(reference) + " is not a plugin name; write lv2:URI or ladspa:LABEL"};
}

std::vector<PluginInfo> installedPlugins() {
    std::vector<PluginInfo> all = plugins::lv2Plugins();
    std::vector<PluginInfo> ladspa = plugins::ladspaPlugins();
    all.insert(all.end(), ladspa.begin(), ladspa.end());
    return all;
}

void rescanPlugins() {
    plugins::forgetLv2();
    plugins::forgetLadspa();
}

std::vector<ControlOutput> controlOutputs(const Instance& instance) {
    std::vector<ControlOutput> out;
    if (instance.isolated()) return out;
    if (!plugins::lv2ControlOutputs(instance.descriptor(), instance.get(), out))
        plugins::ladspaControlOutputs(instance.descriptor(), instance.get(), out);
    return out;
}

std::vector<std::string> takePluginLog() { return plugins::takeLog(); }

namespace {
plugins::ResetState* resetState(const Instance& instance) {
    if (instance.isolated()) return nullptr;
    if (auto* r = plugins::lv2ResetState(instance.descriptor(), instance.get())) return r;
    return plugins::ladspaResetState(instance.descriptor(), instance.get());
}
}  // namespace

const std::atomic<bool>* faultFlag(const Instance& instance) {
    if (instance.isolated()) return &instance.isolated()->fault();
    auto* r = resetState(instance);
    return r ? &r->fault : nullptr;
}

bool takePluginRestartRequest(const Instance& instance) {
    auto* r = resetState(instance);
    return r && r->restart.exchange(false, std::memory_order_acq_rel);
}

void resetPluginsInPlace(bool inPlace) noexcept { plugins::gResetInPlace.store(inPlace, std::memory_order_relaxed); }

bool hasPluginState(const Instance& instance) {
    return !instance.isolated() && plugins::isLv2Instance(instance.descriptor()) && plugins::lv2HasState(instance.get());
}

Result<void> savePluginState(const Instance& instance, const std::string& dir) {
    if (!hasPluginState(instance)) return Error{"this node's processor keeps no state of its own"};
    return plugins::lv2SaveState(instance.get(), dir);
}

Result<void> restorePluginState(const Instance& instance, const std::string& dir) {
    if (!hasPluginState(instance)) return Error{"this node's processor keeps no state of its own"};
    return plugins::lv2RestoreState(instance.get(), dir);
}

Result<void> copyPluginState(const Instance& from, const Instance& to) {
    if (!hasPluginState(from) || !hasPluginState(to) || from.module()->path() != to.module()->path())
        return Error{"state is carried only between instances of the same plugin"};
    return plugins::lv2CopyState(from.get(), to.get());
}

bool sendMidi(const Instance& instance, const uint8_t* bytes, uint32_t size) {
    if (instance.isolated() || size == 0 || size > 3) return false;
    return plugins::lv2SendMidi(instance.descriptor(), instance.get(), bytes, size);
}

void setPluginWorkSynchronous(bool synchronous) noexcept {
    plugins::gSynchronousWork.store(synchronous, std::memory_order_relaxed);
}

}  // namespace rackterm::loader
