// The real loader against real modules: the built-ins, and fixture modules
// built by these tests for every way an artifact can be bad. Each gets its
// own one-line error; none crashes the host. Also: dlclose really unloads.
#include "support/Support.hpp"

#include <rackterm/loader/Loader.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

using namespace rackterm;

namespace {
std::string fixture(const std::string& name) { return test::fixtureDir() + "/lib" + name + ".so"; }

bool mapped(const std::string& needle) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    while (std::getline(maps, line))
        if (line.find(needle) != std::string::npos) return true;
    return false;
}
}  // namespace

TEST(Loader, LoadsEveryBuiltin) {
    for (const char* name : {"gain", "oscillator", "biquad", "saturator", "delay"}) {
        auto m = loader::loadModule(test::moduleDir() + "/lib" + std::string(name) + ".so");
        ASSERT_TRUE(m) << m.error();
        EXPECT_STREQ(m.value()->descriptor().id, name);
        auto inst = loader::createInstance(m.value(), 48000, 256);
        ASSERT_TRUE(inst) << inst.error();
    }
}

TEST(Loader, NotASharedObject) {
    const std::string dir = test::tempDir("loader");
    const std::string path = dir + "/libtext.so";
    test::writeText(path, "this is not ELF\n");
    auto m = loader::loadModule(path);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().rfind(path + ": not a loadable shared object (", 0), 0u) << m.error();
}

TEST(Loader, MissingFile) {
    auto m = loader::loadModule("/nonexistent/libnothing.so");
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().find("no such file"), std::string::npos);
}

TEST(Loader, MissingEntrySymbol) {
    auto m = loader::loadModule(fixture("fixture_noentry"));
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().find("no rackterm_processor_entry symbol; export one with RACKTERM_PROCESSOR"), std::string::npos)
        << m.error();
}

TEST(Loader, AbiV1IsRefusedWithRemedy) {
    auto m = loader::loadModule(fixture("fixture_abi_v1"));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error(), fixture("fixture_abi_v1") +
                             ": processor ABI v1 found, rackterm needs v2; rebuild the processor against this "
                             "rackterm's rackterm/processor.h");
}

TEST(Loader, ATruncatedV2DescriptorIsRefusedWithoutReadingItAfterUnload) {
    // 0.1 read struct_size after dlclose(): SIGSEGV in `check` and in a live `add`.
    auto m = loader::loadModule(fixture("fixture_small_struct"));
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error(), fixture("fixture_small_struct") + ": descriptor is 16 bytes, ABI v2 needs at least " +
                             std::to_string(RACKTERM_V2_BASE_SIZE) +
                             "; rebuild against this rackterm's rackterm/processor.h");
}

TEST(Loader, ANonRegularPathIsNamedForWhatItIs) {
    const std::string dir = test::tempDir("loaderfifo");
    ASSERT_EQ(::mkfifo((dir + "/libfifo.so").c_str(), 0600), 0);
    auto m = loader::loadModule(dir + "/libfifo.so");
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error(), dir + "/libfifo.so: is a FIFO, not a processor module; give the path of a .so");
    std::filesystem::remove_all(dir);
}

TEST(Loader, InvalidParameterTable) {
    auto m = loader::loadModule(fixture("fixture_bad_table"));
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().find("invalid processor descriptor: parameter 0 'level': needs min <= default <= max"),
              std::string::npos)
        << m.error();
}

TEST(Loader, CreateReturningNull) {
    auto m = loader::loadModule(fixture("fixture_create_null"));
    ASSERT_TRUE(m) << m.error();
    auto i = loader::createInstance(m.value(), 48000, 256);
    ASSERT_FALSE(i);
    EXPECT_NE(i.error().find("could not be created at 48000 Hz, 256 frames: create() returned NULL"), std::string::npos)
        << i.error();
}

TEST(Loader, CreateThrowingIsCaughtAtTheEdge) {
    auto m = loader::loadModule(fixture("fixture_create_throws"));
    ASSERT_TRUE(m) << m.error();
    auto i = loader::createInstance(m.value(), 48000, 256);
    ASSERT_FALSE(i);
    EXPECT_NE(i.error().find("create() threw: out of coffee"), std::string::npos) << i.error();
}

TEST(Loader, PrivateCopyAndRealUnload) {
    {
        auto m = loader::loadModule(test::moduleDir() + "/libdelay.so");
        ASSERT_TRUE(m);
        EXPECT_TRUE(mapped("-libdelay.so")) << "the private copy is mapped";
        auto inst = loader::createInstance(m.value(), 48000, 64);
        ASSERT_TRUE(inst);
    }
    EXPECT_FALSE(mapped("-libdelay.so")) << "dlclose unmapped the module (-fno-gnu-unique)";
}
