// LD_PRELOAD library for live tests: wraps the JACK process callback a
// program registers, and counts allocations, frees and lock calls made
// inside it (on JACK's real-time thread), plus callbacks and the longest
// callback. At exit it writes
//   allocs N frees N locks N callbacks N max_ns N
// to the file named by $RACKTERM_RT_COUNTS.
#include "LibcAllocator.hpp"

#include <dlfcn.h>
#include <jack/jack.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {
thread_local bool tInCallback = false;
std::atomic<long> gAllocs{0}, gFrees{0}, gLocks{0}, gCallbacks{0}, gMaxNs{0};
JackProcessCallback gReal = nullptr;

int wrapped(jack_nframes_t frames, void* arg) {
    const auto start = std::chrono::steady_clock::now();
    tInCallback = true;
    const int r = gReal(frames, arg);
    tInCallback = false;
    const long ns = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
    long prev = gMaxNs.load();
    while (ns > prev && !gMaxNs.compare_exchange_weak(prev, ns)) {
    }
    gCallbacks.fetch_add(1);
    return r;
}

struct Report {
    ~Report() {
        if (const char* path = std::getenv("RACKTERM_RT_COUNTS"))
            if (FILE* f = std::fopen(path, "w")) {
                std::fprintf(f, "allocs %ld frees %ld locks %ld callbacks %ld max_ns %ld\n", gAllocs.load(),
                             gFrees.load(), gLocks.load(), gCallbacks.load(), gMaxNs.load());
                std::fclose(f);
            }
    }
} report;
}  // namespace

extern "C" {

__attribute__((visibility("default"))) int jack_set_process_callback(jack_client_t* c, JackProcessCallback cb, void* arg) {
    using Fn = int (*)(jack_client_t*, JackProcessCallback, void*);
    static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "jack_set_process_callback"));
    gReal = cb;
    return real(c, &wrapped, arg);
}

__attribute__((visibility("default"))) void* malloc(size_t n) {
    if (tInCallback) gAllocs.fetch_add(1);
    return __libc_malloc(n);
}
__attribute__((visibility("default"))) void* calloc(size_t a, size_t b) {
    if (tInCallback) gAllocs.fetch_add(1);
    return __libc_calloc(a, b);
}
__attribute__((visibility("default"))) void* realloc(void* p, size_t n) {
    if (tInCallback) gAllocs.fetch_add(1);
    return __libc_realloc(p, n);
}
__attribute__((visibility("default"))) void free(void* p) {
    if (tInCallback && p) gFrees.fetch_add(1);
    __libc_free(p);
}
__attribute__((visibility("default"))) int pthread_mutex_lock(pthread_mutex_t* m) {
    static std::atomic<int (*)(pthread_mutex_t*)> real{nullptr};
    if (tInCallback) gLocks.fetch_add(1);
    auto f = real.load();
    if (!f) real.store(f = reinterpret_cast<int (*)(pthread_mutex_t*)>(dlsym(RTLD_NEXT, "pthread_mutex_lock")));
    return f(m);
}
__attribute__((visibility("default"))) int pthread_mutex_trylock(pthread_mutex_t* m) {
    static std::atomic<int (*)(pthread_mutex_t*)> real{nullptr};
    if (tInCallback) gLocks.fetch_add(1);
    auto f = real.load();
    if (!f) real.store(f = reinterpret_cast<int (*)(pthread_mutex_t*)>(dlsym(RTLD_NEXT, "pthread_mutex_trylock")));
    return f(m);
}
}
