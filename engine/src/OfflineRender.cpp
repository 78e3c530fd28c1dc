#include <rackterm/engine/OfflineRender.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/engine/Graph.hpp>
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
                                                           double sampleRateHz, uint32_t inputs, uint32_t outputs) {
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
    if (m.inInfo.channels > static_cast<int>(inputs))
        r->notes_.push_back(shownIn + " has " + std::to_string(m.inInfo.channels) + " channels; rendering channels 1 to " +
                            std::to_string(inputs) + " (the session's input has " + std::to_string(inputs) + ")");
    const int major = majorFormatForPath(outPath);
    if (major == 0)
        return Error{shownOut + ": unknown output format; end the name in .wav, .flac, .ogg, .aiff, .au, .caf or .w64"};
    if (files::sameFile(inPath, outPath))
        return Error{shownOut + ": is the input file (" + shownIn + "); rendering onto it would destroy the input: choose another output"};

    r->sampleRate_ = sampleRateHz > 0 ? sampleRateHz : m.inInfo.samplerate;
    r->frames_ = static_cast<uint64_t>(m.inInfo.frames);
    m.outPath = outPath;
    m.outInfo.samplerate = static_cast<int>(r->sampleRate_);
    m.outInfo.channels = static_cast<int>(std::clamp<uint32_t>(outputs, 1, kMaxIoPorts));
    const int inSub = m.inInfo.format & SF_FORMAT_SUBMASK;
    m.outInfo.format = major | inSub;
    if (!sf_format_check(&m.outInfo)) {
        m.outInfo.format = major | (major == SF_FORMAT_OGG ? SF_FORMAT_VORBIS : SF_FORMAT_PCM_24);
        if (!sf_format_check(&m.outInfo)) m.outInfo.format = major | SF_FORMAT_PCM_16;
        if (!sf_format_check(&m.outInfo))
            return Error{shownOut + ": libsndfile cannot write " + std::to_string(m.outInfo.channels) +
                         " channels at this rate in that format; try .wav"};
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
    const uint32_t inputs = engine.inputs(), outputs = engine.outputs();
    const size_t outChannels = static_cast<size_t>(outInfo.channels);
    std::vector<float> inter(chunk * ch), outInter(outChannels * chunk);
    std::vector<std::vector<float>> inBufs(inputs, std::vector<float>(chunk)), outBufs(outputs, std::vector<float>(chunk));
    // File channel of each graph input: the same channel; a mono file feeds
    // inputs 1 and 2 (as a stereo rack always did); missing ones are silent.
    auto fileChannel = [&](uint32_t c, size_t fileChannels) -> int {
        if (c < fileChannels) return static_cast<int>(c);
        if (fileChannels == 1 && c == 1) return 0;
        return -1;
    };
    const auto start = std::chrono::steady_clock::now();
    RenderStats stats;
    stats.sampleRate = sampleRate_;
    uint64_t pos = 0;
    int lastPercent = -1;
    bool failed = false;
    const float* ins[kMaxIoPorts];
    float* outs[kMaxIoPorts];
    while (pos < frames_) {
        uint32_t got = static_cast<uint32_t>(std::min<uint64_t>(chunk, frames_ - pos));
        if (m.decoded) {  // converted to the rack's rate: the first two channels
            for (uint32_t c = 0; c < inputs; ++c) {
                const int from = fileChannel(c, 2);
                if (from < 0) std::fill_n(inBufs[c].begin(), got, 0.0f);
                else std::copy_n((from == 0 ? m.decoded->left : m.decoded->right).begin() + static_cast<long>(pos), got, inBufs[c].begin());
            }
        } else {
            got = static_cast<uint32_t>(sf_readf_float(m.in, inter.data(), got));
            if (got == 0) break;
            for (uint32_t c = 0; c < inputs; ++c) {
                const int from = fileChannel(c, ch);
                float* dst = inBufs[c].data();
                if (from < 0) std::fill_n(dst, got, 0.0f);
                else
                    for (uint32_t f = 0; f < got; ++f) dst[f] = inter[f * ch + static_cast<size_t>(from)];
            }
        }
        for (uint32_t done = 0; done < got;) {
            uint32_t n = std::min(blockFrames, got - done);
            if (hook) {
                const uint64_t next = hook(pos + done);
                if (next > pos + done && next < pos + done + n) n = static_cast<uint32_t>(next - (pos + done));
            }
            for (uint32_t c = 0; c < inputs; ++c) ins[c] = inBufs[c].data() + done;
            for (uint32_t c = 0; c < outputs; ++c) outs[c] = outBufs[c].data() + done;
            engine.process(ins, outs, n);
            done += n;
        }
        engine.collectGarbage();
        for (size_t c = 0; c < outChannels; ++c) {
            const float* src = outBufs[std::min<size_t>(c, outputs - 1)].data();
            for (uint32_t f = 0; f < got; ++f) outInter[f * outChannels + c] = src[f];
        }
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
