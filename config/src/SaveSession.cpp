// Save: the session's text (the user's file edited in place, see
// sessionText) through the one atomic-replace path (temporary file, fsync,
// NAME~ kept, rename, folder fsync).
#include <rackterm/common/Files.hpp>
#include <rackterm/config/Session.hpp>

namespace rackterm::config {

Result<std::string> saveSession(const Session& session, const std::string& path) {
    files::AtomicFile::Options options;
    options.keepBackup = true;
    std::string text = sessionText(session).text;
    if (auto r = files::replaceFile(path, text, options); !r) return Error{"cannot save: " + r.error()};
    return text;
}

}  // namespace rackterm::config
