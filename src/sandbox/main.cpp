// rackterm-sandbox: runs third-party processor code in a process of its own,
// so that a crash or an endless loop in it cannot take rackterm down.
//
//   rackterm-sandbox isolate HOST_PID NODE_ID [PLUGIN]
//
// serves one isolated processor instance for the host (loader/Isolation.hpp):
// the shared memory is fd 3, the module's bytes fd 4 (or, for an LV2 or
// LADSPA plugin, PLUGIN names it: lv2:URI, ladspa:LABEL); it ends with the host.
//
//   rackterm-sandbox trial MODULE RATE BLOCK [ID=VALUE ...]
//
// loads MODULE through the loader (ABI and table checks), creates an
// instance at RATE Hz for blocks of BLOCK frames, sends it the values (by
// parameter id; others keep their defaults), and runs the trial
// (loader/Trial.hpp). Standard output, one line each: "stage NAME N" before
// every block (so the host knows where a crash happened), then "ok MEDIAN
// MAX" (seconds per block) and exit 0, "refused PROBLEM" and exit 1, or
// "error MESSAGE" and exit 2 (usage, a module that does not load).
#include <rackterm/loader/Isolation.hpp>
#include <rackterm/loader/Trial.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>

#if defined(__SANITIZE_ADDRESS__)
#define RACKTERM_SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RACKTERM_SANDBOX_ASAN 1
#endif
#endif
#ifndef RACKTERM_SANDBOX_ASAN
#define RACKTERM_SANDBOX_ASAN 0
#endif
#endif

#if RACKTERM_SANDBOX_ASAN
// In a sanitizer build the processor's fault must still end this process by
// its signal, as it does in a release build: the host names the signal.
extern "C" const char* __asan_default_options() {
    return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_sigill=0:handle_abort=0";
}
#endif

namespace {

int fail(const std::string& message) {
    std::printf("error %s\n", message.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if ((argc == 4 || argc == 5) && std::string(argv[1]) == "isolate")
        return rackterm::loader::runIsolatedChild(3, 4, static_cast<pid_t>(std::atol(argv[2])), argc == 5 ? argv[4] : "");
    if (argc < 5 || std::string(argv[1]) != "trial")
        return fail("usage: rackterm-sandbox trial MODULE RATE BLOCK [ID=VALUE ...] | isolate HOST_PID NODE_ID [PLUGIN]");
    const double rate = std::atof(argv[3]);
    const long block = std::atol(argv[4]);
    if (!(rate >= 1000 && rate <= 1536000) || block < 1 || block > 8192) return fail("RATE or BLOCK out of range");
    std::vector<std::pair<std::string, float>> byId;
    for (int i = 5; i < argc; ++i) {
        const std::string a = argv[i];
        const size_t eq = a.find('=');
        if (eq == std::string::npos) return fail("a value must be ID=VALUE, not " + a);
        byId.emplace_back(a.substr(0, eq), std::strtof(a.c_str() + eq + 1, nullptr));
    }
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040);  // flush denormals to zero, as the audio thread does
#endif
    const auto trial = rackterm::loader::trialModule(argv[2], rate, static_cast<uint32_t>(block), byId,
                                                     [](const char* stage, uint32_t n) {
                                                         std::printf("stage %s %u\n", stage, n);
                                                         std::fflush(stdout);
                                                     });
    if (!trial) return fail(trial.error());
    const auto& report = trial.value();
    if (!report.problem.empty()) {
        std::printf("refused %s\n", report.problem.c_str());
        return 1;
    }
    std::printf("ok %.9f %.9f\n", report.medianBlockSeconds, report.maxBlockSeconds);
    return 0;
}
