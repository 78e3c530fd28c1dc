#include <rackterm/engine/Recorder.hpp>

#include <rackterm/engine/OfflineRender.hpp>

#include <sndfile.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace rackterm::engine {

namespace fs = std::filesystem;

struct Recorder::File {
    SNDFILE* sf = nullptr;
    ~File() {
        if (sf) sf_close(sf);
    }
};

Result<std::unique_ptr<Recorder>> Recorder::start(const std::string& path, double sampleRateHz) {
    const int major = majorFormatForPath(path);
    if (major == 0) return Error{path + ": unknown format; end the name in .wav, .flac, .ogg, .aiff, .caf or .w64"};
    const fs::path dir = fs::absolute(path).parent_path();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return Error{path + ": the folder " + dir.string() + " does not exist"};
    std::unique_ptr<Recorder> r(new Recorder);
    r->path_ = path;
    r->partPath_ = (dir / ("." + fs::path(path).filename().string() + ".part")).string();
    SF_INFO info{};
    info.samplerate = static_cast<int>(sampleRateHz);
    info.channels = 2;
    info.format = major | (major == SF_FORMAT_OGG ? SF_FORMAT_VORBIS : SF_FORMAT_PCM_24);
    r->file_ = std::make_unique<File>();
    r->file_->sf = sf_open(r->partPath_.c_str(), SFM_WRITE, &info);
    if (!r->file_->sf) return Error{path + ": cannot write (" + std::string(sf_strerror(nullptr)) + ")"};
    sf_command(r->file_->sf, SFC_SET_CLIPPING, nullptr, SF_TRUE);
    r->running_.store(true);
    r->disk_ = std::thread([p = r.get()] { p->diskLoop(); });
    return r;
}

Recorder::~Recorder() {
    if (!stopped_) (void)stop();
}

void Recorder::push(const float* const* ch, uint32_t frames) noexcept {
    for (uint32_t done = 0; done < frames;) {
        Chunk* c = ring_.reserve();
        if (!c) {
            dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        const uint32_t n = std::min(kChunkFrames, frames - done);
        for (uint32_t i = 0; i < n; ++i) {
            c->samples[2 * i] = ch[0][done + i];
            c->samples[2 * i + 1] = ch[1][done + i];
        }
        c->frames = n;
        ring_.publish();
        done += n;
    }
}

void Recorder::diskLoop() {
    Chunk c;
    while (true) {
        bool any = false;
        while (ring_.pop(c)) {
            sf_writef_float(file_->sf, c.samples, c.frames);
            written_.fetch_add(c.frames, std::memory_order_relaxed);
            any = true;
        }
        if (!any) {
            if (!running_.load(std::memory_order_acquire)) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
}

Result<uint64_t> Recorder::stop() {
    if (stopped_) return written();
    stopped_ = true;
    running_.store(false, std::memory_order_release);
    if (disk_.joinable()) disk_.join();
    sf_write_sync(file_->sf);
    file_.reset();
    std::error_code ec;
    fs::rename(partPath_, path_, ec);
    if (ec) return Error{path_ + ": cannot move the recording into place (" + ec.message() + ")"};
    return written();
}

}  // namespace rackterm::engine
