// rackterm C++ processor SDK: turns a C++ class into a rackterm_processor_v2.
//
// A processor class T provides:
//   static constexpr const char* kId, kName, kVersion;
//   static constexpr std::array<rackterm_param_info, N> kParams;
//   T(double sampleRateHz, uint32_t maxBlockFrames);      // [control] may throw
//   void reset() noexcept;                                 // [audio|control]
//   void process(const float* const* in, float* const* out,
//                uint32_t frames, const float* params) noexcept;   // [audio]
// `params` is the instance's parameter cache: N plain values in table order,
// already clamped to [min, max]. The class smooths changes itself.
// Optionally:
//   static constexpr uint32_t kInputs = 1, kOutputs = 1;   // channels, 1..8 (default 2 each)
//   uint32_t latencyFrames() const noexcept;               // [control] output lag, frames
//   int activate();                       // [control] before the first block; 0 = ok,
//                                         // else (or a throw) the node stays out of the rack
//   void deactivate(uint32_t reason);     // [control] after the last block; RACKTERM_DEACTIVATE_*
// A class without activate()/deactivate() leaves those entries NULL.
// A class with kInputs = kOutputs = 1 runs dual mono on a stereo connection
// (the host makes one instance per channel).
//
// The wrapper keeps that cache per instance (apply_plain_values fills it,
// process reads it), catches every exception at the ABI edge, and reports the
// message of a failed create() through last_error(). Input and output are
// non-interleaved: kInputs x frames in, kOutputs x frames out.
#pragma once

#include <rackterm/processor.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#if defined(__GNUC__)
#define RACKTERM_EXPORT extern "C" __attribute__((visibility("default")))
#else
#define RACKTERM_EXPORT extern "C"
#endif

namespace rackterm::sdk {

/// Thread-local text of the last create() failure, returned by last_error().
/// A plain array: a thread_local with a destructor would pin the module in
/// memory (glibc keeps a DSO loaded while its TLS destructors are pending).
inline char* lastErrorText() noexcept {
    static thread_local char text[512];
    return text;
}

/// [control] Set the last-error text (truncated to fit).
inline void setLastError(const char* a, const char* b = "") noexcept {
    std::snprintf(lastErrorText(), 512, "%s%s", a, b);
}

/// [any] Clamp `v` into the range of `info`; integer and toggle parameters are rounded.
inline float clampToParam(const rackterm_param_info& info, float v) noexcept {
    if (!(v == v)) return info.default_value;  // NaN -> default
    v = std::clamp(v, info.min, info.max);
    if (info.flags & (RACKTERM_PARAM_INTEGER | RACKTERM_PARAM_TOGGLE)) v = static_cast<float>(static_cast<int>(v + (v >= 0 ? 0.5f : -0.5f)));
    return v;
}

/// One instance: the user's object plus its parameter cache.
template <class T>
struct Instance {
    static constexpr size_t kCount = T::kParams.size();
    std::array<float, kCount == 0 ? 1 : kCount> params{};
    T processor;

    Instance(double sr, uint32_t maxFrames) : processor(sr, maxFrames) {
        for (size_t i = 0; i < kCount; ++i) params[i] = T::kParams[i].default_value;
    }
};

/// The C entry points for class T; every one is noexcept and catches at the edge.
template <class T>
struct Glue {
    using I = Instance<T>;
    static I* self(rackterm_instance* p) noexcept { return reinterpret_cast<I*>(p); }

    static rackterm_instance* create(double sr, uint32_t maxFrames) noexcept {
        setLastError("");
        try {
            if (!(sr > 0.0) || maxFrames == 0) {
                setLastError("create() needs a positive sample rate and block size");
                return nullptr;
            }
            return reinterpret_cast<rackterm_instance*>(new I(sr, maxFrames));
        } catch (const std::exception& e) {
            setLastError("create() threw: ", e.what());
        } catch (...) {
            setLastError("create() threw an unknown exception");
        }
        return nullptr;
    }
    static void destroy(rackterm_instance* p) noexcept {
        try { delete self(p); } catch (...) {}
    }
    static void reset(rackterm_instance* p) noexcept {
        if (p) self(p)->processor.reset();
    }
    static void apply(rackterm_instance* p, const float* values, size_t len) noexcept {
        if (!p || !values) return;
        I* in = self(p);
        const size_t n = std::min(len, I::kCount);
        for (size_t i = 0; i < n; ++i) in->params[i] = clampToParam(T::kParams[i], values[i]);
    }
    static void process(rackterm_instance* p, const float* const* in, float* const* out,
                        uint32_t frames) noexcept {
        if (!p) return;
        I* inst = self(p);
        inst->processor.process(in, out, frames, inst->params.data());
    }
    static const char* lastError() noexcept { return lastErrorText(); }
    static uint32_t latency(rackterm_instance* p) noexcept {
        if constexpr (requires(const T& t) { t.latencyFrames(); }) {
            return p ? self(p)->processor.latencyFrames() : 0u;
        } else {
            return 0u;
        }
    }
    static int32_t activate(rackterm_instance* p) noexcept {
        setLastError("");
        if constexpr (requires(T& t) { t.activate(); }) {
            if (!p) return -1;
            try {
                const int32_t r = static_cast<int32_t>(self(p)->processor.activate());
                if (r != 0 && lastErrorText()[0] == '\0') setLastError("activate() returned an error");
                return r;
            } catch (const std::exception& e) {
                setLastError("activate() threw: ", e.what());
            } catch (...) {
                setLastError("activate() threw an unknown exception");
            }
            return -1;
        } else {
            return 0;
        }
    }
    static void deactivate(rackterm_instance* p, uint32_t reason) noexcept {
        if constexpr (requires(T& t) { t.deactivate(uint32_t{}); }) {
            if (!p) return;
            try { self(p)->processor.deactivate(reason); } catch (...) {}
        } else {
            (void)p;
            (void)reason;
        }
    }
};

/// The lifecycle hooks of class T, or NULL when it has none (the host then skips them).
template <class T>
constexpr int32_t (*activateFor() noexcept)(rackterm_instance*) {
    if constexpr (requires(T& t) { t.activate(); }) return &Glue<T>::activate;
    else return nullptr;
}
template <class T>
constexpr void (*deactivateFor() noexcept)(rackterm_instance*, uint32_t) {
    if constexpr (requires(T& t) { t.deactivate(uint32_t{}); }) return &Glue<T>::deactivate;
    else return nullptr;
}

/// Channels of class T's input / output: T::kInputs / T::kOutputs, else 2.
template <class T>
constexpr uint32_t inputChannels() noexcept {
    if constexpr (requires { T::kInputs; }) return T::kInputs;
    else return 2u;
}
template <class T>
constexpr uint32_t outputChannels() noexcept {
    if constexpr (requires { T::kOutputs; }) return T::kOutputs;
    else return 2u;
}

/// The static descriptor for class T.
template <class T>
const rackterm_processor_v2* descriptorFor() noexcept {
    static const rackterm_processor_v2 d = {
        RACKTERM_ABI_VERSION,
        static_cast<uint32_t>(sizeof(rackterm_processor_v2)),
        T::kId,
        T::kName,
        T::kVersion,
        inputChannels<T>(),
        outputChannels<T>(),
        T::kParams.size() ? T::kParams.data() : nullptr,
        static_cast<uint32_t>(T::kParams.size()),
        &Glue<T>::create,
        &Glue<T>::destroy,
        &Glue<T>::reset,
        &Glue<T>::apply,
        &Glue<T>::process,
        &Glue<T>::lastError,
        &Glue<T>::latency,
        activateFor<T>(),
        deactivateFor<T>(),
    };
    return &d;
}

}  // namespace rackterm::sdk

/// Export class T as this shared object's processor (the one entry symbol).
#define RACKTERM_PROCESSOR(T)                                                       \
    RACKTERM_EXPORT const rackterm_processor_v2* rackterm_processor_entry(void) {   \
        return ::rackterm::sdk::descriptorFor<T>();                                 \
    }
