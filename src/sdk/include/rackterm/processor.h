/*
 * rackterm processor ABI, version 2.
 *
 * Plain C99. A processor is a shared object that exports exactly one symbol,
 * rackterm_processor_entry(), returning a pointer to a static, immutable
 * rackterm_processor_v2 descriptor. Nothing here allocates, and nothing may
 * throw or longjmp across any function in this file.
 *
 * Threads: [control] the host's control thread, [audio] the host's audio
 * thread (JACK process callback or offline render loop). A host never calls
 * two functions on the same instance at the same time.
 *
 * Audio buffers are non-interleaved 32-bit float, channels x frames:
 * inputs[c][f] and outputs[c][f] with 0 <= c < channel count and
 * 0 <= f < frames. Sample values are linear, full scale = 1.0 (0 dBFS).
 */
#ifndef RACKTERM_PROCESSOR_H
#define RACKTERM_PROCESSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI version this header describes; abi_version must equal it. */
#define RACKTERM_ABI_VERSION 2u

/** Name of the one symbol a processor shared object exports. */
#define RACKTERM_ENTRY_SYMBOL "rackterm_processor_entry"

/** Parameter flags (bit set in rackterm_param_info.flags). */
#define RACKTERM_PARAM_LOG 1u     /**< displayed and stepped on a log scale; min > 0 */
#define RACKTERM_PARAM_INTEGER 2u /**< only whole numbers (enums such as waveform) */
#define RACKTERM_PARAM_TOGGLE 4u  /**< 0 or 1 */

/**
 * One parameter. Values are plain values (in the unit named by `unit`,
 * e.g. "dB", "Hz", "ms", "" for a ratio), never normalised.
 * Invariant checked by the host: non-empty unique id of [a-z0-9_],
 * finite min <= default_value <= max.
 */
typedef struct rackterm_param_info {
    const char* id;      /**< stable id used by scripts: "gain_db" */
    const char* name;    /**< human name: "Gain" */
    const char* unit;    /**< "dB", "Hz", "ms", "" */
    float min;           /**< lowest plain value */
    float max;           /**< highest plain value */
    float default_value; /**< plain value after create() */
    uint32_t flags;      /**< RACKTERM_PARAM_* bits */
    const char* choices; /**< for INTEGER enums: "sine|saw|square|triangle", else NULL */
} rackterm_param_info;

/** An opaque processor instance. */
typedef struct rackterm_instance rackterm_instance;

/**
 * The processor descriptor. abi_version and struct_size come first so a host
 * can refuse a foreign build before it reads anything else.
 */
typedef struct rackterm_processor_v2 {
    uint32_t abi_version; /**< == RACKTERM_ABI_VERSION */
    uint32_t struct_size; /**< sizeof(rackterm_processor_v2) of the build */

    const char* id;      /**< "gain" */
    const char* name;    /**< "Gain" */
    const char* version; /**< "1.0.0" */

    /**
     * Channels of `inputs` and `outputs` in process(), 1 to 8 each. A
     * processor with 1 input and 1 output placed on a connection of k
     * channels runs as k instances sharing its parameter values (dual mono
     * for k = 2); the host creates them.
     */
    uint32_t input_channels;
    uint32_t output_channels;

    const rackterm_param_info* params; /**< table of param_count entries */
    uint32_t param_count;

    /**
     * [control] Create an instance at `sample_rate` Hz that will be asked to
     * process at most `max_block_frames` frames per call. All memory the
     * instance needs is allocated here. Returns NULL on failure; then
     * last_error() describes it. Parameters start at their defaults.
     */
    rackterm_instance* (*create)(double sample_rate, uint32_t max_block_frames);

    /** [control] Free an instance made by create(). NULL is ignored. */
    void (*destroy)(rackterm_instance* instance);

    /** [audio or control] Clear all signal state (delay lines, filters). No allocation. */
    void (*reset)(rackterm_instance* instance);

    /**
     * [audio or control] Set every parameter: `values` holds `len` plain
     * values, dense in table order (len == param_count). Values outside
     * [min, max] are clamped. Changes are smoothed inside process().
     * No allocation, no lock, no system call.
     */
    void (*apply_plain_values)(rackterm_instance* instance, const float* values, size_t len);

    /**
     * [audio] Process `frames` (<= max_block_frames) frames from `inputs`
     * (input_channels pointers) to `outputs` (output_channels pointers).
     * Buffers do not alias. No allocation, no lock, no system call.
     */
    void (*process)(rackterm_instance* instance, const float* const* inputs, float* const* outputs,
                    uint32_t frames);

    /**
     * [control] A one-line description of the last failure of create() on
     * the calling thread, or "" when none. Never NULL.
     */
    const char* (*last_error)(void);

    /*
     * Optional entries. A build made before an entry existed has a smaller
     * struct_size; the host reads an entry only when struct_size covers it
     * (RACKTERM_HAS_ENTRY), so such builds keep loading.
     */

    /**
     * [control] Frames by which this instance's output lags its input (a
     * look-ahead limiter, a linear-phase filter, an FFT block), at the
     * current parameter values; 0 when none. The host reads it when it
     * builds its graph and delays the other paths into every sum to match
     * (plugin delay compensation). May be NULL: no latency. Optional; after
     * last_error.
     */
    uint32_t (*latency_frames)(rackterm_instance* instance);

    /**
     * [control] Called once after create() and before the instance's first
     * process(), when it is about to enter the rack (package lifecycle:
     * loaded -> active). Returns 0 on success; any other value keeps the
     * node out of the rack, and last_error() (on the same thread) says why.
     * It must return within 2 seconds: the host runs it on a helper thread,
     * and a hook still running then is reported and its node treated as
     * failed (the instance is never used or destroyed after that).
     * May be NULL: nothing to do. Optional; after latency_frames.
     */
    int32_t (*activate)(rackterm_instance* instance);

    /**
     * [control] Called once after the instance's last process(), when it has
     * left the rack (active -> unloaded), before destroy(). `reason` is one
     * of RACKTERM_DEACTIVATE_*. The same 2-second rule as activate() applies.
     * May be NULL. Optional; after activate.
     */
    void (*deactivate)(rackterm_instance* instance, uint32_t reason);
} rackterm_processor_v2;

/** Why deactivate() is called. */
#define RACKTERM_DEACTIVATE_REMOVE 1u    /**< the node was removed (`remove`, `load` of another session, undo of `add`) */
#define RACKTERM_DEACTIVATE_RELOAD 2u    /**< a new build or version replaced this instance (`reload`, hot reload, upgrade, rate change) */
#define RACKTERM_DEACTIVATE_SHUTDOWN 3u  /**< rackterm is quitting */
#define RACKTERM_DEACTIVATE_UNINSTALL 4u /**< its package is being uninstalled (`rackterm uninstall --force`) */

/** Size of the ABI v2 descriptor without any optional entry: the smallest
 * struct_size a host accepts. */
#define RACKTERM_V2_BASE_SIZE (offsetof(rackterm_processor_v2, last_error) + sizeof(void*))

/** True when descriptor `d` (its struct_size) includes optional entry `field`. */
#define RACKTERM_HAS_ENTRY(d, field) \
    ((d)->struct_size >= offsetof(rackterm_processor_v2, field) + sizeof((d)->field))

/** Signature of the exported entry point. */
typedef const rackterm_processor_v2* (*rackterm_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* RACKTERM_PROCESSOR_H */
