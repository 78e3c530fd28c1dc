#include <rackterm/engine/OfflineRender.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/Player.hpp>
#include <rackterm/engine/rt/Interleave.hpp>

#include <sndfile.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

namespace rackterm::engine {

namespace fs = std::filesystem;

struct OfflineRender::Impl {
    SNDFILE* in = nullptr;  // streaming input (same rate), or
    std::shared_ptr<const AudioData> decoded;  // converted input
    SF_INFO inInfo{};
    std::string outPath;
    std::optional<files::AtomicFile> out;  // the output's temporary file, renamed onto outPath at the end
    SF_INFO outInfo{};
    ~Impl() {
        if (in) sf_close(in);
    }
};

int majorFormatForPath(const std::string& path) {
    std::string ext = fs::path(path).extension().string();
    if (ext.empty()) return 0;
    ext.erase(0, 1);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == "oga" || ext == "ogg") return SF_FORMAT_OGG;
    if (ext == "aif") return SF_FORMAT_AIFF;
    int count = 0;
    sf_command(nullptr, SFC_GET_FORMAT_MAJOR_COUNT, &count, sizeof count);
    for (int i = 0; i < count; ++i) {
        SF_FORMAT_INFO f{};
        f.format = i;
        sf_command(nullptr, SFC_GET_FORMAT_MAJOR, &f, sizeof f);
        if (f.extension && ext == f.extension) return f.format;
    }
    return 0;
}

OfflineRender::~OfflineRender() = default;

Result<std::unique_ptr<OfflineRender>> OfflineRender::open(const std::string& inPath, const std::string& outPath,
                                                           double sampleRateHz) {
    std::unique_ptr<OfflineRender> r(new OfflineRender);
    r->impl_ = std::make_unique<Impl>();
    Impl& m = *r->impl_;
    const std::string shownIn = printable(inPath, kPathChars), shownOut = printable(outPath, kPathChars);
    // Only a regular file is read: a FIFO with no writer or a device would block or never end.
    auto fd = files::openRegularFile(inPath, "input", "cannot read the");
    if (!fd) return Error{fd.error() + "; give a readable sound file with -i"};
    m.in = sf_open_fd(fd.value(), SFM_READ, &m.inInfo, SF_TRUE);
    if (!m.in)
        return Error{shownIn + ": cannot read the input (" + std::string(sf_strerror(nullptr)) +
                     "); give a readable sound file with -i"};
    if (m.inInfo.channels > 2)
        r->notes_.push_back(shownIn + " has " + std::to_string(m.inInfo.channels) +
                            " channels; rendering channels 1 and 2 (the rack is stereo)");
    const int major = majorFormatForPath(outPath);
    if (major == 0)
        return Error{shownOut + ": unknown output format; end the name in .wav, .flac, .ogg, .aiff, .au, .caf or .w64"};
    if (files::sameFile(inPath, outPath))
        return Error{shownOut + ": is the input file (" + shownIn + "); rendering onto it would destroy the input: choose another output"};

    r->sampleRate_ = sampleRateHz > 0 ? sampleRateHz : m.inInfo.samplerate;
    r->frames_ = static_cast<uint64_t>(m.inInfo.frames);
    m.outPath = outPath;
    m.outInfo.samplerate = static_cast<int>(r->sampleRate_);
    m.outInfo.channels = 2;
    const int inSub = m.inInfo.format & SF_FORMAT_SUBMASK;
    m.outInfo.format = major | inSub;
    if (!sf_format_check(&m.outInfo)) {
        m.outInfo.format = major | (major == SF_FORMAT_OGG ? SF_FORMAT_VORBIS : SF_FORMAT_PCM_24);
        if (!sf_format_check(&m.outInfo)) m.outInfo.format = major | SF_FORMAT_PCM_16;
        if (!sf_format_check(&m.outInfo))
            return Error{shownOut + ": libsndfile cannot write stereo at this rate in that format; try .wav"};
    }
    // The temporary output beside outPath (refused when outPath is not a
    // regular file), before the input is decoded: every check comes first.
    auto out = files::AtomicFile::create(outPath);
    if (!out) return Error{out.error()};
    m.out.emplace(std::move(out.value()));
    if (r->sampleRate_ != m.inInfo.samplerate) {  // convert the whole input up front
        sf_close(m.in);
        m.in = nullptr;
        auto d = decodeFile(inPath, r->sampleRate_);
        if (!d) return Error{d.error()};
        m.decoded = d.value();
        r->frames_ = m.decoded->frames;
    }
    return r;
}

Result<RenderStats> OfflineRender::run(Engine& engine, uint32_t blockFrames, const BlockHook& hook,
                                       const Progress& progress) {
    Impl& m = *impl_;
    SF_INFO outInfo = m.outInfo;
    if (!m.out || m.out->fd() < 0) return Error{printable(m.outPath, kPathChars) + ": this render has run already"};
    SNDFILE* out = sf_open_fd(m.out->fd(), SFM_WRITE, &outInfo, SF_FALSE);
    if (!out) return Error{printable(m.outPath, kPathChars) + ": cannot write (" + std::string(sf_strerror(nullptr)) + ")"};
    if ((outInfo.format & SF_FORMAT_SUBMASK) == SF_FORMAT_FLOAT || (outInfo.format & SF_FORMAT_SUBMASK) == SF_FORMAT_DOUBLE)
        sf_command(out, SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);
    else
        sf_command(out, SFC_SET_CLIPPING, nullptr, SF_TRUE);

    blockFrames = std::max<uint32_t>(1, blockFrames);
    engine.setMetering(false);  // nobody reads meters offline; the NaN/Inf guard stays
    // File I/O moves whole chunks of blocks; the rack still runs block by block.
    const uint32_t chunk = blockFrames * std::max<uint32_t>(1, 8192 / blockFrames);
    const size_t ch = static_cast<size_t>(std::max(1, m.inInfo.channels));
    std::vector<float> inter(chunk * ch), l(chunk), r(chunk), ol(chunk), orr(chunk), outInter(2 * chunk);
    const auto start = std::chrono::steady_clock::now();
    RenderStats stats;
    stats.sampleRate = sampleRate_;
    uint64_t pos = 0;
    int lastPercent = -1;
    bool failed = false;
    while (pos < frames_) {
        uint32_t got = static_cast<uint32_t>(std::min<uint64_t>(chunk, frames_ - pos));
        if (m.decoded) {
            std::copy_n(m.decoded->left.begin() + static_cast<long>(pos), got, l.begin());
            std::copy_n(m.decoded->right.begin() + static_cast<long>(pos), got, r.begin());
        } else {
            got = static_cast<uint32_t>(sf_readf_float(m.in, inter.data(), got));
            if (got == 0) break;
            rt::deinterleave(inter.data(), ch, l.data(), r.data(), got);
        }
        for (uint32_t done = 0; done < got;) {
            uint32_t n = std::min(blockFrames, got - done);
            if (hook) {
                const uint64_t next = hook(pos + done);
                if (next > pos + done && next < pos + done + n) n = static_cast<uint32_t>(next - (pos + done));
            }
            const float* ins[2] = {l.data() + done, r.data() + done};
            float* outs[2] = {ol.data() + done, orr.data() + done};
            engine.process(ins, outs, n);
            done += n;
        }
        engine.collectGarbage();
        rt::interleave(ol.data(), orr.data(), outInter.data(), got);
        if (sf_writef_float(out, outInter.data(), got) != got) {
            failed = true;
            break;
        }
        pos += got;
        if (progress) {
            const int percent = static_cast<int>(100.0 * static_cast<double>(pos) / static_cast<double>(frames_));
            if (percent != lastPercent) progress(static_cast<double>(pos) / static_cast<double>(frames_));
            lastPercent = percent;
        }
    }
    const std::string writeError = failed ? sf_strerror(out) : "";
    sf_write_sync(out);
    sf_close(out);
    if (failed) {
        m.out.reset();  // removes the temporary file
        return Error{printable(m.outPath, kPathChars) + ": writing failed (" + writeError + "); nothing was written; check free space"};
    }
    if (auto c = m.out->commit(); !c) return Error{c.error()};
    stats.frames = pos;
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return stats;
}

}  // namespace rackterm::engine
