#include <rackterm/engine/Recorder.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/OfflineRender.hpp>

#include <sndfile.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace rackterm::engine {

struct Recorder::File {
    explicit File(files::AtomicFile f) : out(std::move(f)) {}
    files::AtomicFile out;  // the temporary file, renamed onto the path at stop
    SNDFILE* sf = nullptr;
    ~File() {
        if (sf) sf_close(sf);
    }
};

Result<std::unique_ptr<Recorder>> Recorder::start(const std::string& path, double sampleRateHz) {
    const int major = majorFormatForPath(path);
    if (major == 0)
        return Error{printable(path, kPathChars) + ": unknown format; end the name in .wav, .flac, .ogg, .aiff, .caf or .w64"};
    auto out = files::AtomicFile::create(path);  // refuses a target that is not a regular file
    if (!out) return Error{out.error()};
    std::unique_ptr<Recorder> r(new Recorder);
    r->path_ = path;
    SF_INFO info{};
    info.samplerate = static_cast<int>(sampleRateHz);
    info.channels = 2;
    info.format = major | (major == SF_FORMAT_OGG ? SF_FORMAT_VORBIS : SF_FORMAT_PCM_24);
    r->file_ = std::make_unique<File>(std::move(out.value()));
    r->file_->sf = sf_open_fd(r->file_->out.fd(), SFM_WRITE, &info, SF_FALSE);
    if (!r->file_->sf)
        return Error{printable(path, kPathChars) + ": cannot write (" + std::string(sf_strerror(nullptr)) + ")"};
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
    sf_close(file_->sf);
    file_->sf = nullptr;
    auto committed = file_->out.commit();
    file_.reset();
    if (!committed) return Error{committed.error()};
    return written();
}

}  // namespace rackterm::engine
