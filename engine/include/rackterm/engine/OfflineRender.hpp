// Offline render: sound file in -> rack -> sound file out through libsndfile,
// with the same Engine and Rack code as live. Deterministic (same input, same
// session, same block size: same output bits) and faster than real time.
//
// All functions are [control]; the render loop plays the audio thread's part
// on the calling thread.
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/engine/rt/Engine.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rackterm::engine {

struct RenderStats {
    uint64_t frames = 0;        ///< frames written
    double sampleRate = 0;      ///< Hz
    double seconds = 0;         ///< wall-clock time of the render loop
};

/// An open render job: input checked and output format chosen, nothing written yet.
class OfflineRender {
public:
    /// Open `inPath` (any format libsndfile reads) and plan `outPath`. The
    /// output container follows outPath's extension (wav, flac, ogg/oga, aiff,
    /// au, caf, w64, rf64, ...); its sample format is the input's when the
    /// container takes it, else 24-bit PCM (Vorbis for Ogg). The rack's
    /// graph has `inputs` and `outputs` channels: the output file has
    /// `outputs` channels; input channel c feeds graph input c (a mono file
    /// feeds inputs 1 and 2; inputs beyond the file's channels are silent;
    /// channels beyond `inputs` are left out and notes() says so). When `sampleRateHz` > 0 and differs
    /// from the input's rate, the input is converted with libsamplerate
    /// first. The output's temporary file is created here (AtomicFile), so
    /// every check runs before any audio is written. Errors (one line): the
    /// input is missing, not a regular file (a FIFO is refused, never
    /// opened) or not a sound file; unknown extension; the output is the
    /// input (also through a link); the output exists and is not a regular
    /// file; output folder missing or not writable.
    static Result<std::unique_ptr<OfflineRender>> open(const std::string& inPath, const std::string& outPath,
                                                       double sampleRateHz, uint32_t inputs = 2, uint32_t outputs = 2);
    ~OfflineRender();

    /// The rate the rack must run at, Hz.
    double sampleRate() const noexcept { return sampleRate_; }
    /// Input length in frames at sampleRate().
    uint64_t frames() const noexcept { return frames_; }
    /// Warnings about the input, one line each (e.g. channels left out).
    const std::vector<std::string>& notes() const noexcept { return notes_; }

    /// Called before each block with its first frame; applies what is due
    /// there and returns the frame of the next scheduled change (UINT64_MAX
    /// for none). The render ends a block at that frame, so scripted changes
    /// land on their exact frame.
    using BlockHook = std::function<uint64_t(uint64_t framePosition)>;
    /// Progress report, fraction 0..1.
    using Progress = std::function<void(double fraction)>;

    /// Run the whole file through `engine` (made with the `inputs` and
    /// `outputs` given to open()) in blocks of `blockFrames`. The
    /// output is written to a temporary file beside outPath and renamed onto
    /// it only when everything succeeded; on failure no output is left.
    Result<RenderStats> run(Engine& engine, uint32_t blockFrames, const BlockHook& hook = {},
                            const Progress& progress = {});

private:
    OfflineRender() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
    double sampleRate_ = 0;
    uint64_t frames_ = 0;
    std::vector<std::string> notes_;
};

/// [any] The libsndfile major format for a file name's extension, or 0.
int majorFormatForPath(const std::string& path);

}  // namespace rackterm::engine
