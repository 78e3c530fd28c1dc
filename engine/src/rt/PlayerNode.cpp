// The player node: what runs on the audio thread (and its control-thread constructor).
#include <rackterm/engine/Player.hpp>

#include <rackterm/Dsp.hpp>

#include <algorithm>
#include <array>

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
    nullptr,  // latency_frames: none
    nullptr,  // activate: the host's own node has no lifecycle hooks
    nullptr,  // deactivate
};

}  // namespace

const rackterm_processor_v2* playerDescriptor() noexcept { return &kPlayer; }

rackterm_instance* createPlayer(std::shared_ptr<const AudioData> data, uint32_t) {
    auto* p = new Player;
    p->level.prepare(data->sampleRate, 0.02);
    p->data = std::move(data);
    return reinterpret_cast<rackterm_instance*>(p);
}

}  // namespace rackterm::engine
