// Sound-file decoding for the player and offline render: libsndfile, then
// libsamplerate when the rate differs. Control thread only.
#include <rackterm/engine/Player.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>

#include <samplerate.h>
#include <sndfile.h>

namespace rackterm::engine {

namespace {
/// Most samples (frames x channels) a player file may hold: 1 GiB of floats,
/// about 46 minutes of 48 kHz stereo.
constexpr sf_count_t kMaxSamples = sf_count_t{1} << 28;
}  // namespace

Result<std::shared_ptr<const AudioData>> decodeFile(const std::string& path, double targetRateHz) {
    const std::string shown = printable(path, kPathChars);
    auto fd = files::openRegularFile(path, "sound file", "cannot read the");  // never a FIFO or a device: nothing blocks
    if (!fd) return Error{fd.error()};
    SF_INFO info{};
    SNDFILE* f = sf_open_fd(fd.value(), SFM_READ, &info, SF_TRUE);
    if (!f) return Error{shown + ": cannot read the sound file (" + sf_strerror(nullptr) + "); check the path and format"};
    if (info.frames <= 0 || info.channels <= 0) {
        sf_close(f);
        return Error{shown + ": the sound file holds no audio frames; choose a file with audio in it"};
    }
    if (info.frames > kMaxSamples / info.channels) {
        sf_close(f);
        return Error{shown + ": the sound file is too long for the player (" + std::to_string(info.frames) + " frames x " +
                     std::to_string(info.channels) + " channels; at most " + std::to_string(kMaxSamples) + " samples)"};
    }
    std::vector<float> interleaved(static_cast<size_t>(info.frames) * static_cast<size_t>(info.channels));
    const sf_count_t got = sf_readf_float(f, interleaved.data(), info.frames);
    sf_close(f);
    if (got <= 0) return Error{shown + ": no frames could be decoded; the file may be damaged"};
    const size_t frames = static_cast<size_t>(got);
    const size_t ch = static_cast<size_t>(info.channels);

    auto d = std::make_shared<AudioData>();
    d->fileChannels = info.channels;
    d->fileSampleRate = info.samplerate;
    std::vector<float> stereo(frames * 2);
    for (size_t i = 0; i < frames; ++i) {
        stereo[2 * i] = interleaved[i * ch];
        stereo[2 * i + 1] = interleaved[i * ch + (ch > 1 ? 1 : 0)];
    }
    if (static_cast<double>(info.samplerate) != targetRateHz) {
        const double ratio = targetRateHz / info.samplerate;
        std::vector<float> converted((static_cast<size_t>(static_cast<double>(frames) * ratio) + 64) * 2);
        SRC_DATA s{};
        s.data_in = stereo.data();
        s.input_frames = static_cast<long>(frames);
        s.data_out = converted.data();
        s.output_frames = static_cast<long>(converted.size() / 2);
        s.src_ratio = ratio;
        if (int e = src_simple(&s, SRC_SINC_MEDIUM_QUALITY, 2); e != 0)
            return Error{shown + ": sample-rate conversion to " + std::to_string(static_cast<long>(targetRateHz)) +
                         " Hz failed (" + src_strerror(e) + ")"};
        converted.resize(static_cast<size_t>(s.output_frames_gen) * 2);
        stereo.swap(converted);
    }
    d->sampleRate = targetRateHz;
    d->frames = stereo.size() / 2;
    if (d->frames == 0) return Error{shown + ": too short to play after conversion"};
    d->left.resize(d->frames);
    d->right.resize(d->frames);
    for (size_t i = 0; i < d->frames; ++i) {
        d->left[i] = stereo[2 * i];
        d->right[i] = stereo[2 * i + 1];
    }
    return std::shared_ptr<const AudioData>(std::move(d));
}

}  // namespace rackterm::engine
