// A JACK client of the test's own that records its inputs, and the check
// that a capture equals an offline render. Used only by tests.
#pragma once

#include "support/Support.hpp"

#include <atomic>
#include <string>
#include <vector>

typedef struct _jack_client jack_client_t;
typedef struct _jack_port jack_port_t;

namespace rackterm::test {

/// A JACK client `name` on `server` with inputs in_1..in_N that records
/// up to `frames` frames of each into pre-allocated memory once armed, and
/// notes (steady-clock seconds) the first period that carries sound.
class JackCapture {
public:
    JackCapture(const std::string& server, const std::string& name, size_t frames, int channels = 2);
    ~JackCapture();
    JackCapture(const JackCapture&) = delete;
    JackCapture& operator=(const JackCapture&) = delete;
    /// True when the client opened and runs.
    bool ok() const { return client_ != nullptr; }
    /// Connect `port` to in_`channel` (1-based), retrying for up to `seconds` while it is missing.
    bool connectFrom(const std::string& port, int channel, double seconds = 10);
    /// Record from the next period on; waits (at most `seconds`) until `frames` are in. False when they are not.
    bool record(double seconds = 20);
    const std::vector<float>& channel(int c) const { return data_[static_cast<size_t>(c)]; }
    size_t written() const { return written_.load(); }
    /// When a period first carried a sample above 1e-4 (seconds on the steady clock), or -1.
    double firstSoundAt() const { return firstSound_.load(); }
    /// Process cycles run so far (0: JACK never ran this client).
    size_t cycles() const { return cycles_.load(); }

private:
    static int process(uint32_t frames, void* arg);
    jack_client_t* client_ = nullptr;
    std::string name_;
    std::vector<jack_port_t*> in_;
    std::vector<std::vector<float>> data_;
    std::atomic<size_t> written_{0};
    std::atomic<bool> armed_{false};
    std::atomic<double> firstSound_{-1.0};
    std::atomic<size_t> cycles_{0};
};

/// What rackterm_test_capture recorded: a client in a process of its own,
/// so each JACK server the test starts meets a fresh libjack.
struct ProcessCapture {
    int exitCode = -1;       ///< 0 complete, 1 timed out (partial), 2 no client
    double firstSound = -1;  ///< steady-clock seconds of the first period with sound, or -1
    size_t cycles = 0;       ///< process cycles the client ran
    Sound sound;             ///< FRAMES frames from the period after the first sound
    std::string log;         ///< its output, for messages
};
/// Run client `name` on `server` with `channels` inputs until it recorded
/// `frames` frames after the first sound, or `timeoutSeconds` passed.
/// It connects `sources` (full port names) to in_1, in_2, ...; without
/// them the program under test must (e.g. restoring a connection).
ProcessCapture captureInProcess(const std::string& server, const std::string& name, size_t frames, int channels,
                                const std::string& wavPath, double timeoutSeconds = 10,
                                const std::vector<std::string>& sources = {});

/// How a capture compares with an offline render of the same looping session.
struct CaptureMatch {
    size_t compared = 0;       ///< periods with sound, each equal to the render at its offset
    size_t resyncs = 0;        ///< times the offset had to be found again (a dropped cycle)
    size_t mismatched = 0;     ///< periods with sound that matched no part of the render
    std::string failure;       ///< "" or where the first such period is
};
/// Compare a two-channel capture (`left`, `right`) period by period
/// (`block` frames) with the offline render `offline` (two channels) of a
/// session whose source loops every `loop` frames: each period that carries
/// sound must equal the render, within 1e-4, at some offset in [loop, 2 loop);
/// those that do not are counted (a strict caller asserts none).
/// The render must hold at least 2 loop + capture length frames.
CaptureMatch matchCapture(const std::vector<float>& left, const std::vector<float>& right, const Sound& offline,
                          size_t loop, size_t block);

/// The nodes of a session that plays a real recording in a loop through a
/// filter and a gain (player Front_Center.wav -> biquad lowpass 3 kHz ->
/// gain -3 dB): append them to a [session] and [engine] of your own.
extern const char* const kLoopingNodes;
/// Frames in one loop of kLoopingNodes' recording.
size_t loopingFrames();
/// Render `session` offline (256-frame blocks) over silence long enough to
/// compare a capture of `captureFrames` frames with it (two periods of
/// `loopsPerPeriod` loops more), into DIR/offline.wav. A session whose state
/// repeats only every few loops (a processor that counts samples from its
/// start, such as swh's SC4 with its 4-sample RMS step) passes that count
/// and compares with matchCapture(..., loopsPerPeriod * loopingFrames(), ...).
/// Empty (and `*error` set) when the render failed.
Sound renderForCapture(const std::string& session, const std::string& dir, size_t captureFrames, std::string* error,
                       size_t loopsPerPeriod = 1);

/// Seconds on the steady clock (the same clock as firstSoundAt()).
double steadySeconds();

}  // namespace rackterm::test
