// Recording the master output to a sound file: the audio thread copies each
// block into an SPSC ring of fixed chunks (never blocking: a full ring drops
// the block and counts it), a disk thread of the recorder's own drains the
// ring into libsndfile. The file is written as a temporary file beside FILE
// (files::AtomicFile, `.FILE.tmp-PID`) and renamed onto FILE on stop; a FILE
// that exists and is not a regular file is refused at start. Start and stop
// are [control]; push is [audio].
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/engine/rt/SpscRing.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace rackterm::engine {

class Recorder {
public:
    /// Frames per ring chunk; a block longer than this fills several.
    static constexpr uint32_t kChunkFrames = 512;
    struct Chunk {
        uint32_t frames;
        float samples[kChunkFrames * 2];  // interleaved stereo
    };

    /// [control] Open `path` for stereo at `sampleRateHz` (format from the
    /// extension: WAV/AIFF/W64/CAF 24-bit, FLAC 24-bit, Ogg Vorbis) and start
    /// the disk thread. The ring holds about 5 s. Errors: unknown extension,
    /// folder missing or not writable, FILE exists and is not a regular file.
    static Result<std::unique_ptr<Recorder>> start(const std::string& path, double sampleRateHz);
    /// [control] Stops (see stop()) if still running.
    ~Recorder();

    /// [audio] Copy 2 x frames (non-interleaved) into the ring; no allocation, no lock.
    void push(const float* const* channels, uint32_t frames) noexcept;

    /// [control] Drain the ring, close the file and rename it into place.
    /// The audio thread must no longer call push(). Returns the frames written.
    Result<uint64_t> stop();

    const std::string& path() const noexcept { return path_; }
    /// [any] Blocks lost to a full ring (the disk could not keep up).
    uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    /// [any] Frames written to the file so far.
    uint64_t written() const noexcept { return written_.load(std::memory_order_relaxed); }

private:
    Recorder() = default;
    void diskLoop();
    struct File;
    std::unique_ptr<File> file_;
    std::string path_;
    rt::SpscRing<Chunk> ring_{480};
    std::atomic<bool> running_{false};
    std::atomic<uint64_t> dropped_{0}, written_{0};
    std::thread disk_;
    bool stopped_ = false;
};

}  // namespace rackterm::engine
