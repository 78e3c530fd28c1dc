#include <rackterm/app/Recovery.hpp>

#include <rackterm/app/Runtime.hpp>
#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace rackterm::app {

namespace {
constexpr const char* kHeader = "rackterm-recovery 1\n";
constexpr double kLookSeconds = 0.1;       // values are compared at most this often
constexpr double kStructureSeconds = 1.0;  // the structure at least this often
constexpr double kSyncSeconds = 0.5;       // written records reach the disk within this (plus a loop turn)
constexpr uint64_t kCompactBytes = 4u << 20;  // a longer file is written anew as one doc record
constexpr uint64_t kMaxRecoveryBytes = 4 * kCompactBytes;

std::string formatPlain(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

/// Modification time in nanoseconds, or -1.
long long mtimeNs(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return -1;
    return static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

std::string localTime(long long ns) {
    const std::time_t t = static_cast<std::time_t>(ns / 1000000000LL);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string absolutePath(const std::string& path) {
    std::error_code ec;
    const auto a = std::filesystem::absolute(path, ec);
    return ec ? path : a.string();
}

config::NodeSpec* findNode(config::Session& s, std::string_view id) {
    for (auto& n : s.nodes)
        if (n.id == id) return &n;
    return nullptr;
}

std::vector<std::string> words(std::string_view line) {
    std::vector<std::string> out;
    for (size_t at = 0; at < line.size();) {
        const size_t sp = std::min(line.find(' ', at), line.size());
        if (sp > at) out.emplace_back(line.substr(at, sp - at));
        at = sp + 1;
    }
    return out;
}

/// Apply one `set` or `bypass` line to `s`; false when it is not one (a torn or foreign line).
bool applyLine(config::Session& s, std::string_view line) {
    const auto w = words(line);
    if (w.size() == 3 && w[0] == "set") {
        const size_t dot = w[1].find('.');
        const auto value = parseDecimal(w[2]);
        if (dot == std::string::npos || !value) return false;
        config::NodeSpec* n = findNode(s, w[1].substr(0, dot));
        if (!n) return false;
        const std::string param = w[1].substr(dot + 1);
        for (auto& p : n->params)
            if (p.id == param) {
                p.value = *value;
                return true;
            }
        n->params.push_back(config::ParamSetting{param, *value, {}});
        return true;
    }
    if (w.size() == 3 && w[0] == "bypass" && (w[2] == "on" || w[2] == "off")) {
        config::NodeSpec* n = findNode(s, w[1]);
        if (!n) return false;
        n->bypass = w[2] == "on";
        return true;
    }
    return false;
}
}  // namespace

std::string recoveryPath(const std::string& sessionPath) {
    const std::filesystem::path p(sessionPath);
    return (p.parent_path() / ("." + p.filename().string() + ".recover")).string();
}

Result<Recovered> readRecovery(const std::string& recoveryFile, const std::string& sessionPath) {
    auto text = files::readRegularFile(recoveryFile, kMaxRecoveryBytes, "recovery file");
    if (!text) return Error{text.error()};
    const std::string& t = text.value();
    const std::string name = printable(recoveryFile, kPathChars);
    if (t.rfind(kHeader, 0) != 0) return Error{name + ": not a rackterm recovery file; remove it or leave it"};
    std::optional<config::Session> session;
    Recovered out;
    size_t at = std::strlen(kHeader);
    while (at < t.size()) {
        const size_t eol = t.find('\n', at);
        if (eol == std::string::npos) break;  // a line cut short: the process died while writing it
        const std::string_view line(t.data() + at, eol - at);
        at = eol + 1;
        if (line.rfind("session ", 0) == 0) continue;
        if (line.rfind("doc ", 0) == 0) {
            const auto bytes = parseDecimal(line.substr(4));
            if (!bytes || *bytes < 0 || at + static_cast<size_t>(*bytes) > t.size()) break;  // cut short
            const std::string doc = t.substr(at, static_cast<size_t>(*bytes));
            at += static_cast<size_t>(*bytes);
            if (at < t.size() && t[at] == '\n') ++at;
            auto parsed = config::parseSession(doc, sessionPath);
            if (!parsed) return Error{name + ": the session it holds does not load: " + parsed.error()};
            session = std::move(parsed.value());
            out.changes = 0;
            continue;
        }
        if (!session || !applyLine(*session, line)) break;  // nothing after an unknown line is trusted
        ++out.changes;
    }
    if (!session) return Error{name + ": holds no complete session (it was cut short); `discard` removes it"};
    session->path = sessionPath;
    // Saving edits the file as it is on disk now, keeping its comments.
    if (auto disk = files::readRegularFile(sessionPath, files::kMaxTextFileBytes, "session file")) session->sourceText = disk.value();
    out.session = std::move(*session);
    return out;
}

RecoveryJournal::RecoveryJournal(const std::string& sessionPath) : sessionPath_(sessionPath) {
    if (sessionPath.empty()) return;
    path_ = recoveryPath(sessionPath);
    const long long mine = mtimeNs(path_), theirs = mtimeNs(sessionPath);
    if (mine < 0) return;
    if (mine >= theirs) {
        offeredFile_ = path_;
        offerText_ = printable(sessionPath, kPathChars) + " has unsaved edits from " + localTime(mine) + " in " +
                     printable(path_, kPathChars) + ": `recover` brings them back, `discard` drops them";
    } else {
        spdlog::info("{} is older than the session (saved since); the next edit replaces it", printable(path_, kPathChars));
    }
}

RecoveryJournal::~RecoveryJournal() {
    if (fd_ >= 0) ::close(fd_);
}

void RecoveryJournal::closeOffer() {
    if (offeredFile_.empty()) return;
    std::error_code ec;
    if (!(offeredFile_ == path_ && started_)) std::filesystem::remove(offeredFile_, ec);
    offeredFile_.clear();
    offerText_.clear();
}

RecoveryJournal::Seen RecoveryJournal::look(const Runtime& rt, bool withStructure) const {
    Seen s;
    const size_t nodes = rt.nodeCount();
    s.ids.reserve(nodes);
    s.values.resize(nodes);
    s.bypass.resize(nodes);
    for (size_t n = 0; n < nodes; ++n) {
        const config::NodeSpec& spec = rt.nodeSpec(n);
        s.ids.push_back(spec.id);
        for (const auto& p : spec.params) s.values[n].push_back(p.value);
        s.bypass[n] = spec.bypass;
        if (!withStructure) continue;
        s.structure += spec.id + '\x1f' + spec.processor + '\x1f' + spec.path + '\x1f' + spec.file + '\x1f';
        if (spec.watch) s.structure += spec.watch->source + '\x1f' + spec.watch->build + '\x1f';
        for (const auto& p : spec.params) s.structure += p.id + ',';
        s.structure += '\x1e';
    }
    if (withStructure && !rt.isChain())
        for (const auto& c : rt.connections())
            s.structure += c.from + '>' + c.to + '@' + formatPlain(c.gainDb) + (c.feedback ? "f" : "") + '\x1e';
    return s;
}

bool RecoveryJournal::append(const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            spdlog::warn("cannot write the recovery file {}: {}; unsaved edits are not protected until `save`",
                         printable(path_, kPathChars), std::strerror(errno));
            failed_ = true;
            return false;
        }
        done += static_cast<size_t>(n);
    }
    ++records_;
    bytes_ += text.size();
    return true;
}

void RecoveryJournal::compact(const Runtime& rt, const Seen& now) {
    // The file as one doc record, swapped in whole (temp file, fsync, rename).
    const std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;  // keep appending to the long one
    std::swap(fd, fd_);
    bytes_ = 0;
    const bool ok = append(std::string(kHeader) + "session " + absolutePath(sessionPath_) + "\n");
    if (ok) writeDoc(rt, now);
    if (ok && !failed_ && ::fdatasync(fd_) == 0 && ::rename(tmp.c_str(), path_.c_str()) == 0) {
        ::close(fd);
        return;
    }
    ::close(fd_);  // the long file stays as it was
    fd_ = fd;
    ::unlink(tmp.c_str());
}

void RecoveryJournal::writeDoc(const Runtime& rt, const Seen& now) {
    const std::string text = config::sessionText(rt.document()).text;
    if (!append("doc " + std::to_string(text.size()) + "\n" + text + "\n")) return;
    written_ = now;
}

void RecoveryJournal::update(const Runtime& rt, double now) {
    if (path_.empty() || failed_) return;
    if (!rt.dirty()) {
        if (started_) remove();  // saved, or undone back to what the file holds
        return;
    }
    const uint64_t state = rt.journal().state(), structure = rt.structureSerial();
    const bool changed = state != lastState_ || structure != lastStructure_;
    if (started_ && !changed && now - lastLook_ < kLookSeconds) {
        syncIfDue(now);
        return;
    }
    const bool withStructure = !started_ || changed || now - lastStructureLook_ >= kStructureSeconds;
    lastState_ = state;
    lastStructure_ = structure;
    lastLook_ = now;
    if (withStructure) lastStructureLook_ = now;
    Seen cur = look(rt, withStructure);
    if (!withStructure) cur.structure = written_.structure;
    const size_t before = records_;
    if (!started_) {
        if (offeredFile_ == path_) {  // the earlier session's edits stay where `recover` finds them
            const std::string kept = path_ + "~";
            if (::rename(path_.c_str(), kept.c_str()) == 0) {
                offeredFile_ = kept;
                spdlog::info("the earlier unsaved edits stay in {} until `recover` or `discard`", printable(kept, kPathChars));
            }
        }
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd_ < 0) {
            spdlog::warn("cannot write the recovery file {}: {}; unsaved edits are not protected until `save`",
                         printable(path_, kPathChars), std::strerror(errno));
            failed_ = true;
            return;
        }
        started_ = true;
        if (!append(std::string(kHeader) + "session " + absolutePath(sessionPath_) + "\n")) return;
        writeDoc(rt, cur);
    } else if (cur.structure != written_.structure || cur.ids != written_.ids) {
        writeDoc(rt, cur);
    } else if (bytes_ > kCompactBytes) {
        compact(rt, cur);
    } else {
        std::string lines;
        for (size_t n = 0; n < cur.ids.size(); ++n) {
            const config::NodeSpec& spec = rt.nodeSpec(n);
            for (size_t p = 0; p < cur.values[n].size() && p < written_.values[n].size(); ++p)
                if (cur.values[n][p] != written_.values[n][p])
                    lines += "set " + cur.ids[n] + "." + spec.params[p].id + " " + formatPlain(cur.values[n][p]) + "\n";
            if (cur.bypass[n] != written_.bypass[n]) lines += "bypass " + cur.ids[n] + (cur.bypass[n] ? " on\n" : " off\n");
        }
        if (!lines.empty() && append(lines)) written_ = std::move(cur);
    }
    if (records_ != before && unsyncedSince_ < 0) unsyncedSince_ = now;
    syncIfDue(now);
}

void RecoveryJournal::syncIfDue(double now) {
    if (fd_ < 0 || unsyncedSince_ < 0 || now - unsyncedSince_ < kSyncSeconds) return;
    ::fdatasync(fd_);
    unsyncedSince_ = -1;
}

void RecoveryJournal::sync(const Runtime& rt) {
    lastLook_ = -1;  // look now, whatever the time
    lastState_ = UINT64_MAX;
    update(rt, nowSeconds());
    if (fd_ >= 0) ::fdatasync(fd_);
    unsyncedSince_ = -1;
}

void RecoveryJournal::remove() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (started_) {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    started_ = false;
    written_ = {};
    records_ = 0;
    bytes_ = 0;
    unsyncedSince_ = -1;
    lastState_ = lastStructure_ = UINT64_MAX;
}

}  // namespace rackterm::app
