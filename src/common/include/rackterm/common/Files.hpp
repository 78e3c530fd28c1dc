// The one checked path for reading files and the one for writing them.
//
// Reading: only regular files are opened (a FIFO, a device or a socket is
// refused by stat() before any open(), so nothing blocks and no device sees
// an open), the descriptor is opened non-blocking and checked again with
// fstat(), sizes are bounded and read errors are errors, never an empty file.
//
// Writing: a file is replaced atomically. AtomicFile writes a temporary file
// in the target's folder and renames it over the target on commit(); a target
// that exists and is not a regular file (device, FIFO, socket, folder) is
// refused with one line naming what it is, so nothing but the target is ever
// replaced. Temporary files are named `.NAME.tmp-PID`; those of processes
// that are no longer running are removed from the folder at the next write.
//
// Every function is [control] (or any non-audio thread): they make system
// calls and allocate. Errors are one line that starts with the path.
#pragma once

#include <rackterm/common/Result.hpp>

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rackterm::files {

/// Largest text file rackterm reads (session files, scripts): 16 MiB.
inline constexpr uint64_t kMaxTextFileBytes = 16ull << 20;

/// What a file of mode `mode` (st_mode) is, for messages: "a FIFO",
/// "a Unix socket", "a character device", "a block device", "a folder",
/// "a symbolic link", "a regular file".
const char* kindOf(mode_t mode);

/// Open `path` for reading when it is a regular file (symbolic links are
/// followed). stat() runs first, so a FIFO or a device is never opened; the
/// open is O_NONBLOCK (cleared again once the descriptor is checked with
/// fstat()). Returns a descriptor the caller closes. `what` names the file in
/// messages ("session file", "sound file"). Errors: "PATH: VERB WHAT
/// (reason)" (`verb`: "cannot open the", or a caller's own wording),
/// "PATH: is a FIFO, not a regular file; the WHAT must be a regular file".
Result<int> openRegularFile(const std::string& path, std::string_view what, std::string_view verb = "cannot open the");

/// Read the whole regular file `path`, at most `maxBytes` bytes. Errors as
/// openRegularFile(), plus "PATH: the WHAT is 20.0 MiB; at most 16.0 MiB is
/// read" and "PATH: cannot read the WHAT (reason)" (a read error is never
/// taken for the end of the file).
Result<std::string> readRegularFile(const std::string& path, uint64_t maxBytes, std::string_view what);

/// True when `a` and `b` both exist and are the same file (same device and
/// inode; symbolic and hard links count as the same file).
bool sameFile(const std::string& a, const std::string& b);

/// `path` made absolute, its folder resolved as the kernel resolves it
/// (realpath: symbolic links, then ".."), and symbolic links followed to the
/// file they finally name (which may not exist yet). At most 40 links.
std::string resolveLinks(const std::string& path);

/// Remove temporary files of rackterm's naming (`.NAME.tmp-PID`, and
/// 0.1's `.NAME.part-PID`) in `folder` whose process is no longer running:
/// regular files owned by this user that no writer holds locked (an
/// AtomicFile holds flock() on its file while it writes, which also protects
/// writers in another PID namespace). Returns how many were removed.
unsigned removeStaleTemporaries(const std::string& folder);

/// fsync the folder `folder` (after a rename or a new entry in it), so the
/// change survives a power cut; errors are ignored (best effort).
void syncFolder(const std::string& folder);

/// Exchange the two existing paths `a` and `b` in one atomic step
/// (renameat2 RENAME_EXCHANGE): each then names what the other named.
/// True when done; false when this file system cannot exchange (EINVAL,
/// ENOSYS), so the caller falls back to two renames; an error otherwise.
Result<bool> exchangePaths(const std::string& a, const std::string& b);

/// Copy the regular file `from` to a new file `to` (created with O_EXCL),
/// at most `maxBytes`, in bounded chunks, then fsync it. Errors name the
/// file: not regular, over the limit, read or write errors; `to` is removed
/// on failure.
Result<void> copyRegularFile(const std::string& from, const std::string& to, uint64_t maxBytes);

/// Replace one file atomically: create() plans it and opens a temporary file
/// beside the target; write through fd() (or write()); commit() makes it the
/// target. Until commit() succeeds the target is untouched, whatever happens
/// (even kill -9); the destructor removes an uncommitted temporary file.
class AtomicFile {
public:
    struct Options {
        /// Keep the replaced file as TARGET~ (by a hard link, or else by a
        /// bounded copy of the regular file): what `save` does.
        bool keepBackup = false;
        /// The largest old file a backup copies when a hard link is not
        /// possible.
        uint64_t maxBackupCopyBytes = kMaxTextFileBytes;
    };

    /// Plan to replace `path`. A symbolic link is followed (the link stays and
    /// names the new file). Refuses, with one line: a target that exists and
    /// is not a regular file ("PATH is a FIFO, not a regular file; rackterm
    /// replaces only regular files: choose another path"), a missing or
    /// unwritable folder. Removes stale temporaries of dead processes in the
    /// folder, then creates the temporary file (mode of the file it replaces,
    /// else 0666 less the umask).
    static Result<AtomicFile> create(const std::string& path, Options options);
    static Result<AtomicFile> create(const std::string& path) { return create(path, Options{}); }

    AtomicFile(AtomicFile&&) noexcept;
    AtomicFile& operator=(AtomicFile&&) noexcept;
    /// Removes the temporary file unless commit() succeeded.
    ~AtomicFile();

    /// The temporary file's descriptor (for libsndfile's sf_open_fd); -1 after commit().
    int fd() const noexcept;

    /// Write all of `bytes` to the temporary file. Error: "PATH: write failed (reason)".
    Result<void> write(std::string_view bytes);
    /// fsync the temporary file, keep the backup when asked, check the
    /// target again (it must still be absent or a regular file), rename the
    /// temporary file over it and fsync the folder. On error the target is
    /// unchanged and the temporary file is removed.
    Result<void> commit();

private:
    struct Temporary;  // the open temporary file; removed with it unless renamed into place
    AtomicFile();
    Result<void> keepBackup();

    std::string path_;    // as given, for messages
    std::string target_;  // the file replaced (links followed)
    std::string folder_;  // target_'s folder, where the temporaries go
    Options options_;
    std::unique_ptr<Temporary> temp_;  // nullptr once committed
};

/// Write `text` to `path` atomically (AtomicFile, then commit()).
Result<void> replaceFile(const std::string& path, std::string_view text, AtomicFile::Options options = {});

}  // namespace rackterm::files
