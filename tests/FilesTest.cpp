// The one checked path for reading files and the one for replacing them,
// against real non-regular files made in a temp folder (a FIFO, a Unix
// socket, a folder and, as root, character devices made with mknod there;
// never anything under /dev), plus message text and decimal numbers.
#include "support/Support.hpp"

#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

class Files : public ::testing::Test {
protected:
    void SetUp() override { dir = test::tempDir("files"); }
    void TearDown() override {
        for (int fd : sockets) ::close(fd);
        fs::remove_all(dir);
    }
    std::string fifo() {
        const std::string p = dir + "/fifo";
        EXPECT_EQ(::mkfifo(p.c_str(), 0600), 0);
        return p;
    }
    std::string socket() {
        const std::string p = dir + "/sock";
        const int fd = test::bindUnixSocket(p);
        EXPECT_GE(fd, 0);
        sockets.push_back(fd);
        return p;
    }
    /// A character device node in the temp folder (root only): the memory
    /// device (1, minor). "" when not root.
    std::string device(const std::string& name, unsigned minor) {
        const std::string p = dir + "/" + name;
        return test::makeMemoryDevice(p, minor) ? p : std::string();
    }
    mode_t kind(const std::string& p) {
        struct stat st {};
        ::lstat(p.c_str(), &st);
        return st.st_mode & S_IFMT;
    }
    /// Entries of the folder whose name holds `part`.
    size_t count(const std::string& part) {
        size_t n = 0;
        for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(part) != std::string::npos;
        return n;
    }
    std::string dir;
    std::vector<int> sockets;
};

}  // namespace

TEST_F(Files, ReadingRefusesWhatIsNotARegularFileAtOnce) {
    const auto start = std::chrono::steady_clock::now();
    auto f = files::readRegularFile(fifo(), files::kMaxTextFileBytes, "session file");  // no writer: must not block
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error(), dir + "/fifo: is a FIFO, not a regular file; the session file must be a regular file");
    auto s = files::readRegularFile(socket(), files::kMaxTextFileBytes, "session file");
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().find("is a Unix socket, not a regular file"), std::string::npos) << s.error();
    auto d = files::readRegularFile(dir, files::kMaxTextFileBytes, "session file");
    ASSERT_FALSE(d);
    EXPECT_NE(d.error().find("is a folder"), std::string::npos) << d.error();
    if (const std::string zero = device("zero", 5); !zero.empty()) {
        auto z = files::readRegularFile(zero, files::kMaxTextFileBytes, "session file");
        ASSERT_FALSE(z);
        EXPECT_NE(z.error().find("is a character device"), std::string::npos) << z.error();
    }
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
}

TEST_F(Files, ReadingIsBoundedAndAReadErrorIsAnError) {
    const std::string big = dir + "/big.toml";
    const int fd = ::open(big.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_EQ(::ftruncate(fd, 17 << 20), 0);  // sparse: costs no disk
    ::close(fd);
    auto b = files::readRegularFile(big, files::kMaxTextFileBytes, "session file");
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error(), big + ": the session file is 17.0 MiB; rackterm reads at most 16.0 MiB");
    auto mem = files::readRegularFile("/proc/self/mem", files::kMaxTextFileBytes, "session file");  // a regular file whose read fails
    ASSERT_FALSE(mem) << "a read error must not read as an empty file";
    EXPECT_NE(mem.error().find("/proc/self/mem: cannot read the session file ("), std::string::npos) << mem.error();
    test::writeText(dir + "/ok.toml", "x = 1\n");
    auto ok = files::readRegularFile(dir + "/ok.toml", files::kMaxTextFileBytes, "session file");
    ASSERT_TRUE(ok) << ok.error();
    EXPECT_EQ(ok.value(), "x = 1\n");
    auto missing = files::readRegularFile(dir + "/nope.toml", files::kMaxTextFileBytes, "session file");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), dir + "/nope.toml: cannot open the session file (No such file or directory)");
}

TEST_F(Files, ReplacingRefusesEveryTargetThatIsNotARegularFile) {
    std::vector<std::pair<std::string, std::string>> targets = {
        {fifo(), "is a FIFO"}, {socket(), "is a Unix socket"}, {dir, "is a folder"}};
    if (const std::string null = device("null", 3); !null.empty()) targets.push_back({null, "is a character device"});
    for (const auto& [path, what] : targets) {
        const mode_t before = kind(path);
        auto r = files::replaceFile(path, "replacement\n");
        ASSERT_FALSE(r) << path;
        EXPECT_NE(r.error().find(what + std::string(", not a regular file; rackterm replaces only regular files")),
                  std::string::npos)
            << r.error();
        EXPECT_EQ(kind(path), before) << path << " was replaced";
        // Through a symbolic link too: the link is followed, the FIFO or device found.
        const std::string link = dir + "/link-" + std::to_string(before);
        fs::create_symlink(path, link);
        EXPECT_FALSE(files::replaceFile(link, "x"));
        EXPECT_EQ(kind(path), before);
    }
    EXPECT_EQ(count(".tmp-"), 0u) << "no temporary file left";
}

TEST_F(Files, ReplacingKeepsTheBackupByLinkAndTheLinkStaysALink) {
    const std::string real = dir + "/real.toml", link = dir + "/link.toml";
    test::writeText(real, "old\n");
    ::chmod(real.c_str(), 0640);
    struct stat old {};
    ::stat(real.c_str(), &old);
    fs::create_symlink("real.toml", link);
    files::AtomicFile::Options keep;
    keep.keepBackup = true;
    ASSERT_TRUE(files::replaceFile(link, "new\n", keep));
    EXPECT_EQ(kind(link), S_IFLNK) << "the symbolic link still names the file";
    EXPECT_EQ(test::readText(real), "new\n");
    EXPECT_EQ(test::readText(real + "~"), "old\n");
    struct stat backup {}, now {};
    ::stat((real + "~").c_str(), &backup);
    ::stat(real.c_str(), &now);
    EXPECT_EQ(backup.st_ino, old.st_ino) << "the backup is the old file itself (a link), not a copy";
    EXPECT_EQ(now.st_mode & 0777, 0640u) << "the new file keeps the old one's permissions";
    EXPECT_EQ(count(".tmp-"), 0u);
}

TEST_F(Files, ABackupThatIsAlreadyALinkToTheFileLeavesNothingBehind) {
    const std::string target = dir + "/s.toml";
    test::writeText(target, "old\n");
    fs::create_hard_link(target, target + "~");  // rename() onto the same file does nothing
    files::AtomicFile::Options keep;
    keep.keepBackup = true;
    ASSERT_TRUE(files::replaceFile(target, "new\n", keep));
    EXPECT_EQ(test::readText(target), "new\n");
    EXPECT_EQ(test::readText(target + "~"), "old\n");
    EXPECT_EQ(count(".tmp-"), 0u);
}

TEST_F(Files, ABackupPathThatIsNotARegularFileStopsTheSave) {
    const std::string target = dir + "/s.toml";
    test::writeText(target, "old\n");
    ASSERT_EQ(::mkfifo((target + "~").c_str(), 0600), 0);
    files::AtomicFile::Options keep;
    keep.keepBackup = true;
    auto r = files::replaceFile(target, "new\n", keep);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().find("s.toml~: is a FIFO, not a regular file"), std::string::npos) << r.error();
    EXPECT_EQ(test::readText(target), "old\n");
    EXPECT_EQ(kind(target + "~"), S_IFIFO);
}

TEST_F(Files, TheBackupCopyIsBoundedAndTakesRegularFilesOnly) {
    const std::string from = dir + "/big", to = dir + "/copy";
    test::writeText(from, std::string(300000, 'x'));
    auto over = files::copyRegularFile(from, to, 100000);
    ASSERT_FALSE(over);
    EXPECT_NE(over.error().find("too large to copy"), std::string::npos) << over.error();
    EXPECT_FALSE(fs::exists(to)) << "a failed copy leaves nothing";
    ASSERT_TRUE(files::copyRegularFile(from, to, 1 << 20));
    EXPECT_EQ(test::readText(to).size(), 300000u);
    const auto start = std::chrono::steady_clock::now();
    auto f = files::copyRegularFile(fifo(), dir + "/copy2", 1 << 20);
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().find("is a FIFO"), std::string::npos);
    if (const std::string full = device("full", 7); !full.empty()) EXPECT_FALSE(files::copyRegularFile(full, dir + "/c3", 1 << 20));
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 2.0);
}

TEST_F(Files, StaleTemporariesOfDeadProcessesAreRemovedOnly) {
    const std::string dead = std::to_string(test::deadPid());
    const std::string mine = std::to_string(::getpid());
    for (const std::string& name : std::vector<std::string>{".s.toml.tmp-" + dead, ".s.toml~.tmp-" + dead, ".take.wav.part-" + dead,  // ours, dead: go
                                   ".s.toml.tmp-1", ".s.toml.tmp-" + mine,                               // alive: stay
                                   "s.toml.tmp-" + dead, ".s.toml.tmp-12a", ".tmp-" + dead})              // not our naming: stay
        test::writeText(dir + "/" + name, "x");
    ASSERT_EQ(::mkfifo((dir + "/.f.toml.tmp-" + dead).c_str(), 0600), 0);  // not a regular file: stays
    EXPECT_EQ(files::removeStaleTemporaries(dir), 3u);
    EXPECT_FALSE(fs::exists(dir + "/.s.toml.tmp-" + dead));
    EXPECT_FALSE(fs::exists(dir + "/.take.wav.part-" + dead));
    EXPECT_TRUE(fs::exists(dir + "/.s.toml.tmp-1"));
    EXPECT_TRUE(fs::exists(dir + "/.s.toml.tmp-" + mine));
    EXPECT_TRUE(fs::exists(dir + "/s.toml.tmp-" + dead));
    EXPECT_TRUE(fs::exists(dir + "/.s.toml.tmp-12a"));
    EXPECT_TRUE(fs::exists(dir + "/.tmp-" + dead));
    EXPECT_TRUE(fs::exists(dir + "/.f.toml.tmp-" + dead));
    // The next write into the folder cleans up by itself.
    test::writeText(dir + "/.other.wav.tmp-" + dead, "x");
    ASSERT_TRUE(files::replaceFile(dir + "/s.toml", "new\n"));
    EXPECT_FALSE(fs::exists(dir + "/.other.wav.tmp-" + dead));
}

TEST_F(Files, ATemporaryFileHeldByItsWriterIsNeverRemoved) {
    // A writer whose PID looks dead from here (another PID namespace or host)
    // still holds its lock: its file stays until the lock goes.
    const std::string name = dir + "/.take.wav.tmp-" + std::to_string(test::deadPid());
    test::writeText(name, "recording...");
    const int fd = ::open(name.c_str(), O_RDONLY);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    EXPECT_EQ(files::removeStaleTemporaries(dir), 0u);
    EXPECT_TRUE(fs::exists(name));
    ::close(fd);
    EXPECT_EQ(files::removeStaleTemporaries(dir), 1u);
    EXPECT_FALSE(fs::exists(name));
}

TEST_F(Files, LinksAndDotDotResolveAsTheKernelResolvesThem) {
    // cur -> projects/song1 and song1/s.toml -> ../shared/s.toml: the kernel
    // finds projects/shared/s.toml; a lexical ".." would hit m/shared/s.toml.
    fs::create_directories(dir + "/m/projects/song1");
    fs::create_directories(dir + "/m/projects/shared");
    fs::create_directories(dir + "/m/shared");
    test::writeText(dir + "/m/projects/shared/s.toml", "real\n");
    test::writeText(dir + "/m/shared/s.toml", "decoy\n");
    fs::create_symlink("projects/song1", dir + "/m/cur");
    fs::create_symlink("../shared/s.toml", dir + "/m/projects/song1/s.toml");
    EXPECT_EQ(test::readText(dir + "/m/cur/s.toml"), "real\n") << "what the kernel opens";
    ASSERT_TRUE(files::replaceFile(dir + "/m/cur/s.toml", "new\n"));
    EXPECT_EQ(test::readText(dir + "/m/projects/shared/s.toml"), "new\n");
    EXPECT_EQ(test::readText(dir + "/m/shared/s.toml"), "decoy\n") << "an unrelated file was replaced";
    EXPECT_EQ(kind(dir + "/m/projects/song1/s.toml"), S_IFLNK);
    ASSERT_TRUE(files::replaceFile(dir + "/m/cur/../shared/s.toml", "via dotdot\n"));  // cur/.. is projects
    EXPECT_EQ(test::readText(dir + "/m/projects/shared/s.toml"), "via dotdot\n");
    EXPECT_EQ(test::readText(dir + "/m/shared/s.toml"), "decoy\n");
}

TEST_F(Files, SameFileSeesThroughLinks) {
    const std::string a = dir + "/a.wav";
    test::writeText(a, "x");
    fs::create_symlink(a, dir + "/sym.wav");
    fs::create_hard_link(a, dir + "/hard.wav");
    EXPECT_TRUE(files::sameFile(a, dir + "/sym.wav"));
    EXPECT_TRUE(files::sameFile(a, dir + "/hard.wav"));
    EXPECT_TRUE(files::sameFile(a, dir + "/./a.wav"));
    test::writeText(dir + "/b.wav", "x");
    EXPECT_FALSE(files::sameFile(a, dir + "/b.wav"));
    EXPECT_FALSE(files::sameFile(a, dir + "/missing.wav"));
}

TEST(Text, PrintableEscapesControlBytesAndCuts) {
    EXPECT_EQ(printable(std::string("a\0b\nc\td\x1b", 8)), "a\\x00b\\nc\\td\\x1b");
    EXPECT_EQ(printable("caf\xc3\xa9 \xff"), "caf\xc3\xa9 \\xff") << "valid UTF-8 stays, invalid bytes are escaped";
    EXPECT_EQ(printable(std::string(10'000'000, 'x')), std::string(80, 'x') + "...");
    EXPECT_EQ(quote("gain"), "'gain'");
    EXPECT_EQ(quote(std::string(100, 'y')).size(), 80u + 3 + 2);
}

TEST(Text, DecimalNumbersOnly) {
    EXPECT_EQ(parseDecimal("16"), 16.0);
    EXPECT_EQ(parseDecimal("-6.5"), -6.5);
    EXPECT_EQ(parseDecimal("+2"), 2.0);
    EXPECT_EQ(parseDecimal(".5"), 0.5);
    EXPECT_EQ(parseDecimal("1e3"), 1000.0);
    EXPECT_EQ(parseDecimal("2.5E-2"), 0.025);
    for (const char* bad : {"0x10", "0X1p4", "inf", "nan", "-infinity", "", "-", ".", "1e999", "1,5", " 1"})
        EXPECT_FALSE(parseDecimal(bad)) << bad;
    const auto zero = parseDecimal("-0");
    ASSERT_TRUE(zero);
    EXPECT_FALSE(std::signbit(*zero)) << "-0 reads as 0";
    size_t used = 0;
    EXPECT_EQ(parseDecimalPrefix("1.5kHz", used), 1.5);
    EXPECT_EQ(used, 3u);
    EXPECT_EQ(parseDecimalPrefix("3e", used), 3.0) << "an e without digits is left for a unit";
    EXPECT_EQ(used, 1u);
    EXPECT_FALSE(parseDecimalPrefix("0x10", used));
}
