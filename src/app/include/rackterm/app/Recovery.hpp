// Recovery: no edit is lost to a killed process, a dropped SSH link or a
// crash. While the session has unsaved edits, they are written to a recovery
// file beside it (`.NAME.toml.recover` for NAME.toml): an append-only
// journal, written by the control thread (never the audio thread) as edits
// happen and fsync'd in batches within a second. Saving the session, undoing
// back to what it holds, or quitting removes the file; a SIGHUP or SIGTERM
// keeps it (synced). Opening a session whose recovery file is newer than the
// session offers `recover` (the edits come back, unsaved, as one undo step)
// and `discard`.
//
// The file, as text:
//   rackterm-recovery 1
//   session /abs/path/NAME.toml
//   doc BYTES\n<BYTES of the session as `save` would write it>
//   set NODE.PARAM VALUE      (a plain value, after the newest doc)
//   bypass NODE on|off
// A new file starts with a doc record; a change of the nodes, their
// processors, their parameters' ids or the connections appends a doc record;
// value and bypass changes append one line each. A record cut short by a
// kill at the wrong moment is ignored on reading.
//
// [control], all of it.
#pragma once

#include <rackterm/common/Result.hpp>
#include <rackterm/config/Session.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace rackterm::app {

class Runtime;

/// `.NAME.toml.recover` beside `sessionPath`.
std::string recoveryPath(const std::string& sessionPath);

/// Read a recovery file: the session it holds (its path set to `sessionPath`,
/// its text as `save` would write it) and how many value and bypass changes
/// followed the newest doc record. Errors: unreadable, not a recovery file,
/// no complete doc record, a doc record that does not parse (with its place).
struct Recovered {
    config::Session session;
    size_t changes = 0;  ///< set / bypass lines applied after the newest doc record
};
Result<Recovered> readRecovery(const std::string& recoveryFile, const std::string& sessionPath);

/// Writes the recovery file of one open session.
class RecoveryJournal {
public:
    /// For the session at `sessionPath` ("" = none: nothing is written).
    /// When a recovery file newer than the session exists, it is offered
    /// (offered() true) and left alone until accept() or discard().
    explicit RecoveryJournal(const std::string& sessionPath);
    ~RecoveryJournal();
    RecoveryJournal(const RecoveryJournal&) = delete;
    RecoveryJournal& operator=(const RecoveryJournal&) = delete;

    const std::string& path() const noexcept { return path_; }
    /// True while an earlier session's recovery file waits for recover / discard.
    bool offered() const noexcept { return !offeredFile_.empty(); }
    /// The file holding the offered edits (the recovery file, or, once this
    /// session wrote edits of its own, that file moved to `...recover~`).
    const std::string& offeredFile() const noexcept { return offeredFile_; }
    /// One line for the log and the console: what was found and what to do.
    const std::string& offerText() const noexcept { return offerText_; }
    /// The offer is taken (the caller loads readRecovery(offeredFile())) or
    /// declined: the offered file is removed.
    void closeOffer();

    /// Bring the file up to date with `rt` (call each control-loop turn;
    /// cheap when nothing changed): appends what changed (values compared
    /// every 0.1 s, the structure every second or at once after an edit),
    /// removes the file when the session has no unsaved edits, fdatasyncs
    /// records 0.5 s after the first unsynced one (so within a second), and
    /// writes a file longer than 4 MiB anew as one doc record. `now` in
    /// seconds. An error is logged once, and the file is given up.
    void update(const Runtime& rt, double now);
    /// Write what is pending and fsync now (SIGHUP, SIGTERM: the file stays).
    void sync(const Runtime& rt);
    /// A clean end (quit): remove the file.
    void remove();
    /// Records appended since the file was started (for tests and `status`).
    size_t records() const noexcept { return records_; }

private:
    struct Seen {
        std::string structure;
        std::vector<std::string> ids;
        std::vector<std::vector<double>> values;
        std::vector<bool> bypass;
    };
    Seen look(const Runtime& rt, bool withStructure) const;
    bool append(const std::string& text);
    void writeDoc(const Runtime& rt, const Seen& now);
    void compact(const Runtime& rt, const Seen& now);
    /// fdatasync what was written kSyncSeconds ago or more.
    void syncIfDue(double now);

    std::string sessionPath_, path_;
    std::string offeredFile_, offerText_;
    int fd_ = -1;
    bool started_ = false;       // the file holds a doc record of this session
    bool failed_ = false;        // an error was logged: stop trying
    Seen written_;               // what the file holds now
    uint64_t lastState_ = UINT64_MAX, lastStructure_ = UINT64_MAX;
    double lastLook_ = -1, lastStructureLook_ = -1, unsyncedSince_ = -1;
    size_t records_ = 0;
    uint64_t bytes_ = 0;         // written to the file since it was started
};

}  // namespace rackterm::app
