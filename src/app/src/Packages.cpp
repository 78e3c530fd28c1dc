#include <rackterm/app/Packages.hpp>

#include <rackterm/app/ControlSocket.hpp>
#include <rackterm/app/Modes.hpp>
#include <rackterm/common/Files.hpp>
#include <rackterm/common/Limits.hpp>
#include <rackterm/common/Suggest.hpp>
#include <rackterm/common/Text.hpp>
#include <rackterm/config/Manifest.hpp>
#include <rackterm/loader/Loader.hpp>
#include <rackterm/loader/Plugins.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <elf.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#ifndef RACKTERM_SDK_SOURCE_INCLUDE
#define RACKTERM_SDK_SOURCE_INCLUDE ""
#endif
#ifndef RACKTERM_INSTALL_INCLUDE_SUBDIR
#define RACKTERM_INSTALL_INCLUDE_SUBDIR "include"
#endif

namespace rackterm::app {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxComponentBytes = 256ull << 20;  // one module file
constexpr uint64_t kMaxArchiveBytes = 1ull << 30;      // everything an archive unpacks to
constexpr size_t kMaxArchiveEntries = 10000;
constexpr const char* kStaging = ".staging";

std::string show(const std::string& path) { return printable(path, kPathChars); }

/// `items` joined with `separator`.
std::string joined(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
    return out;
}

/// libarchive's message for the last failure of `a`, printable.
std::string archiveError(archive* a) {
    const char* e = archive_error_string(a);
    return printable(e ? e : "?", 200);
}

/// The mode an installed or packed file gets: the manifest and README
/// readable, modules also executable (as a linker writes them).
mode_t fileMode(const std::string& rel) { return rel == config::kManifestName || rel == "README.md" ? 0644 : 0755; }

/// SHA-256 of the file at `path` as 64 hex digits, and its size.
Result<std::pair<std::string, uint64_t>> hashFile(const std::string& path) {
    auto fd = files::openRegularFile(path, "file");
    if (!fd) return Error{fd.error()};
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
        EVP_MD_CTX_free(ctx);
        ::close(fd.value());
        return Error{show(path) + ": cannot hash it: OpenSSL's SHA-256 is not available"};
    }
    std::vector<unsigned char> buf(1 << 16);
    uint64_t size = 0;
    while (true) {
        const ssize_t n = ::read(fd.value(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd.value());
            EVP_MD_CTX_free(ctx);
            return Error{show(path) + ": read failed (" + std::strerror(e) + ")"};
        }
        if (n == 0) break;
        EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
        size += static_cast<uint64_t>(n);
    }
    ::close(fd.value());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    EVP_MD_CTX_free(ctx);
    static const char* hex = "0123456789abcdef";
    std::string text;
    for (unsigned i = 0; i < len; ++i) {
        text += hex[digest[i] >> 4];
        text += hex[digest[i] & 15];
    }
    return std::make_pair(text, size);
}

std::string utcNow() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/// A name for a new entry that nothing else uses: PREFIX-PID-COUNTER-TIME.
std::string uniqueName(const std::string& prefix) {
    static unsigned counter = 0;
    return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1000000007);
}

/// The machine names of the ELF e_machine values rackterm is likely to meet.
std::string machineName(uint16_t m) {
    switch (m) {
        case EM_386: return "x86 (32-bit)";
        case EM_X86_64: return "x86-64";
        case EM_ARM: return "ARM (32-bit)";
        case EM_AARCH64: return "AArch64";
        case EM_RISCV: return "RISC-V";
        case EM_PPC64: return "PowerPC 64";
        case EM_S390: return "s390x";
        case EM_MIPS: return "MIPS";
        default: return "machine " + std::to_string(m);
    }
}

/// The first bytes of an ELF file's header: ident, type and machine.
struct ElfHead {
    unsigned char ident[EI_NIDENT];
    uint16_t type;
    uint16_t machine;
};

Result<ElfHead> readElfHead(const std::string& path) {
    ElfHead h{};
    std::ifstream in(path, std::ios::binary);
    if (!in.read(reinterpret_cast<char*>(&h), sizeof h))
        return Error{"is not an ELF file (too short); a component must be a built processor module (.so)"};
    if (std::memcmp(h.ident, ELFMAG, SELFMAG) != 0)
        return Error{"is not an ELF file; a component must be a built processor module (.so), not a script or source"};
    if (h.ident[EI_DATA] != ELFDATA2LSB && h.ident[EI_DATA] != ELFDATA2MSB) return Error{"has a bad ELF header (byte order)"};
    const bool swap = (h.ident[EI_DATA] == ELFDATA2LSB) != (std::endian::native == std::endian::little);
    if (swap) {
        h.type = static_cast<uint16_t>((h.type >> 8) | (h.type << 8));
        h.machine = static_cast<uint16_t>((h.machine >> 8) | (h.machine << 8));
    }
    return h;
}

/// Why `path` is not an ELF shared object rackterm can load here, or "".
std::string checkElf(const std::string& path) {
    static const auto self = readElfHead("/proc/self/exe");
    auto h = readElfHead(path);
    if (!h) return h.error();
    if (h.value().type != ET_DYN)
        return std::string("is an ELF ") + (h.value().type == ET_EXEC ? "executable" : h.value().type == ET_REL ? "object file (.o)" : "file") +
               ", not a shared object; build the component as a MODULE library (.so)";
    if (!self) return {};
    const ElfHead& me = self.value();
    if (h.value().machine != me.machine || h.value().ident[EI_CLASS] != me.ident[EI_CLASS] ||
        h.value().ident[EI_DATA] != me.ident[EI_DATA]) {
        auto describe = [](const ElfHead& e) {
            return machineName(e.machine) + (e.ident[EI_CLASS] == ELFCLASS64 ? ", 64-bit" : ", 32-bit") +
                   (e.ident[EI_DATA] == ELFDATA2LSB ? " little-endian" : " big-endian");
        };
        return "is built for " + describe(h.value()) + " (ELF e_machine " + std::to_string(h.value().machine) +
               "), this machine runs " + describe(me) + "; build the package on this machine (or for it) and install that build";
    }
    return {};
}

/// Load module `path` the way a session would (the loader's ABI check and
/// table validation) and check that its processor id is `id`, in a child
/// process: a module whose initialisers crash or hang fails the check
/// instead of the installer. Returns "" or the problem (naming `shown`).
std::string loadInChild(const std::string& path, const std::string& shown, const std::string& id) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("cannot check it: pipe failed (") + std::strerror(errno) + ")";
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return std::string("cannot check it: fork failed (") + std::strerror(errno) + ")";
    }
    if (pid == 0) {
        ::close(fds[0]);
        ::setpgid(0, 0);  // a process group of its own: whatever the module starts is ended with it
        // A crash is the child's death by its signal, whatever handler a sanitizer runtime set.
        for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) ::signal(sig, SIG_DFL);
        std::string why;
        auto module = loader::loadModule(path);
        if (!module) {
            why = module.error();
            if (const size_t at = why.find(path); at != std::string::npos) why.replace(at, path.size(), shown);
        } else if (const rackterm_processor_v2& d = module.value()->descriptor(); id != d.id) {
            why = show(shown) + " is processor " + quote(d.id) + ", not " + quote(id) +
                  "; the component id and the processor's kId must be the same: set id = \"" + d.id +
                  "\" or rename the processor";
        }
        // 'K' alone: checked and fine; 'E' and the reason: refused. A module
        // that exits (or closes the pipe) during its load never writes 'K'.
        const std::string answer = why.empty() ? std::string("K") : "E" + why;
        size_t done = 0;
        while (done < answer.size()) {
            const ssize_t n = ::write(fds[1], answer.data() + done, answer.size() - done);
            if (n <= 0) break;
            done += static_cast<size_t>(n);
        }
        ::_exit(0);
    }
    ::setpgid(pid, pid);  // also here: no race with the child's own call
    ::close(fds[1]);
    std::string why;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool timedOut = false;
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            timedOut = true;
            break;
        }
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        char buf[1024];
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (why.size() < 4096) why.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    // The pipe closed (or the time ran out): the child ends now, or is ended at the deadline.
    int status = 0;
    while (true) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) break;
        if (timedOut || std::chrono::steady_clock::now() >= until) {
            timedOut = true;
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        ::poll(nullptr, 0, 5);
    }
    ::kill(-pid, SIGKILL);  // anything the module started while it loaded
    if (timedOut) return show(shown) + " did not finish loading within 10 s (its initialisers hang); fix the module";
    if (WIFSIGNALED(status))
        return show(shown) + " crashed while loading (" + strsignal(WTERMSIG(status)) + "); fix the module's initialisers";
    if (why == "K") return {};
    if (why.size() > 1 && why[0] == 'E') return why.substr(1);
    return show(shown) + " ended the process while it was loading (exit status " +
           std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + "); a module must not exit; fix its initialisers";
}

/// True when `inner` is `outer` or inside it (both canonical).
bool inside(const fs::path& outer, const fs::path& inner) {
    auto o = outer.begin(), i = inner.begin();
    for (; o != outer.end(); ++o, ++i)
        if (i == inner.end() || *o != *i) return false;
    return true;
}

/// The files a package is made of, relative to its root: the manifest,
/// each component and README.md when there is one.
std::vector<std::string> packageFiles(const config::Manifest& m, const fs::path& root) {
    std::vector<std::string> out = {config::kManifestName};
    for (const auto& c : m.components) out.push_back(fs::path(c.path).lexically_normal().string());
    std::error_code ec;
    if (fs::is_regular_file(root / "README.md", ec)) out.push_back("README.md");
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

/// Holds the install lock (packagesRoot()/.lock, flock) while it lives.
class InstallLock {
public:
    static Result<InstallLock> take(const std::string& root) {
        std::error_code ec;
        fs::create_directories(root, ec);
        if (ec) return Error{"cannot create " + show(root) + ": " + ec.message() + "; check XDG_DATA_HOME and its permissions"};
        const std::string path = root + "/.lock";
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) return Error{"cannot open " + show(path) + ": " + std::strerror(errno)};
        if (::flock(fd, LOCK_EX) != 0) {
            const int e = errno;
            ::close(fd);
            return Error{"cannot lock " + show(path) + ": " + std::strerror(e)};
        }
        return InstallLock(fd);
    }
    InstallLock(InstallLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    ~InstallLock() {
        if (fd_ >= 0) ::close(fd_);
    }

private:
    explicit InstallLock(int fd) : fd_(fd) {}
    int fd_;
};

/// The name an installed version gets while it is set aside (the
/// two-rename fallback): "old@ID@UNIQUE" ('@' is never in an id).
std::string asideName(const std::string& id) { return "old@" + id + "@" + uniqueName("aside"); }

/// Remove a folder tree, making its folders writable first (an archive may have made them read-only).
void removeTree(const fs::path& p) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    ::chmod(p.c_str(), 0700);
    fs::remove_all(p, ec);
}

/// What interrupted installs left in the staging folder (under the lock):
/// a previous version set aside whose package folder is missing (killed
/// between the fallback's two renames) goes back in place; the rest goes.
void cleanStaging(const std::string& root) {
    std::error_code ec;
    const fs::path staging = fs::path(root) / kStaging;
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(staging, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
    for (const fs::path& e : entries) {
        const std::string name = e.filename().string();
        if (name.rfind("old@", 0) == 0) {
            const size_t at = name.find('@', 4);
            const std::string id = at == std::string::npos ? "" : name.substr(4, at - 4);
            const fs::path target = fs::path(root) / id;
            if (config::validPackageId(id) && !fs::exists(fs::symlink_status(target, ec)) && ::rename(e.c_str(), target.c_str()) == 0) {
                files::syncFolder(root);
                continue;
            }
        }
        removeTree(e);
    }
}

/// Unpack a .tar.gz into `into` (a new folder) with libarchive's safe
/// extraction: no absolute paths, no "..", no writing through symlinks;
/// regular files, folders and symlinks only; bounded in size and count.
Result<void> unpackArchive(const std::string& file, const std::string& into) {
    archive* in = archive_read_new();
    archive_read_support_filter_gzip(in);
    archive_read_support_format_tar(in);
    archive* out = archive_write_disk_new();
    // Entry names are checked below (relative, no "..") and then put under
    // `into` (canonical, so its own folders pass the symlink check).
    // No ARCHIVE_EXTRACT_PERM: an archive's folder modes (0555, 0000) must not stop the cleanup.
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
    auto finish = [&](std::string error) -> Result<void> {
        archive_read_free(in);
        archive_write_free(out);
        if (!error.empty()) return Error{show(file) + ": " + error};
        return {};
    };
    if (archive_read_open_filename(in, file.c_str(), 1 << 16) != ARCHIVE_OK)
        return finish(std::string("cannot read it as a .tar.gz (") + archiveError(in) +
                      "); give a package folder or an archive made by `rackterm package pack`");
    uint64_t total = 0;
    size_t entries = 0;
    archive_entry* e = nullptr;
    while (true) {
        const int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK) return finish(std::string("damaged archive: ") + archiveError(in));
        if (++entries > kMaxArchiveEntries) return finish("holds more than " + std::to_string(kMaxArchiveEntries) + " entries; a package is a few files");
        const std::string name = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
        const mode_t type = archive_entry_filetype(e);
        if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
            return finish(quote(name) + " is not a file, folder or symlink; a package holds only those");
        if (archive_entry_hardlink(e)) return finish(quote(name) + " is a hard link; package archives hold plain files");
        if (fs::path(name).is_absolute()) return finish(quote(name) + " is an absolute path; package archives hold relative paths");
        for (const auto& part : fs::path(name))
            if (part == "..") return finish(quote(name) + " has a '..'; package archives stay inside their folder");
        total += static_cast<uint64_t>(std::max<la_int64_t>(0, archive_entry_size(e)));
        if (total > kMaxArchiveBytes) return finish("unpacks to more than 1 GiB; a package is a few modules");
        archive_entry_set_pathname(e, (fs::path(into) / name).string().c_str());
        if (archive_write_header(out, e) != ARCHIVE_OK)
            return finish(quote(name) + ": " + archiveError(out));
        if (type == AE_IFREG) {
            const void* block;
            size_t size;
            la_int64_t offset;
            int rr;
            while ((rr = archive_read_data_block(in, &block, &size, &offset)) == ARCHIVE_OK)
                if (archive_write_data_block(out, block, size, offset) != ARCHIVE_OK)
                    return finish(quote(name) + ": " + archiveError(out));
            if (rr != ARCHIVE_EOF) return finish(std::string("damaged archive: ") + archiveError(in));
        }
        if (archive_write_finish_entry(out) != ARCHIVE_OK)
            return finish(quote(name) + ": " + archiveError(out));
    }
    return finish("");
}

/// The package folder inside an unpacked archive: its root, or its one folder.
std::string packageRootIn(const std::string& unpacked) {
    std::error_code ec;
    if (fs::exists(fs::path(unpacked) / config::kManifestName, ec)) return unpacked;
    std::vector<fs::path> dirs;
    for (fs::directory_iterator it(unpacked, ec), end; !ec && it != end; it.increment(ec))
        if (it->is_directory(ec)) dirs.push_back(it->path());
    if (dirs.size() == 1 && fs::exists(dirs[0] / config::kManifestName, ec)) return dirs[0].string();
    return {};
}

/// A session's `list packages` reply as id -> "nodes a, b"; an error when
/// it cannot be asked (busy past the time-out, an older rackterm).
Result<std::map<std::string, std::string>> packagesUsedBy(const std::string& session) {
    std::map<std::string, std::string> used;
    const SessionAnswer a = askSession(session, "list packages", 10.0);
    if (!a.error.empty()) return Error{"session " + session + " did not answer: " + a.error};
    if (a.code != 0 || a.reply.rfind("ok ", 0) != 0) return Error{"session " + session + " answered " + quote(a.reply)};
    // "ok ID VERSION (nodes a, b); ID2 ..." or "ok no packages"
    std::string rest = a.reply.substr(3);
    size_t start = 0;
    while (start < rest.size()) {
        size_t end = rest.find("; ", start);
        if (end == std::string::npos) end = rest.size();
        const std::string item = rest.substr(start, end - start);
        const size_t space = item.find(' ');
        const size_t paren = item.find('(');
        if (space != std::string::npos && paren != std::string::npos && item.back() == ')')
            used[item.substr(0, space)] = item.substr(paren + 1, item.size() - paren - 2);
        start = end + 2;
    }
    return used;
}

Result<InstalledPackage> readInstalled(const fs::path& dir) {
    auto m = config::loadManifest((dir / config::kManifestName).string());
    if (!m) return Error{m.error()};
    InstalledPackage p;
    p.id = m.value().id;
    p.version = m.value().version.text;
    p.description = m.value().description;
    p.dir = dir.string();
    for (const auto& c : m.value().components) p.components.emplace_back(c.id, (dir / c.path).lexically_normal().string());
    try {
        const toml::table r = toml::parse_file((dir / kReceiptName).string());
        p.installedAt = r["installed_at"].value_or(std::string());
        p.source = r["source"].value_or(std::string());
    } catch (const toml::parse_error& e) {
        return Error{show((dir / kReceiptName).string()) + ": " + printable(e.description(), 200)};
    }
    return p;
}

}  // namespace

std::string packagesRoot() {
    if (const char* data = std::getenv("XDG_DATA_HOME"); data && *data == '/') return std::string(data) + "/rackterm/packages";
    const char* home = std::getenv("HOME");
    return std::string(home && *home ? home : "/tmp") + "/.local/share/rackterm/packages";
}

std::vector<InstalledPackage> installedPackages() {
    std::vector<InstalledPackage> out;
    std::error_code ec;
    for (fs::directory_iterator it(packagesRoot(), ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.empty() || name[0] == '.' || !it->is_directory(ec)) continue;
        auto p = readInstalled(it->path());
        if (p && p.value().id == name) out.push_back(std::move(p.value()));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

namespace {

/// "no installed package 'x' (did you mean 'y'?); REMEDY", over what is installed.
Error notInstalled(const std::string& id, const std::string& remedy) {
    std::vector<std::string> ids;
    for (const auto& p : installedPackages()) ids.push_back(p.id);
    return Error{"no installed package " + quote(id) + didYouMean(id, ids) + "; " + remedy};
}

/// A failed check's problems, one per line.
Error problemsOf(const PackageCheck& check) { return Error{joined(check.problems, "\n")}; }

}  // namespace

bool isPackageReference(std::string_view processor) {
    if (loader::isPluginReference(processor)) return false;
    const size_t slash = processor.find('/');
    if (slash == std::string_view::npos || processor.find('/', slash + 1) != std::string_view::npos) return false;
    return config::validPackageId(processor.substr(0, slash)) && slash + 1 < processor.size();
}

std::string packageIdOf(std::string_view processor) {
    return isPackageReference(processor) ? std::string(processor.substr(0, processor.find('/'))) : std::string();
}

std::vector<std::string> packageComponentNames() {
    std::vector<std::string> out;
    for (const auto& p : installedPackages())
        for (const auto& c : p.components) out.push_back(p.id + "/" + c.first);
    return out;
}

std::string installedVersion(const std::string& id) {
    if (!config::validPackageId(id)) return {};
    auto m = config::loadManifest(packagesRoot() + "/" + id + "/" + config::kManifestName);
    return m ? m.value().version.text : std::string();
}

Result<std::string> resolvePackageComponent(const std::string& reference) {
    const std::string id = packageIdOf(reference);
    const std::string component = reference.substr(reference.find('/') + 1);
    const fs::path dir = fs::path(packagesRoot()) / id;
    std::error_code ec;
    if (id.empty() || !fs::is_directory(dir, ec))
        return notInstalled(id, "`rackterm package list` shows what is installed, `rackterm install DIR` adds one");
    auto m = config::loadManifest((dir / config::kManifestName).string());
    if (!m) return Error{"package " + quote(id) + " is damaged: " + m.error() + "; install it again"};
    const config::Component* c = m.value().find(component);
    if (!c) {
        std::vector<std::string> ids, names;
        for (const auto& x : m.value().components) {
            ids.push_back(x.id);
            names.push_back(id + "/" + x.id);
        }
        return Error{"package " + quote(id) + " has no component " + quote(component) + didYouMean(component, ids) +
                     "; it has " + joined(names)};
    }
    return (dir / c->path).lexically_normal().string();
}

PackageCheck checkPackage(const std::string& dirIn) {
    PackageCheck check;
    auto problem = [&](std::string s) { check.problems.push_back(std::move(s)); };
    std::error_code ec;
    if (!fs::is_directory(dirIn, ec)) {
        problem(show(dirIn) + ": not a folder; give a package folder (with " + config::kManifestName + ") or a .tar.gz");
        return check;
    }
    const fs::path root = fs::canonical(dirIn, ec);
    if (ec) {
        problem(show(dirIn) + ": " + ec.message());
        return check;
    }
    const std::string manifestPath = (fs::path(dirIn) / config::kManifestName).string();
    if (!fs::exists(manifestPath, ec)) {
        problem(show(manifestPath) + ": no manifest; a package folder has a " + config::kManifestName +
                " at its root (`rackterm package new NAME` makes one)");
        return check;
    }
    auto parsed = config::loadManifest(manifestPath);
    if (!parsed) {
        problem(parsed.error());
        return check;
    }
    const config::Manifest& m = parsed.value();
    if (m.apiVersion != RACKTERM_ABI_VERSION)
        problem(m.apiWhere.str() + ": api_version " + std::to_string(m.apiVersion) + " is not this rackterm's processor ABI (v" +
                std::to_string(RACKTERM_ABI_VERSION) + "); rebuild the components against this rackterm's rackterm/processor.h "
                "and set api_version = " + std::to_string(RACKTERM_ABI_VERSION));
    // The manifest and README.md are copied too: they may not lead outside either.
    for (const char* name : {config::kManifestName, "README.md"}) {
        const fs::path file = root / name;
        if (!fs::exists(fs::symlink_status(file, ec))) continue;
        const fs::path real = fs::canonical(file, ec);
        if (ec || !inside(root, real) || !fs::is_regular_file(real, ec))
            problem(show(file.string()) + (ec ? " does not resolve" : " resolves to " + show(real.string())) +
                    ", not a file inside the package folder (a symlink?); put the file itself in the package");
    }
    for (const config::Component& c : m.components) {
        const std::string where = c.pathWhere.str() + ": component " + quote(c.id) + ": ";
        const fs::path rel(c.path);
        if (rel.is_absolute()) {
            problem(where + "path " + quote(c.path) + " is absolute; give it relative to the package folder, e.g. \"build/lib" + c.id + ".so\"");
            continue;
        }
        if (std::any_of(rel.begin(), rel.end(), [](const fs::path& part) { return part == ".."; })) {
            problem(where + "path " + quote(c.path) + " has a '..'; every file of a package stays inside its folder");
            continue;
        }
        const fs::path full = root / rel;
        if (!fs::exists(fs::symlink_status(full, ec)) ) {
            problem(where + show(full.string()) + " does not exist; build the package first (cmake --build), or fix the path");
            continue;
        }
        const fs::path real = fs::canonical(full, ec);
        if (ec) {
            problem(where + show(full.string()) + " does not resolve (" + ec.message() + "); a dangling symlink?");
            continue;
        }
        if (!inside(root, real)) {
            problem(where + show(full.string()) + " resolves to " + show(real.string()) +
                    ", outside the package folder (a symlink); copy the file into the package instead");
            continue;
        }
        if (!fs::is_regular_file(real, ec)) {
            problem(where + show(full.string()) + " is not a regular file; name the built .so");
            continue;
        }
        if (const auto size = fs::file_size(real, ec); ec || size > kMaxComponentBytes) {
            problem(where + show(full.string()) + (ec ? " cannot be read: " + ec.message() : " is over 256 MiB; a processor module is far smaller"));
            continue;
        }
        if (std::string bad = checkElf(real.string()); !bad.empty()) {
            problem(where + show(full.string()) + " " + bad);
            continue;
        }
        // Hash first, then load: what install copies must hash the same, so a
        // module rebuilt while this runs is caught instead of installed unchecked.
        auto hash = hashFile(real.string());
        if (!hash) {
            problem(where + hash.error());
            continue;
        }
        if (std::string bad = loadInChild(real.string(), full.string(), c.id); !bad.empty()) problem(where + bad);
        else check.checkedHashes.emplace_back(fs::path(c.path).lexically_normal().string(), hash.value().first);
    }
    return check;
}

Result<std::string> installPackage(const std::string& source, const InstallOptions& options,
                                   const std::function<void(const std::string&)>& say) {
    std::error_code ec;
    if (!fs::exists(source, ec))
        return Error{show(source) + ": no such file or folder; give a package folder or a .tar.gz made by `rackterm package pack`"};
    if (!fs::is_directory(source, ec) && !fs::is_regular_file(source, ec))
        return Error{show(source) + ": not a folder or a regular file; give a package folder or a .tar.gz"};
    const std::string root = packagesRoot();
    auto lock = InstallLock::take(root);
    if (!lock) return Error{lock.error()};
    cleanStaging(root);
    const fs::path staging = fs::path(root) / kStaging;
    fs::create_directories(staging, ec);
    if (ec) return Error{"cannot create " + show(staging.string()) + ": " + ec.message()};
    // Remove what this install staged when it ends early (the next install would anyway).
    struct Cleanup {
        std::vector<fs::path> paths;
        ~Cleanup() {
            for (const auto& p : paths) removeTree(p);
        }
    } cleanup;
    std::string dir = source;
    std::string unpackedRoot;  // where an archive was unpacked, for messages
    const std::string absSource = fs::absolute(source, ec).lexically_normal().string();
    if (!fs::is_directory(source, ec)) {
        const fs::path unpacked = staging / uniqueName("unpack");
        cleanup.paths.push_back(unpacked);
        fs::create_directories(unpacked, ec);
        const std::string into = ec ? std::string() : fs::canonical(unpacked, ec).string();
        if (ec || into.empty()) return Error{"cannot create " + show(unpacked.string()) + ": " + ec.message()};
        if (auto r = unpackArchive(source, into); !r) return Error{r.error()};
        unpackedRoot = unpacked.string();
        dir = packageRootIn(unpacked.string());
        if (dir.empty())
            return Error{show(source) + ": the archive has no " + config::kManifestName +
                         " at its root or in its one folder; make archives with `rackterm package pack`"};
    }
    // Validate everything before anything is copied.
    PackageCheck check = checkPackage(dir);
    if (!check.ok()) {
        // From an archive: name the archive and the path inside it, not the staging copy.
        std::vector<std::string> prefixes;
        if (!unpackedRoot.empty()) {
            prefixes.push_back(unpackedRoot + "/");
            if (const std::string real = fs::canonical(unpackedRoot, ec).string(); !ec && real != unpackedRoot) prefixes.push_back(real + "/");
        }
        for (std::string& p : check.problems)
            for (const std::string& prefix : prefixes)
                for (size_t at = p.find(prefix); at != std::string::npos; at = p.find(prefix, at + source.size() + 1))
                    p.replace(at, prefix.size(), source + ":");
        return problemsOf(check);
    }
    const config::Manifest m = config::loadManifest((fs::path(dir) / config::kManifestName).string()).value();
    const fs::path target = fs::path(root) / m.id;
    const bool replacing = fs::exists(target, ec);
    std::string oldVersion;
    if (replacing) {
        auto old = config::loadManifest((target / config::kManifestName).string());
        if (old) {
            oldVersion = old.value().version.text;
            const int order = config::compareVersions(m.version, old.value().version);
            if (order < 0 && !options.downgrade)
                return Error{m.versionWhere.str() + ": " + m.id + " " + oldVersion + " is installed; " + m.version.text +
                             " is older: add --downgrade to install it anyway"};
        }
    }
    // Stage: copy and fsync every file, then the receipt, then the folders.
    const fs::path stage = staging / uniqueName(m.id);
    cleanup.paths.push_back(stage);
    const fs::path canonicalDir = fs::canonical(dir, ec);
    toml::array fileList;
    for (const std::string& rel : packageFiles(m, canonicalDir)) {
        const fs::path from = fs::canonical(canonicalDir / rel, ec);
        const fs::path to = stage / rel;
        fs::create_directories(to.parent_path(), ec);
        if (ec) return Error{"cannot create " + show(to.parent_path().string()) + ": " + ec.message()};
        if (auto r = files::copyRegularFile(from.string(), to.string(), kMaxComponentBytes); !r) return Error{r.error()};
        ::chmod(to.c_str(), fileMode(rel));
        auto hash = hashFile(to.string());
        if (!hash) return Error{hash.error()};
        for (const auto& [checked, sha] : check.checkedHashes)
            if (checked == rel && sha != hash.value().first)
                return Error{show(from.string()) + " changed while it was being installed (a build running?); install again when it is done"};
        fileList.push_back(toml::table{{"path", rel},
                                       {"size", static_cast<int64_t>(hash.value().second)},
                                       {"sha256", hash.value().first}});
    }
    toml::table receipt{{"id", m.id},
                        {"version", m.version.text},
                        {"installed_at", utcNow()},
                        {"source", absSource},
                        {"installed_by", "rackterm " RACKTERM_VERSION_TEXT},
                        {"file", std::move(fileList)}};
    std::ostringstream text;
    text << "# Written by `rackterm install`; `rackterm package verify " << m.id << "` checks the files against it.\n"
         << receipt << "\n";
    if (auto r = files::replaceFile((stage / kReceiptName).string(), text.str()); !r) return Error{r.error()};
    for (auto it = fs::recursive_directory_iterator(stage, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
        if (it->is_directory()) files::syncFolder(it->path().string());
    files::syncFolder(stage.string());
    // One step: a new package is renamed into place; an installed one is exchanged with the staged one.
    if (!replacing) {
        if (::rename(stage.c_str(), target.c_str()) != 0)
            return Error{"cannot move the package into " + show(target.string()) + ": " + std::strerror(errno)};
    } else {
        const auto exchanged = files::exchangePaths(stage.string(), target.string());
        if (!exchanged) return Error{exchanged.error()};
        if (!exchanged.value()) {
            // No exchange on this file system: the old folder goes aside, the
            // new one in. A kill between the two leaves the old one aside,
            // and the next install (cleanStaging) puts it back.
            const fs::path aside = staging / asideName(m.id);
            if (::rename(target.c_str(), aside.c_str()) != 0)
                return Error{"cannot replace " + show(target.string()) + ": " + std::strerror(errno)};
            if (::rename(stage.c_str(), target.c_str()) != 0) {
                const std::string why = std::strerror(errno);
                ::rename(aside.c_str(), target.c_str());  // the previous version back in place
                return Error{"cannot replace " + show(target.string()) + ": " + why};
            }
            // The new version is in place: the old one is no longer one to restore.
            const fs::path gone = staging / uniqueName("replaced-" + m.id);
            cleanup.paths.push_back(::rename(aside.c_str(), gone.c_str()) == 0 ? gone : aside);
        }
        // `stage` now holds the previous version: the cleanup removes it.
    }
    files::syncFolder(root);
    files::syncFolder(staging.string());
    std::vector<std::string> names;
    for (const auto& c : m.components) names.push_back(m.id + "/" + c.id);
    const std::string summary = "installed " + m.id + " " + m.version.text + (replacing ? " (was " + oldVersion + ")" : "") +
                                " in " + show(target.string()) + ": " + joined(names);
    say(summary);
    if (replacing && options.notifySessions) {
        for (const std::string& session : liveSessions()) {
            const auto used = packagesUsedBy(session);
            if (!used) {
                say(used.error() + "; if it uses " + m.id + ", run `upgrade " + m.id + "` there");
                continue;
            }
            if (!used.value().count(m.id)) continue;
            const SessionAnswer a = askSession(session, "upgrade " + m.id, options.sessionTimeoutSeconds);
            say("session " + session + ": " + (a.error.empty() ? a.reply : "error: " + a.error));
        }
    }
    return summary;
}

Result<std::vector<std::string>> verifyPackage(const std::string& id) {
    const fs::path dir = fs::path(packagesRoot()) / id;
    std::error_code ec;
    if (!config::validPackageId(id) || !fs::is_directory(dir, ec)) return notInstalled(id, "`rackterm package list` shows them");
    toml::table receipt;
    try {
        receipt = toml::parse_file((dir / kReceiptName).string());
    } catch (const toml::parse_error& e) {
        return Error{show((dir / kReceiptName).string()) + ": the receipt cannot be read (" + printable(e.description(), 200) +
                     "); install the package again"};
    }
    std::vector<std::string> problems;
    std::set<std::string> listed = {kReceiptName};
    const toml::array* list = receipt["file"].as_array();
    if (!list) return Error{show((dir / kReceiptName).string()) + ": the receipt lists no files; install the package again"};
    for (const toml::node& n : *list) {
        const toml::table* t = n.as_table();
        if (!t) continue;
        const std::string rel = (*t)["path"].value_or(std::string());
        const int64_t size = (*t)["size"].value_or(int64_t{-1});
        const std::string sha = (*t)["sha256"].value_or(std::string());
        listed.insert(rel);
        const fs::path file = dir / rel;
        if (rel.empty() || !fs::exists(fs::symlink_status(file, ec))) {
            problems.push_back(show(file.string()) + ": missing");
            continue;
        }
        auto hash = hashFile(file.string());
        if (!hash) {
            problems.push_back(hash.error());
            continue;
        }
        if (static_cast<int64_t>(hash.value().second) != size || hash.value().first != sha)
            problems.push_back(show(file.string()) + ": changed (" + std::to_string(hash.value().second) + " bytes, sha256 " +
                               hash.value().first.substr(0, 12) + "..., the receipt says " + std::to_string(size) +
                               " bytes, " + sha.substr(0, 12) + "...)");
    }
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_directory()) continue;
        const std::string rel = fs::relative(it->path(), dir, ec).string();
        if (!listed.count(rel)) problems.push_back(show(it->path().string()) + ": not in the receipt (added after the install)");
    }
    return problems;
}

Result<std::vector<std::string>> sessionsUsing(const std::string& id) {
    std::vector<std::string> out;
    for (const std::string& session : liveSessions()) {
        const auto used = packagesUsedBy(session);
        if (!used) return Error{used.error() + "; cannot tell whether it uses " + id};
        if (auto it = used.value().find(id); it != used.value().end()) out.push_back(session + " (" + it->second + ")");
    }
    return out;
}

Result<std::string> uninstallPackage(const std::string& id, bool force, const std::function<void(const std::string&)>& say) {
    const std::string root = packagesRoot();
    const fs::path dir = fs::path(root) / id;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) return notInstalled(id, "`rackterm package list` shows them");
    auto lock = InstallLock::take(root);
    if (!lock) return Error{lock.error()};
    cleanStaging(root);  // an interrupted install's previous version goes back first
    if (!config::validPackageId(id) || !fs::is_directory(dir, ec)) return notInstalled(id, "`rackterm package list` shows them");
    const auto using_ = sessionsUsing(id);
    if (!using_ && !force) return Error{using_.error() + "; try again, or use --force"};
    const std::vector<std::string> users = using_ ? using_.value() : std::vector<std::string>{};
    if (!users.empty() || (!using_ && force)) {
        if (!force)
            return Error{"package " + id + " is in use by session " + joined(users) +
                         "; remove those nodes or stop the session, or use --force (their nodes fade to bypass and unload)"};
        for (const std::string& session : liveSessions()) {
            const auto used = packagesUsedBy(session);
            if (used && !used.value().count(id)) continue;  // one that cannot say is asked to unload anyway
            const SessionAnswer a = askSession(session, "unload " + id, 30.0);
            say("session " + session + ": " + (a.error.empty() ? a.reply : "error: " + a.error));
        }
    }
    const fs::path staging = fs::path(root) / kStaging;
    fs::create_directories(staging, ec);
    const fs::path aside = staging / uniqueName("removed-" + id);
    if (::rename(dir.c_str(), aside.c_str()) != 0)
        return Error{"cannot remove " + show(dir.string()) + ": " + std::strerror(errno)};
    files::syncFolder(root);
    fs::remove_all(aside, ec);
    return "uninstalled " + id;
}

namespace {

/// The SDK include folder this rackterm was built with: installed
/// (<exe>/../include) first, else the source tree's.
std::string sdkIncludeDir() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        const fs::path installed = exe.parent_path().parent_path() / RACKTERM_INSTALL_INCLUDE_SUBDIR;
        if (fs::exists(installed / "rackterm/Processor.hpp", ec)) return installed.string();
    }
    const fs::path source = RACKTERM_SDK_SOURCE_INCLUDE;
    if (!source.empty() && fs::exists(source / "rackterm/Processor.hpp", ec)) return source.string();
    return {};
}

std::string className(const std::string& component) {
    std::string out;
    bool upper = true;
    for (char c : component) {
        if (c == '_') {
            upper = true;
            continue;
        }
        out += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
        upper = false;
    }
    if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "P" + out;
    return out;
}

Result<void> writeNew(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) return Error{"cannot write " + show(path.string())};
    return {};
}

}  // namespace

Result<std::string> scaffoldPackage(const std::string& name, const std::string& dirIn) {
    if (!config::validPackageId(name))
        return Error{"package name " + quote(name) + " must be 1 to 64 of [a-z0-9_-] starting with a letter or digit, e.g. mydrive"};
    const std::string dir = dirIn.empty() ? name : dirIn;
    std::error_code ec;
    if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec)))
        return Error{show(dir) + " exists and is not an empty folder; give a new folder: rackterm package new " + name + " DIR"};
    const std::string sdk = sdkIncludeDir();
    if (sdk.empty())
        return Error{"cannot find this rackterm's SDK header (rackterm/Processor.hpp) next to it or in its source tree; "
                     "install rackterm (cmake --install build) and try again"};
    fs::create_directories(dir, ec);
    if (ec) return Error{"cannot create " + show(dir) + ": " + ec.message()};
    const fs::path root = fs::absolute(dir, ec).lexically_normal();
    // The template is a drive: its one component is NAME/drive (rename it in
    // the manifest and kId together when it becomes something else).
    const std::string component = "drive";
    const std::string cls = className(component);
    const std::string so = "build/lib" + component + ".so";
    std::string manifest = "# A rackterm processor package (docs/packages.md).\n"
                           "schema_version = 1\n"
                           "id = \"" + name + "\"\n"
                           "version = \"0.1.0\"\n"
                           "api_version = 2\n"
                           "description = \"" + name + ": a soft-clipping drive\"\n\n"
                           "[[component]]\n"
                           "id = \"" + component + "\"\n"
                           "path = \"" + so + "\"\n"
                           "kind = \"dsp\"\n";
    std::string cmake =
        "# Build: cmake -S . -B build && cmake --build build   (the module lands in build/, as the manifest says)\n"
        "cmake_minimum_required(VERSION 3.22)\n"
        "project(" + component + " CXX)\n"
        "set(CMAKE_CXX_STANDARD 20)\n"
        "set(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
        "if(NOT CMAKE_BUILD_TYPE)\n  set(CMAKE_BUILD_TYPE Release)\nendif()\n\n"
        "# The rackterm SDK header: the rackterm that made this project recorded where its own is.\n"
        "find_path(RACKTERM_SDK_INCLUDE rackterm/Processor.hpp\n"
        "  HINTS \"" + sdk + "\" /usr/local/include /usr/include REQUIRED)\n\n"
        "add_library(" + component + " MODULE " + component + ".cpp)\n"
        "target_include_directories(" + component + " PRIVATE ${RACKTERM_SDK_INCLUDE})\n"
        "target_compile_options(" + component + " PRIVATE -Wall -Wextra $<$<CXX_COMPILER_ID:GNU>:-fno-gnu-unique>)\n"
        "set_target_properties(" + component + " PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON\n"
        "  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/build)\n";
    std::string source =
        "// " + name + ": a soft-clipping drive (tanh) with two parameters, smoothed per sample.\n"
        "// Edit it while it plays: rackterm try.toml rebuilds and swaps it on save.\n"
        "#include <rackterm/Processor.hpp>\n\n"
        "#include <array>\n#include <cmath>\n\n"
        "class " + cls + " {\n"
        "public:\n"
        "    static constexpr const char* kId = \"" + component + "\";\n"
        "    static constexpr const char* kName = \"" + name + "\";\n"
        "    static constexpr const char* kVersion = \"0.1.0\";\n"
        "    static constexpr std::array<rackterm_param_info, 2> kParams = {{\n"
        "        {\"drive_db\", \"Drive\", \"dB\", 0.0f, 36.0f, 6.0f, 0, nullptr},\n"
        "        {\"output_db\", \"Output\", \"dB\", -24.0f, 12.0f, -3.0f, 0, nullptr},\n"
        "    }};\n\n"
        "    " + cls + "(double sampleRateHz, uint32_t) : coeff_(static_cast<float>(1.0 - std::exp(-1.0 / (0.005 * sampleRateHz)))) {}\n"
        "    void reset() noexcept { drive_ = output_ = -1.0f; }\n\n"
        "    void process(const float* const* in, float* const* out, uint32_t frames, const float* params) noexcept {\n"
        "        const float driveTarget = std::pow(10.0f, params[0] / 20.0f);\n"
        "        const float outputTarget = std::pow(10.0f, params[1] / 20.0f);\n"
        "        if (drive_ < 0.0f) drive_ = driveTarget, output_ = outputTarget;  // no ramp from silence\n"
        "        for (uint32_t f = 0; f < frames; ++f) {\n"
        "            drive_ += coeff_ * (driveTarget - drive_);  // one-pole smoothing, 5 ms: no zipper noise\n"
        "            output_ += coeff_ * (outputTarget - output_);\n"
        "            for (int c = 0; c < 2; ++c) out[c][f] = std::tanh(in[c][f] * drive_) * output_;\n"
        "        }\n"
        "    }\n\n"
        "private:\n"
        "    float coeff_;\n"
        "    float drive_ = -1.0f, output_ = -1.0f;\n"
        "};\n\n"
        "RACKTERM_PROCESSOR(" + cls + ")\n";
    const std::string rootText = root.string();
    std::string session =
        "# Hear " + name + " while you edit it: rackterm " + (root / "try.toml").string() + "\n"
        "# Saving " + component + ".cpp rebuilds the module and swaps it in, crossfaded.\n"
        "[session]\nname = \"" + name + "-try\"\n\n"
        "[[node]]\nid = \"tone\"\nprocessor = \"oscillator\"\nparams = { waveform = 1, frequency_hz = 110, level_db = -12 }\n\n"
        "[[node]]\nid = \"" + component + "\"\npath = \"" + so + "\"\n"
        "watch = { source = \".\", build = \"cmake --build build\" }\n";
    std::string readme =
        "# " + name + "\n\n"
        "A rackterm processor package made by `rackterm package new`.\n\n"
        "Build it (no flags needed; the SDK header's folder is recorded in CMakeLists.txt):\n\n"
        "    cmake -S . -B build && cmake --build build\n\n"
        "Hear it and edit it live (saving " + component + ".cpp rebuilds and swaps it in):\n\n"
        "    rackterm try.toml\n\n"
        "Pack and install it, then use it from any session as `processor = \"" + name + "/" + component + "\"`:\n\n"
        "    rackterm package pack .\n"
        "    rackterm install " + name + "-0.1.0.tar.gz\n\n"
        "Raise `version` in rackterm-package.toml before installing a new build: running sessions swap to it.\n";
    for (const auto& [file, text] : std::vector<std::pair<std::string, std::string>>{
             {config::kManifestName, manifest}, {"CMakeLists.txt", cmake}, {component + ".cpp", source},
             {"README.md", readme}, {"try.toml", session}})
        if (auto r = writeNew(root / file, text); !r) return Error{r.error()};
    return "made " + rootText + ": " + config::kManifestName + ", CMakeLists.txt, " + component + ".cpp, README.md, try.toml\n" +
           "build it:  cmake -S " + rootText + " -B " + rootText + "/build && cmake --build " + rootText + "/build\n" +
           "hear it:   rackterm " + rootText + "/try.toml   (edits to " + component + ".cpp are rebuilt and swapped in)\n" +
           "as a watched node in any session:\n"
           "  [[node]]\n  id = \"" + component + "\"\n  path = \"" + rootText + "/" + so + "\"\n"
           "  watch = { source = \"" + rootText + "\", build = \"cmake --build " + rootText + "/build\" }\n" +
           "pack and install: rackterm package pack " + rootText + " && rackterm install " + name + "-0.1.0.tar.gz";
}

Result<std::string> packPackage(const std::string& dir, const std::string& outputIn) {
    if (PackageCheck check = checkPackage(dir); !check.ok()) return problemsOf(check);
    std::error_code ec;
    const fs::path root = fs::canonical(dir, ec);
    const config::Manifest m = config::loadManifest((root / config::kManifestName).string()).value();
    const std::string top = m.id + "-" + m.version.text;
    const std::string output = outputIn.empty() ? top + ".tar.gz" : outputIn;
    const std::string temp = output + ".tmp-" + std::to_string(::getpid());
    archive* a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    auto fail = [&](const std::string& why) -> Result<std::string> {
        archive_write_free(a);
        std::error_code e;
        fs::remove(temp, e);
        return Error{show(output) + ": " + why};
    };
    if (archive_write_open_filename(a, temp.c_str()) != ARCHIVE_OK)
        return fail(std::string("cannot write: ") + archiveError(a));
    const std::time_t now = std::time(nullptr);
    std::vector<std::string> names = packageFiles(m, root);
    for (const std::string& rel : names) {
        const fs::path from = fs::canonical(root / rel, ec);
        auto bytes = files::readRegularFile(from.string(), kMaxComponentBytes, "package file");
        if (!bytes) return fail(bytes.error());
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, (top + "/" + rel).c_str());
        archive_entry_set_size(e, static_cast<la_int64_t>(bytes.value().size()));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, fileMode(rel));
        archive_entry_set_mtime(e, now, 0);
        const bool ok = archive_write_header(a, e) == ARCHIVE_OK &&
                        archive_write_data(a, bytes.value().data(), bytes.value().size()) ==
                            static_cast<la_ssize_t>(bytes.value().size());
        archive_entry_free(e);
        if (!ok) return fail(std::string("write failed: ") + archiveError(a));
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        return fail(std::string("write failed: ") + archiveError(a));
    archive_write_free(a);
    if (::rename(temp.c_str(), output.c_str()) != 0) {
        const int e = errno;
        fs::remove(temp, ec);
        return Error{show(output) + ": cannot write (" + std::strerror(e) + ")"};
    }
    return "packed " + m.id + " " + m.version.text + " into " + show(output) + " (" + joined(names) + ")";
}

namespace {

/// The exit status of a command-line entry: an error's lines each as
/// "rackterm: LINE" on stderr (exit 1); else the value on stdout, unless
/// `printValue` is false (its lines went out as they came), and exit 0.
int report(const Result<std::string>& r, bool printValue = true) {
    if (!r) {
        const std::string& all = r.error();
        size_t start = 0;
        while (start <= all.size()) {
            size_t nl = all.find('\n', start);
            if (nl == std::string::npos) nl = all.size();
            std::fprintf(stderr, "rackterm: %s\n", all.substr(start, nl - start).c_str());
            start = nl + 1;
        }
        return kExitUser;
    }
    if (printValue) std::printf("%s\n", r.value().c_str());
    return kExitOk;
}

void printLine(const std::string& line) { std::printf("%s\n", line.c_str()); }

}  // namespace

int runInstall(const std::string& source, bool downgrade) {
    InstallOptions options;
    options.downgrade = downgrade;
    return report(installPackage(source, options, printLine), false);  // the summary was said as it happened
}

int runUninstall(const std::string& id, bool force) {
    return report(uninstallPackage(id, force, printLine));
}

int runPackageList() {
    const auto packages = installedPackages();
    if (packages.empty()) {
        std::printf("no packages installed in %s; `rackterm install DIR` adds one\n", show(packagesRoot()).c_str());
        return kExitOk;
    }
    std::map<std::string, std::vector<std::string>> users;
    for (const std::string& session : liveSessions()) {
        const auto used = packagesUsedBy(session);
        if (!used) std::fprintf(stderr, "rackterm: %s\n", used.error().c_str());
        else
            for (const auto& [id, nodes] : used.value()) users[id].push_back(session + " (" + nodes + ")");
    }
    for (const auto& p : packages) {
        std::vector<std::string> comps;
        for (const auto& c : p.components) comps.push_back(p.id + "/" + c.first);
        const std::string used = joined(users[p.id]);
        std::printf("%s %s  components: %s  installed %s  in use by: %s\n", p.id.c_str(), p.version.c_str(), joined(comps).c_str(),
                    p.installedAt.c_str(), used.empty() ? "no running session" : used.c_str());
    }
    return kExitOk;
}

int runPackageVerify(const std::string& id) {
    std::vector<std::string> ids;
    if (!id.empty()) ids.push_back(id);
    else
        for (const auto& p : installedPackages()) ids.push_back(p.id);
    // Folders that are not whole packages (no manifest or receipt) are named too.
    std::error_code ec;
    bool bad = false;
    if (id.empty())
        for (fs::directory_iterator it(packagesRoot(), ec), end; !ec && it != end; it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.empty() || name[0] == '.' || std::find(ids.begin(), ids.end(), name) != ids.end()) continue;
            std::fprintf(stderr, "rackterm: %s: not a whole package (no readable manifest and receipt); uninstall it or install it again\n",
                         show(it->path().string()).c_str());
            bad = true;
        }
    if (ids.empty() && !bad) {
        std::printf("no packages installed in %s\n", show(packagesRoot()).c_str());
        return kExitOk;
    }
    for (const auto& one : ids) {
        auto r = verifyPackage(one);
        if (!r) {
            std::fprintf(stderr, "rackterm: %s\n", r.error().c_str());
            bad = true;
            continue;
        }
        if (r.value().empty()) {
            std::printf("%s %s: every file matches its receipt\n", one.c_str(), installedVersion(one).c_str());
            continue;
        }
        bad = true;
        for (const auto& p : r.value()) std::fprintf(stderr, "rackterm: %s: %s\n", one.c_str(), p.c_str());
    }
    return bad ? kExitUser : kExitOk;
}

int runPackageNew(const std::string& name, const std::string& dir) {
    return report(scaffoldPackage(name, dir));
}

int runPackagePack(const std::string& dir, const std::string& output) {
    return report(packPackage(dir, output));
}

}  // namespace rackterm::app
