// The edit journal: every change a command makes to the session, with what
// it replaced, so it can be undone and redone. Bounded (kJournalSteps; the
// oldest steps go first). Each state of the session has a serial, so the
// unsaved flag is a comparison: the state now against the state last saved
// to the session's file. [control].
#pragma once

#include <rackterm/config/Session.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rackterm::app {

/// Undo steps kept.
inline constexpr size_t kJournalSteps = 1024;

/// One reversible change.
struct Edit {
    enum class Kind { SetValue, SetBypass, AddNode, RemoveNode, Load, Connections };
    Kind kind = Kind::SetValue;
    std::string node;                     ///< node id (all but Load)
    std::string param;                    ///< SetValue: parameter id
    std::optional<double> before, after;  ///< SetValue: the session's plain value (nullopt: not written, the default)
    bool bypassBefore = false, bypassAfter = false;  ///< SetBypass
    config::NodeSpec spec;                ///< AddNode / RemoveNode: the node, values and bypass included
    size_t position = 0;                  ///< AddNode / RemoveNode: its chain position (0 = first)
    std::shared_ptr<const config::Session> sessionBefore, sessionAfter;  ///< Load: the documents
    bool unsavedBefore = false;           ///< Load: hot-swap changes unsaved in the document before
    /// Connections / AddNode / RemoveNode: the document's connections before
    /// and after (an add splices, a remove takes the node's connections along).
    std::vector<config::ConnectionSpec> connectionsBefore, connectionsAfter;
    std::string label;                    ///< Connections: "connect eq -> rev", "disconnect eq -> rev"; Load: "recover" (recovered edits)
    double time = 0;                      ///< seconds (steady clock) of the newest change merged into it
    uint64_t serial = 0;                  ///< the state this edit leads to

    /// "set gain.gain_db", "add eq", "remove eq", "bypass eq", "load FILE", "connect eq -> rev".
    std::string what() const;
};

class Journal {
public:
    /// Seconds within which repeated changes of one parameter merge into one step.
    static constexpr double kMergeSeconds = 1.0;

    explicit Journal(size_t capacity = kJournalSteps) : capacity_(capacity) {}

    /// Record `edit` made at `now` (seconds). Drops the redo steps. With
    /// `merge`, a SetValue of the parameter the newest step set less than
    /// kMergeSeconds ago (and not saved since) extends that step instead.
    void record(Edit edit, double now, bool merge = false);
    /// The step undo() would reverse, or nullptr.
    const Edit* undoStep() const noexcept { return cursor_ ? &steps_[cursor_ - 1] : nullptr; }
    /// The step redo() would repeat, or nullptr.
    const Edit* redoStep() const noexcept { return cursor_ < steps_.size() ? &steps_[cursor_] : nullptr; }
    /// Move back over undoStep() / forward over redoStep() (after carrying it out).
    void stepBack() noexcept;
    void stepForward() noexcept;

    /// The serial of the session's state now (0: as opened).
    uint64_t state() const noexcept { return cursor_ ? steps_[cursor_ - 1].serial : base_; }
    /// The state now is what the file at `path` holds (after a save or load).
    void markSaved(const std::string& path);
    /// True when the state now is the one last saved to (or loaded from) `path`.
    bool atSaved(const std::string& path) const;

    size_t size() const noexcept { return steps_.size(); }
    size_t position() const noexcept { return cursor_; }
    size_t capacity() const noexcept { return capacity_; }

private:
    size_t capacity_;
    std::deque<Edit> steps_;
    size_t cursor_ = 0;     // steps_[0, cursor_) are done
    uint64_t base_ = 0;     // the state before steps_[0]
    uint64_t next_ = 1;     // next serial
    std::vector<std::pair<std::string, uint64_t>> saved_;  // path -> state saved there
};

}  // namespace rackterm::app
