// The player host node and sound-file decoding.
//
// A player loops a sound file through the rack. The file is decoded with
// libsndfile and, when its rate differs from the rack's, converted with
// libsamplerate, all on the control thread before the node is published;
// the audio thread only reads the decoded frames. Its one parameter is
// level_db (-60..12 dB, default 0). Output = input + file x level, so a
// player is a source that never hides what comes before it.
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/processor.h>

#include <memory>
#include <string>
#include <vector>

namespace rackterm::engine {

/// A decoded file: stereo, non-interleaved, 2 x frames at sampleRate Hz.
/// A mono file is copied to both channels; beyond two, the first two are kept.
struct AudioData {
    double sampleRate = 0;
    size_t frames = 0;
    std::vector<float> left, right;
    int fileChannels = 0;     ///< channels in the file
    double fileSampleRate = 0;  ///< rate of the file before conversion
};

/// [control] Decode `path` (any format libsndfile reads: WAV, FLAC, Ogg
/// Vorbis, AIFF, ...) and convert it to `targetRateHz` (SRC_SINC_MEDIUM_QUALITY)
/// when the rates differ. The file is read in chunks (a header's frame count
/// is not trusted) and at most 2^27 frames are kept, before and after
/// conversion. Errors: not a regular file, unreadable file (libsndfile's
/// reason), empty file, too long, a rate libsamplerate cannot convert,
/// conversion failure, not enough memory.
Result<std::shared_ptr<const AudioData>> decodeFile(const std::string& path, double targetRateHz);

/// The player's descriptor (id "player"). Its create() fails: a player is made
/// with createPlayer(), which knows the file.
const rackterm_processor_v2* playerDescriptor() noexcept;

/// [control] A player instance looping `data`. Destroy with
/// playerDescriptor()->destroy. `data` must match the rack's sample rate.
rackterm_instance* createPlayer(std::shared_ptr<const AudioData> data, uint32_t maxBlockFrames);

}  // namespace rackterm::engine
