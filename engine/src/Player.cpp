#include <rackterm/engine/Player.hpp>

#include <rackterm/Dsp.hpp>

#include <samplerate.h>
#include <sndfile.h>

#include <array>
#include <cstring>

namespace rackterm::engine {

namespace {

constexpr std::array<rackterm_param_info, 1> kPlayerParams{{
    {"level_db", "Level", "dB", -60.0f, 12.0f, 0.0f, 0u, nullptr},
}};

struct Player {
    std::shared_ptr<const AudioData> data;
    size_t position = 0;
    float levelDb = 0.0f;
    sdk::LinearSmoother level;
};

Player* self(rackterm_instance* p) { return reinterpret_cast<Player*>(p); }

rackterm_instance* playerCreate(double, uint32_t) { return nullptr; }
void playerDestroy(rackterm_instance* p) { delete self(p); }
void playerReset(rackterm_instance* p) {
    if (p) self(p)->position = 0;
}
void playerApply(rackterm_instance* p, const float* v, size_t len) {
    if (p && v && len >= 1) self(p)->levelDb = std::clamp(v[0], kPlayerParams[0].min, kPlayerParams[0].max);
}
void playerProcess(rackterm_instance* p, const float* const* in, float* const* out, uint32_t frames) {
    Player& pl = *self(p);
    const AudioData& d = *pl.data;
    pl.level.setTarget(sdk::dbToGain(pl.levelDb));
    size_t pos = pl.position;
    for (uint32_t i = 0; i < frames; ++i) {
        const float g = pl.level.next();
        out[0][i] = in[0][i] + d.left[pos] * g;
        out[1][i] = in[1][i] + d.right[pos] * g;
        if (++pos == d.frames) pos = 0;
    }
    pl.position = pos;
}
const char* playerLastError() { return "a player is created by the host with its file (engine::createPlayer)"; }

const rackterm_processor_v2 kPlayer = {
    RACKTERM_ABI_VERSION,
    static_cast<uint32_t>(sizeof(rackterm_processor_v2)),
    "player",
    "Player",
    "1.0.0",
    2,
    2,
    kPlayerParams.data(),
    static_cast<uint32_t>(kPlayerParams.size()),
    &playerCreate,
    &playerDestroy,
    &playerReset,
    &playerApply,
    &playerProcess,
    &playerLastError,
};

}  // namespace

const rackterm_processor_v2* playerDescriptor() noexcept { return &kPlayer; }

rackterm_instance* createPlayer(std::shared_ptr<const AudioData> data, uint32_t) {
    auto* p = new Player;
    p->level.prepare(data->sampleRate, 0.02);
    p->data = std::move(data);
    return reinterpret_cast<rackterm_instance*>(p);
}

Result<std::shared_ptr<const AudioData>> decodeFile(const std::string& path, double targetRateHz) {
    SF_INFO info{};
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
    if (!f) return Error{path + ": cannot read the sound file (" + sf_strerror(nullptr) + "); check the path and format"};
    if (info.frames <= 0 || info.channels <= 0) {
        sf_close(f);
        return Error{path + ": the sound file holds no audio frames; choose a file with audio in it"};
    }
    std::vector<float> interleaved(static_cast<size_t>(info.frames) * static_cast<size_t>(info.channels));
    const sf_count_t got = sf_readf_float(f, interleaved.data(), info.frames);
    sf_close(f);
    if (got <= 0) return Error{path + ": no frames could be decoded; the file may be damaged"};
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
            return Error{path + ": sample-rate conversion to " + std::to_string(static_cast<long>(targetRateHz)) +
                         " Hz failed (" + src_strerror(e) + ")"};
        converted.resize(static_cast<size_t>(s.output_frames_gen) * 2);
        stereo.swap(converted);
    }
    d->sampleRate = targetRateHz;
    d->frames = stereo.size() / 2;
    if (d->frames == 0) return Error{path + ": too short to play after conversion"};
    d->left.resize(d->frames);
    d->right.resize(d->frames);
    for (size_t i = 0; i < d->frames; ++i) {
        d->left[i] = stereo[2 * i];
        d->right[i] = stereo[2 * i + 1];
    }
    return std::shared_ptr<const AudioData>(std::move(d));
}

}  // namespace rackterm::engine
