// Sound-file decoding for the player and offline render: libsndfile, then
// libsamplerate when the rate differs. Control thread only.
#include <rackterm/engine/Player.hpp>

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>

#include <samplerate.h>
#include <sndfile.h>

#include <new>

namespace rackterm::engine {

namespace {
/// Most stereo frames a player holds, before and after rate conversion:
/// 2^27 (about 46 minutes at 48 kHz; 1 GiB of float samples).
constexpr size_t kMaxFrames = size_t{1} << 27;
constexpr sf_count_t kChunkFrames = 4096;

Result<std::shared_ptr<const AudioData>> decode(const std::string& path, const std::string& shown, double targetRateHz) {
    auto fd = files::openRegularFile(path, "sound file", "cannot read the");  // never a FIFO or a device: nothing blocks
    if (!fd) return Error{fd.error()};
    SF_INFO info{};
    SNDFILE* f = sf_open_fd(fd.value(), SFM_READ, &info, SF_TRUE);
    if (!f) return Error{shown + ": cannot read the sound file (" + sf_strerror(nullptr) + "); check the path and format"};
    const auto fail = [&](const std::string& what) {
        if (f) sf_close(f);
        f = nullptr;
        return Error{shown + ": " + what};
    };
    if (info.channels <= 0 || info.samplerate <= 0) return fail("the sound file holds no audio frames; choose a file with audio in it");
    const double ratio = targetRateHz / info.samplerate;
    if (ratio != 1.0 && !src_is_valid_ratio(ratio))
        return fail("its rate (" + std::to_string(info.samplerate) + " Hz) cannot be converted to " +
                    std::to_string(static_cast<long>(targetRateHz)) + " Hz; resample the file first");
    const std::string tooLong = "the sound file is too long for the player (at most " + std::to_string(kMaxFrames) +
                                " frames at " + std::to_string(static_cast<long>(targetRateHz)) + " Hz)";
    // Read in chunks: the frame count in a header (FLAC, Ogg) is not trusted with an allocation.
    const size_t ch = static_cast<size_t>(info.channels);
    std::vector<float> chunk(static_cast<size_t>(kChunkFrames) * ch), stereo;
    while (true) {
        const sf_count_t got = sf_readf_float(f, chunk.data(), kChunkFrames);
        if (got <= 0) break;
        const size_t frames = static_cast<size_t>(got);
        if (stereo.size() / 2 + frames > kMaxFrames) return fail(tooLong);
        for (size_t i = 0; i < frames; ++i) {
            stereo.push_back(chunk[i * ch]);
            stereo.push_back(chunk[i * ch + (ch > 1 ? 1 : 0)]);
        }
    }
    sf_close(f);
    f = nullptr;
    if (stereo.empty()) return fail("no frames could be decoded; the file is empty or damaged");
    const size_t frames = stereo.size() / 2;

    auto d = std::make_shared<AudioData>();
    d->fileChannels = info.channels;
    d->fileSampleRate = info.samplerate;
    if (ratio != 1.0) {
        const double outFrames = static_cast<double>(frames) * ratio + 64.0;
        if (outFrames > static_cast<double>(kMaxFrames)) return fail(tooLong);
        std::vector<float> converted(static_cast<size_t>(outFrames) * 2);
        SRC_DATA s{};
        s.data_in = stereo.data();
        s.input_frames = static_cast<long>(frames);
        s.data_out = converted.data();
        s.output_frames = static_cast<long>(converted.size() / 2);
        s.src_ratio = ratio;
        if (int e = src_simple(&s, SRC_SINC_MEDIUM_QUALITY, 2); e != 0)
            return fail("sample-rate conversion to " + std::to_string(static_cast<long>(targetRateHz)) + " Hz failed (" +
                        src_strerror(e) + ")");
        converted.resize(static_cast<size_t>(s.output_frames_gen) * 2);
        stereo.swap(converted);
    }
    d->sampleRate = targetRateHz;
    d->frames = stereo.size() / 2;
    if (d->frames == 0) return fail("too short to play after conversion");
    d->left.resize(d->frames);
    d->right.resize(d->frames);
    for (size_t i = 0; i < d->frames; ++i) {
        d->left[i] = stereo[2 * i];
        d->right[i] = stereo[2 * i + 1];
    }
    return std::shared_ptr<const AudioData>(std::move(d));
}
}  // namespace

Result<std::shared_ptr<const AudioData>> decodeFile(const std::string& path, double targetRateHz) {
    const std::string shown = printable(path, kPathChars);
    try {
        return decode(path, shown, targetRateHz);
    } catch (const std::bad_alloc&) {
        return Error{shown + ": not enough memory to load it at " + std::to_string(static_cast<long>(targetRateHz)) +
                     " Hz; choose a shorter file"};
    }
}

}  // namespace rackterm::engine
