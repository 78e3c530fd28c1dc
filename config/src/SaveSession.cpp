// Save: the session's text through the one atomic-replace path (temporary
// file, fsync, NAME~ kept, rename, folder fsync).
#include <rackterm/common/Files.hpp>
#include <rackterm/config/Session.hpp>

namespace rackterm::config {

Result<void> saveSession(const Session& session, const std::string& path) {
    files::AtomicFile::Options options;
    options.keepBackup = true;
    if (auto r = files::replaceFile(path, formatSession(session), options); !r)
        return Error{"cannot save: " + r.error()};
    return {};
}

}  // namespace rackterm::config
