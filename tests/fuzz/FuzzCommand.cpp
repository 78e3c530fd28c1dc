// Fuzz the command language: argument splitting, values with units, time
// words, and whole command lines run against a real runtime (the built-in
// modules, offline; undo and redo walk the journal the other commands fill).
// Commands that touch files or the rack's shape (save,
// load, record, add, remove, reload, quit) are left out: they would write
// files or dlopen whatever path the fuzzer names. Every reply is one line.
#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Runtime.hpp>
#include <rackterm/app/Script.hpp>
#include <rackterm/app/Values.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace {

std::unique_ptr<rackterm::app::Runtime> gRuntime;

const rackterm_param_info kInfos[] = {
    {"gain_db", "Gain", "dB", -60.0f, 24.0f, 0.0f, 0u, nullptr},
    {"frequency_hz", "Frequency", "Hz", 20.0f, 20000.0f, 1000.0f, RACKTERM_PARAM_LOG, nullptr},
    {"time_ms", "Time", "ms", 1.0f, 2000.0f, 250.0f, 0u, nullptr},
    {"mix", "Mix", "", 0.0f, 1.0f, 0.3f, 0u, nullptr},
    {"type", "Type", "", 0.0f, 3.0f, 0.0f, RACKTERM_PARAM_INTEGER, "sine|saw|square|triangle"},
    {"on", "On", "", 0.0f, 1.0f, 0.0f, RACKTERM_PARAM_TOGGLE, nullptr},
};

bool allowed(const std::string& word) {
    for (const char* w : {"set", "get", "nudge", "bypass", "list", "status", "help", "wait", "build", "undo", "redo"})
        if (word == w) return true;
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    setenv("RACKTERM_PROCESSOR_PATH", RACKTERM_FUZZ_MODULE_DIR, 1);
    auto s = rackterm::config::parseSession(
        "[[node]]\nid = \"osc\"\nprocessor = \"oscillator\"\n[[node]]\nid = \"eq\"\nprocessor = \"biquad\"\n"
        "[[node]]\nid = \"gain\"\nprocessor = \"gain\"\n[[node]]\nid = \"dly\"\nprocessor = \"delay\"\n",
        "fuzz.toml");
    if (!s) std::abort();
    auto rt = rackterm::app::Runtime::open(s.value(), 48000, 64);
    if (!rt) std::abort();
    gRuntime = std::move(rt.value());
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace rackterm::app;
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    const auto words = splitWords(line);
    for (const auto& info : kInfos) {
        if (auto v = parseValue(info, line); v && (!std::isfinite(v.value()) || v.value() < info.min || v.value() > info.max))
            std::abort();  // a value that parses is in range
        if (auto d = parseDelta(info, line); d && !std::isfinite(d.value())) std::abort();
        (void)formatValue(info, static_cast<float>(size) - 30.0f);
    }
    if (auto t = parseTime(line); t && (!std::isfinite(t.value()) || t.value() < 0)) std::abort();
    if (words.empty() || !allowed(words[0])) return 0;
    CommandContext ctx{*gRuntime, Source::Render};
    ctx.runtime.setOffline(true);
    const Reply r = execute(ctx, line);
    if (r.waiting()) std::abort();  // offline, nothing waits for the audio thread
    if (r.line().find('\n') != std::string::npos || r.line().find('\0') != std::string::npos) std::abort();
    return 0;
}
