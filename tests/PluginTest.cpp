// LV2 and LADSPA plugins as nodes: renders equal the reference hosts
// (lv2apply from lilv-utils, applyplugin from ladspa-sdk) sample by sample,
// parameter tables equal what lv2info and analyseplugin print, refusals and
// did-you-mean, dual mono. Uses the plugins Debian ships in swh-lv2,
// mda-lv2, lv2-examples and ladspa-sdk (installed by .ci/setup).
#include "support/JackCapture.hpp"
#include "support/Support.hpp"

#include <rackterm/loader/Loader.hpp>
#include <rackterm/loader/Plugins.hpp>

#include <gtest/gtest.h>
#include <sndfile.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include <signal.h>

using namespace rackterm;
namespace fs = std::filesystem;

namespace {

const std::string kFront = "/usr/share/sounds/alsa/Front_Center.wav";
const std::string kLeft = "/usr/share/sounds/alsa/Front_Left.wav";
const std::string kRight = "/usr/share/sounds/alsa/Front_Right.wav";

class PluginRender : public ::testing::Test {
protected:
    void SetUp() override { dir = test::tempDir("plugins"); }
    void TearDown() override { fs::remove_all(dir); }

    /// Render `nodes` (TOML) as the session's chain, `channels` in and out, at `block` frames.
    test::RunResult render(const std::string& nodes, uint32_t channels, const std::string& in, const std::string& out,
                           uint32_t block) {
        const std::string path = dir + "/s.toml";
        test::writeText(path, "[session]\nname = \"p\"\n[engine]\ninput_ports = " + std::to_string(channels) +
                                  "\noutput_ports = " + std::to_string(channels) + "\n" + nodes);
        return test::run({test::binary(), "render", path, "-i", in, "-o", out, "--block", std::to_string(block)});
    }
    /// A recording as 32-bit float: mono (Front_Center) or stereo (Front_Left | Front_Right).
    std::string input(uint32_t channels) {
        const std::string path = dir + "/in" + std::to_string(channels) + ".wav";
        if (fs::exists(path)) return path;
        if (channels == 1) {
            test::writeSound(path, test::readSound(kFront), SF_FORMAT_WAV | SF_FORMAT_FLOAT);
        } else {
            EXPECT_EQ(test::run({"sox", "-M", kLeft, kRight, "-e", "floating-point", "-b", "32", path}).exitCode, 0);
        }
        return path;
    }
    std::string dir;
};

std::string node(const std::string& id, const std::string& processor,
                 const std::vector<std::pair<std::string, std::string>>& values) {
    std::string params;
    for (const auto& [k, v] : values) params += (params.empty() ? "" : ", ") + k + " = " + v;
    return "[[node]]\nid = \"" + id + "\"\nprocessor = \"" + processor + "\"\n" +
           (params.empty() ? "" : "params = { " + params + " }\n");
}

/// Largest |a - b| over two sounds of the same shape; +inf when the shapes differ.
double maxDifference(const test::Sound& a, const test::Sound& b) {
    if (a.channels != b.channels || a.samples.size() != b.samples.size()) return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < a.samples.size(); ++i)
        worst = std::max(worst, std::fabs(static_cast<double>(a.samples[i]) - b.samples[i]));
    return worst;
}

/// The module for `reference` at 48 kHz, for its table.
std::shared_ptr<loader::Module> load(const std::string& reference) {
    auto m = loader::loadModule(reference, 48000.0);
    EXPECT_TRUE(m) << (m ? "" : m.error());
    return m ? m.value() : nullptr;
}

const rackterm_param_info* param(const rackterm_processor_v2& d, const std::string& id) {
    for (uint32_t i = 0; i < d.param_count; ++i)
        if (id == d.params[i].id) return &d.params[i];
    return nullptr;
}

}  // namespace

TEST_F(PluginRender, Lv2RendersEqualLv2applySampleBySample) {
    struct Case {
        std::string uri;
        uint32_t channels;
        std::vector<std::pair<std::string, std::string>> values;
    };
    // Three packages: mda-lv2, swh-lv2, lv2-examples; every value differs from its default.
    const std::vector<Case> cases = {
        {"http://drobilla.net/plugins/mda/Delay", 2, {{"l_delay", "0.3"}, {"feedback", "0.5"}, {"fx_mix", "0.6"}}},
        {"http://drobilla.net/plugins/mda/Overdrive", 2, {{"drive", "0.7"}, {"muffle", "0.3"}}},
        {"http://plugin.org.uk/swh-plugins/sc4", 2, {{"ratio", "6"}, {"threshold", "-24"}, {"attack", "5"}}},
        {"http://plugin.org.uk/swh-plugins/lowpass_iir", 1, {{"cutoff", "900"}, {"stages", "3"}}},
        {"http://lv2plug.in/plugins/eg-amp", 1, {{"gain", "-7.5"}}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.uri);
        auto module = load("lv2:" + c.uri);
        ASSERT_TRUE(module);
        for (const auto& [id, v] : c.values) {
            const rackterm_param_info* p = param(module->descriptor(), id);
            ASSERT_NE(p, nullptr) << id;
            EXPECT_NE(p->default_value, std::stof(v)) << id << " must differ from its default";
        }
        const std::string in = input(c.channels), ref = dir + "/ref.wav";
        std::vector<std::string> argv = {"lv2apply", "-i", in, "-o", ref};
        for (const auto& [id, v] : c.values) argv.insert(argv.end(), {"-c", id, v});
        argv.push_back(c.uri);
        auto r = test::run(argv);
        ASSERT_EQ(r.exitCode, 0) << r.err;
        const test::Sound want = test::readSound(ref);
        for (const uint32_t block : {64u, 256u}) {
            SCOPED_TRACE("block " + std::to_string(block));
            const std::string out = dir + "/out.wav";
            r = render(node("fx", "lv2:" + c.uri, c.values), c.channels, in, out, block);
            ASSERT_EQ(r.exitCode, 0) << r.err;
            const test::Sound got = test::readSound(out);
            EXPECT_LE(maxDifference(got, want), 1e-6);
            EXPECT_GT(test::rmsDb(got.channel(0)), -60.0) << "not silence";
            EXPECT_GT(maxDifference(got, test::readSound(in)), 1e-3) << "the plugin changed the sound";
        }
    }
}

namespace {

/// applyplugin's output: each float scaled by 2^31, rounded (llrintf),
/// clamped, written as int and stored by libsndfile as 16-bit (the top 16 bits).
float asApplypluginWrites(float v) {
    float x = v * 2147483648.0f;
    if (x >= 2147483647.0f) x = 2147483647.0f;
    if (x <= -2147483648.0f) x = -2147483648.0f;
    const auto i = static_cast<int32_t>(llrintf(x));
    return static_cast<float>(static_cast<int16_t>(i >> 16)) / 32768.0f;
}

}  // namespace

TEST_F(PluginRender, LadspaRendersEqualApplypluginSampleBySample) {
    struct Case {
        std::string file, label;
        std::vector<std::pair<std::string, std::string>> values;  // in control port order (applyplugin takes them so)
    };
    const std::vector<Case> cases = {
        {"amp.so", "amp_mono", {{"gain", "0.35"}}},
        {"filter.so", "lpf", {{"cutoff_frequency_hz", "900"}}},
        {"delay.so", "delay_5s", {{"delay_seconds", "0.125"}, {"dry_wet_balance", "0.7"}}},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.label);
        auto module = load("ladspa:" + c.label);
        ASSERT_TRUE(module);
        ASSERT_EQ(module->descriptor().param_count, c.values.size());
        for (size_t i = 0; i < c.values.size(); ++i) {
            EXPECT_EQ(std::string(module->descriptor().params[i].id), c.values[i].first);
            EXPECT_NE(module->descriptor().params[i].default_value, std::stof(c.values[i].second));
        }
        const std::string ref = dir + "/ref.wav";
        std::vector<std::string> argv = {"applyplugin", kFront, ref, "/usr/lib/ladspa/" + c.file, c.label};
        for (const auto& [id, v] : c.values) argv.push_back(v);
        auto r = test::run(argv);
        ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
        const test::Sound want = test::readSound(ref);
        // applyplugin runs blocks of 2048 frames; these plugins do not depend on the block.
        for (const uint32_t block : {256u, 2048u}) {
            SCOPED_TRACE("block " + std::to_string(block));
            const std::string out = dir + "/out.wav";
            r = render(node("fx", "ladspa:" + c.label, c.values), 1, kFront, out, block);
            ASSERT_EQ(r.exitCode, 0) << r.err;
            test::Sound got = test::readSound(out);
            ASSERT_EQ(got.frames(), want.frames());
            for (float& s : got.samples) s = asApplypluginWrites(s);
            EXPECT_LE(maxDifference(got, want), 1e-6) << "equal after applyplugin's 16-bit write";
            EXPECT_GT(test::rmsDb(got.samples), -60.0);
        }
    }
}

TEST_F(PluginRender, AMonoLadspaPluginOnAStereoConnectionIsDualMono) {
    const std::vector<std::pair<std::string, std::string>> values = {{"cutoff_frequency_hz", "700"}};
    const std::string l = dir + "/l.wav", r = dir + "/r.wav";
    test::writeSound(l, test::readSound(kLeft), SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    test::writeSound(r, test::readSound(kRight), SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    auto res = render(node("lp", "ladspa:lpf", values), 2, input(2), dir + "/st.wav", 256);
    ASSERT_EQ(res.exitCode, 0) << res.err;
    res = render(node("lp", "ladspa:lpf", values), 1, l, dir + "/ml.wav", 256);
    ASSERT_EQ(res.exitCode, 0) << res.err;
    res = render(node("lp", "ladspa:lpf", values), 1, r, dir + "/mr.wav", 256);
    ASSERT_EQ(res.exitCode, 0) << res.err;
    const test::Sound st = test::readSound(dir + "/st.wav");
    ASSERT_EQ(st.channels, 2);
    auto left = st.channel(0), right = st.channel(1);
    const auto ml = test::readSound(dir + "/ml.wav").samples, mr = test::readSound(dir + "/mr.wav").samples;
    // sox -M pads the shorter recording with silence: compare each over its own length.
    ASSERT_GE(left.size(), ml.size());
    ASSERT_GE(right.size(), mr.size());
    ASSERT_GT(ml.size(), 48000u);
    left.resize(ml.size());
    right.resize(mr.size());
    EXPECT_EQ(left, ml) << "the left channel equals the mono render of the left recording";
    EXPECT_EQ(right, mr) << "the right channel equals the mono render of the right recording";
    EXPECT_NE(left, std::vector<float>(right.begin(), right.begin() + static_cast<long>(std::min(left.size(), right.size()))));
}

namespace {

/// lv2info's control input ports: symbol -> {min, max, default, properties, scale points}.
struct InfoPort {
    double min = NAN, max = NAN, def = NAN;
    std::string properties;
    std::map<double, std::string> scalePoints;
    bool input = false, control = false;
};
std::map<std::string, InfoPort> lv2info(const std::string& uri) {
    auto r = test::run({"lv2info", uri});
    EXPECT_EQ(r.exitCode, 0) << r.err;
    std::map<std::string, InfoPort> ports;
    std::istringstream in(r.out);
    std::string line;
    InfoPort cur;
    std::string symbol;
    bool inScale = false;
    auto flush = [&] {
        if (!symbol.empty() && cur.input && cur.control) ports[symbol] = cur;
        cur = InfoPort{};
        symbol.clear();
    };
    auto value = [](const std::string& l) { return l.substr(l.find(':') + 1); };
    while (std::getline(in, line)) {
        const std::string t = line.substr(std::min(line.find_first_not_of(" \t"), line.size()));
        if (t.rfind("Port ", 0) == 0) {
            flush();
            inScale = false;
            continue;
        }
        if (t.find("#InputPort") != std::string::npos) cur.input = true;
        if (t.find("#ControlPort") != std::string::npos) cur.control = true;
        if (t.rfind("Scale Points:", 0) == 0) {
            inScale = true;
            continue;
        }
        if (inScale && t.find(" = \"") != std::string::npos) {
            cur.scalePoints[std::stod(t)] = t.substr(t.find('"') + 1, t.rfind('"') - t.find('"') - 1);
            continue;
        }
        inScale = false;
        if (t.rfind("Symbol:", 0) == 0) symbol = value(t).substr(value(t).find_first_not_of(' '));
        if (t.rfind("Minimum:", 0) == 0) cur.min = std::stod(value(t));
        if (t.rfind("Maximum:", 0) == 0) cur.max = std::stod(value(t));
        if (t.rfind("Default:", 0) == 0) cur.def = std::stod(value(t));
        if (t.rfind("Properties:", 0) == 0 || (!cur.properties.empty() && t.rfind("http", 0) == 0))
            cur.properties += t + " ";
    }
    flush();
    return ports;
}

}  // namespace

TEST(PluginTables, Lv2TablesMatchLv2info) {
    for (const std::string uri : {"http://drobilla.net/plugins/mda/Combo", "http://plugin.org.uk/swh-plugins/sc4",
                                  "http://plugin.org.uk/swh-plugins/lowpass_iir", "http://drobilla.net/plugins/mda/Delay"}) {
        SCOPED_TRACE(uri);
        auto module = load("lv2:" + uri);
        ASSERT_TRUE(module);
        const rackterm_processor_v2& d = module->descriptor();
        const auto info = lv2info(uri);
        ASSERT_EQ(info.size(), d.param_count);
        for (const auto& [symbol, port] : info) {
            SCOPED_TRACE(symbol);
            const rackterm_param_info* p = param(d, symbol);
            ASSERT_NE(p, nullptr);
            const bool byRate = port.properties.find("#sampleRate") != std::string::npos;
            const double scale = byRate ? 48000.0 : 1.0;
            if (!port.scalePoints.empty() && port.properties.find("#enumeration") != std::string::npos) {
                // An enumeration: the parameter numbers the scale points in value order, named by their labels.
                ASSERT_NE(p->choices, nullptr);
                EXPECT_EQ(p->flags, static_cast<uint32_t>(RACKTERM_PARAM_INTEGER));
                EXPECT_EQ(p->min, 0.0f);
                EXPECT_EQ(p->max, static_cast<float>(port.scalePoints.size() - 1));
                std::string names;
                for (const auto& [v, label] : port.scalePoints) {
                    std::string n;
                    bool gap = false;
                    for (const char ch : label) {
                        if (std::isalnum(static_cast<unsigned char>(ch))) {
                            if (gap && !n.empty()) n += '_';
                            gap = false;
                            n += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                        } else {
                            gap = true;
                        }
                    }
                    names += (names.empty() ? "" : "|") + n;
                }
                EXPECT_EQ(std::string(p->choices), names);
                // The default is the scale point at lv2info's default.
                size_t index = 0;
                for (const auto& [v, label] : port.scalePoints) {
                    if (std::fabs(v - port.def) < 1e-6) break;
                    ++index;
                }
                EXPECT_EQ(p->default_value, static_cast<float>(index));
                continue;
            }
            EXPECT_FLOAT_EQ(p->min, static_cast<float>(port.min * scale));
            EXPECT_FLOAT_EQ(p->max, static_cast<float>(port.max * scale));
            EXPECT_FLOAT_EQ(p->default_value, static_cast<float>(port.def * scale));
            EXPECT_EQ((p->flags & RACKTERM_PARAM_TOGGLE) != 0, port.properties.find("#toggled") != std::string::npos);
            EXPECT_EQ((p->flags & RACKTERM_PARAM_INTEGER) != 0, port.properties.find("#integer") != std::string::npos);
            EXPECT_EQ((p->flags & RACKTERM_PARAM_LOG) != 0, port.properties.find("#logarithmic") != std::string::npos &&
                                                                 port.min > 0);
        }
    }
}

TEST(PluginTables, LadspaTablesMatchAnalyseplugin) {
    // "NAME" input, control, LO to HI, default D[, logarithmic][, integer][, toggled]
    for (const std::string file : {"amp.so", "filter.so", "delay.so", "sine.so"}) {
        SCOPED_TRACE(file);
        auto r = test::run({"analyseplugin", "/usr/lib/ladspa/" + file});
        ASSERT_EQ(r.exitCode, 0) << r.err;
        std::istringstream in(r.out);
        std::string line, label;
        int checked = 0;
        std::shared_ptr<loader::Module> module;
        uint32_t index = 0;
        while (std::getline(in, line)) {
            if (line.rfind("Plugin Label: \"", 0) == 0) {
                label = line.substr(15, line.size() - 16);
                module = load("ladspa:" + label);
                index = 0;
                continue;
            }
            if (line.find("input, control") == std::string::npos || !module) continue;
            SCOPED_TRACE(label + ": " + line);
            ASSERT_LT(index, module->descriptor().param_count);
            const rackterm_param_info& p = module->descriptor().params[index++];
            const size_t q1 = line.find('"'), q2 = line.find('"', q1 + 1);
            EXPECT_EQ(std::string(p.name), line.substr(q1 + 1, q2 - q1 - 1));
            std::string rest = line.substr(line.find("control, ") + 9);
            auto bound = [](const std::string& text) {
                if (text == "...") return std::nan("");
                const size_t star = text.find("*srate");
                return star == std::string::npos ? std::stod(text) : std::stod(text) * 48000.0;
            };
            const std::string lo = rest.substr(0, rest.find(" to ")), afterTo = rest.substr(rest.find(" to ") + 4);
            const std::string hi = afterTo.substr(0, afterTo.find(','));
            if (!std::isnan(bound(lo))) EXPECT_FLOAT_EQ(p.min, static_cast<float>(bound(lo)));
            if (!std::isnan(bound(hi))) EXPECT_FLOAT_EQ(p.max, static_cast<float>(bound(hi)));
            if (const size_t d = rest.find("default "); d != std::string::npos)
                EXPECT_NEAR(p.default_value, std::stod(rest.substr(d + 8)), 1e-4 * std::max(1.0, std::fabs(std::stod(rest.substr(d + 8)))));
            EXPECT_EQ((p.flags & RACKTERM_PARAM_TOGGLE) != 0, rest.find("toggled") != std::string::npos);
            EXPECT_EQ((p.flags & RACKTERM_PARAM_INTEGER) != 0, rest.find("integer") != std::string::npos);
            EXPECT_EQ((p.flags & RACKTERM_PARAM_LOG) != 0, rest.find("logarithmic") != std::string::npos && p.min > 0.0f);
            ++checked;
        }
        EXPECT_GT(checked, 0);
    }
}

namespace {

/// DIR/rackterm-test.lv2: the fixture library's plugins (Lv2Fixture.c), each with a gain port 0..2.
void writeTestBundle(const std::string& dir) {
    const std::string bundle = dir + "/rackterm-test.lv2";
    fs::create_directories(bundle);
    fs::copy_file(test::fixtureDir() + "/libfixture_lv2.so", bundle + "/fixture.so");
    auto plugin = [](const std::string& uri, const std::string& extra) {
        return "<" + uri + "> a lv2:Plugin ; doap:name \"" + uri + "\" ; " + extra +
               " lv2:port [ a lv2:InputPort , lv2:ControlPort ; lv2:index 0 ; lv2:symbol \"gain\" ; lv2:name \"Gain\" ;"
               " lv2:default 0.5 ; lv2:minimum 0.0 ; lv2:maximum 2.0 ] , [ a lv2:InputPort , lv2:AudioPort ; lv2:index 1 ;"
               " lv2:symbol \"in\" ; lv2:name \"In\" ] , [ a lv2:OutputPort , lv2:AudioPort ; lv2:index 2 ; lv2:symbol"
               " \"out\" ; lv2:name \"Out\" ] .\n";
    };
    const std::string prefixes = "@prefix lv2: <http://lv2plug.in/ns/lv2core#> .\n@prefix doap: <http://usefulinc.com/ns/doap#> .\n"
                                 "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n";
    std::string manifest = prefixes;
    for (const char* uri : {"urn:rackterm:test:gain", "urn:rackterm:test:needs-unobtainium", "urn:rackterm:test:nan-at-10",
                            "urn:rackterm:test:fixed-block", "urn:rackterm:test:latency"})
        manifest += std::string("<") + uri + "> a lv2:Plugin ; lv2:binary <fixture.so> ; rdfs:seeAlso <plugins.ttl> .\n";
    test::writeText(bundle + "/manifest.ttl", manifest);
    test::writeText(bundle + "/plugins.ttl",
                    prefixes + plugin("urn:rackterm:test:gain", "") +
                        plugin("urn:rackterm:test:needs-unobtainium", "lv2:requiredFeature <http://example.org/ns#unobtainium> ;") +
                        plugin("urn:rackterm:test:nan-at-10", "") +
                        plugin("urn:rackterm:test:fixed-block",
                               "lv2:requiredFeature <http://lv2plug.in/ns/ext/buf-size#fixedBlockLength> , "
                               "<http://lv2plug.in/ns/ext/urid#map> , <http://lv2plug.in/ns/ext/options#options> ;") +
                        plugin("urn:rackterm:test:latency",
                               "lv2:port [ a lv2:OutputPort , lv2:ControlPort ; lv2:index 3 ; lv2:symbol \"latency\" ; "
                               "lv2:name \"Latency\" ; lv2:portProperty lv2:reportsLatency ; lv2:designation lv2:latency ] ;"));
}

/// Load `uri` from the bundles under `lv2Dir` alone (LV2_PATH set for the scan, then unset again).
auto loadFromBundles(const std::string& lv2Dir, const std::string& uri) {
    ::setenv("LV2_PATH", lv2Dir.c_str(), 1);
    loader::rescanPlugins();
    auto module = loader::loadModule(uri, 48000.0);
    ::unsetenv("LV2_PATH");
    loader::rescanPlugins();
    return module;
}

/// A mono session: the input feeds node `late` (TOML) and node `dry` (TOML) side by side, both summed at the output.
std::string besideDryPath(const std::string& name, const std::string& late, const std::string& dry) {
    return "[session]\nname = \"" + name + "\"\n[engine]\ninput_ports = 1\noutput_ports = 1\n" + late + dry +
           "[[connection]]\nfrom = \"input\"\nto = \"late\"\n[[connection]]\nfrom = \"input\"\nto = \"dry\"\n"
           "[[connection]]\nfrom = \"late\"\nto = \"output\"\n[[connection]]\nfrom = \"dry\"\nto = \"output\"\n";
}

}  // namespace

TEST(PluginNames, UnknownNamesGetDidYouMeanAndAFeatureRacktermDoesNotOfferIsRefusedByName) {
    auto m = loader::loadModule("lv2:http://drobilla.net/plugins/mda/Dely", 48000.0);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().find("no such LV2 plugin"), std::string::npos) << m.error();
    EXPECT_NE(m.error().find("did you mean 'lv2:http://drobilla.net/plugins/mda/Delay'?"), std::string::npos) << m.error();
    m = loader::loadModule("ladspa:amp_mon", 48000.0);
    ASSERT_FALSE(m);
    EXPECT_NE(m.error().find("did you mean 'ladspa:amp_mono'?"), std::string::npos) << m.error();
    EXPECT_EQ(m.error().find('\n'), std::string::npos);

    // A bundle of our own: the same code twice, one plugin requiring a feature no host offers.
    const std::string dir = test::tempDir("lv2bundle");
    writeTestBundle(dir);
    ::setenv("LV2_PATH", dir.c_str(), 1);
    loader::rescanPlugins();
    auto good = loader::loadModule("lv2:urn:rackterm:test:gain", 48000.0);
    ASSERT_TRUE(good) << good.error();
    auto inst = loader::createInstance(good.value(), 48000.0, 64);
    ASSERT_TRUE(inst) << inst.error();
    const float gain = 0.25f;
    inst.value()->descriptor().apply_plain_values(inst.value()->get(), &gain, 1);
    float in[64], out[64];
    for (int i = 0; i < 64; ++i) in[i] = static_cast<float>(i) / 64.0f;
    const float* ins[1] = {in};
    float* outs[1] = {out};
    inst.value()->descriptor().process(inst.value()->get(), ins, outs, 64);
    for (int i = 0; i < 64; ++i) ASSERT_EQ(out[i], in[i] * 0.25f);
    auto refused = loader::loadModule("lv2:urn:rackterm:test:needs-unobtainium", 48000.0);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), "lv2:urn:rackterm:test:needs-unobtainium: requires the LV2 feature "
                               "<http://example.org/ns#unobtainium>, which rackterm does not offer; it cannot be hosted");
    ::unsetenv("LV2_PATH");
    loader::rescanPlugins();
    fs::remove_all(dir);
}

TEST_F(PluginRender, AnIsolatedPluginRendersAsInProcess) {
    // The sandbox hosts the adapter: lv2: and ladspa: nodes with isolate = true sound the same.
    const std::string nodes = node("od", "lv2:http://drobilla.net/plugins/mda/Overdrive", {{"drive", "0.6"}}) +
                              node("lp", "ladspa:lpf", {{"cutoff_frequency_hz", "2500"}});
    std::string isolated = nodes;
    for (size_t at = isolated.find("processor = "); at != std::string::npos; at = isolated.find("processor = ", at + 1))
        isolated.insert(isolated.find('\n', at) + 1, "isolate = true\n");
    ASSERT_NE(isolated.find("isolate = true\nparams = { drive"), std::string::npos) << isolated;
    auto r = render(nodes, 2, input(2), dir + "/in-process.wav", 256);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    r = render(isolated, 2, input(2), dir + "/isolated.wav", 256);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto a = test::readSound(dir + "/in-process.wav"), b = test::readSound(dir + "/isolated.wav");
    ASSERT_EQ(a.samples.size(), b.samples.size());
    EXPECT_EQ(a.samples, b.samples);
    EXPECT_GT(test::rmsDb(a.channel(0)), -60.0);
}

TEST(PluginLive, AnLv2NodeChangedFromTheSocketIsHeardChangedAndItsMetersRead) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("plugin-live");
    // player -> sc4 (compressor, with gain reduction as a control output) -> mda Overdrive -> lowpass -> gain.
    // The compressor releases fast, so a loop's level does not carry into the next; but SC4 steps its RMS
    // envelope every 4th sample counted from its start and the loop is 68545 frames (1 mod 4), so its state
    // repeats every 4 loops (a loop at the wrong phase differs by up to 1e-4): compare 4-loop periods.
    auto session = [&](const std::string& name, const std::string& drive) {
        std::string nodes = test::kLoopingNodes;
        nodes.insert(nodes.find("[[node]]\nid = \"lp\""),
                     node("comp", "lv2:http://plugin.org.uk/swh-plugins/sc4",
                              {{"ratio", "8"}, {"threshold", "-26"}, {"attack", "2"}, {"release", "20"}}) +
                         node("fx", "lv2:http://drobilla.net/plugins/mda/Overdrive", {{"drive", drive}}));
        return "[session]\nname = \"" + name + "\"\n[engine]\n" + nodes;
    };
    const size_t frames = 48000;
    std::string error;
    test::writeText(dir + "/before.toml", session("before", "0.1"));
    test::writeText(dir + "/after.toml", session("after", "0.9"));
    const size_t period = 4 * test::loopingFrames();
    test::Sound before = test::renderForCapture(dir + "/before.toml", dir, frames, &error, 4);
    ASSERT_EQ(error, "");
    fs::rename(dir + "/offline.wav", dir + "/before.wav");
    const test::Sound after = test::renderForCapture(dir + "/after.toml", dir, frames, &error, 4);
    ASSERT_EQ(error, "");
    const std::vector<std::string> env = {server.envEntry(), "XDG_RUNTIME_DIR=" + dir};
    const std::string client = "plugin_live";
    test::writeText(dir + "/live.toml", session(client, "0.1"));
    test::Child rackterm(test::spawn({test::binary(), "--headless", dir + "/live.toml"}, env, dir + "/out", dir + "/err"));
    ASSERT_GT(rackterm.pid(), 0);
    auto ctl = [&](const std::string& command) {
        return test::run({test::binary(), "ctl", "--session", client, command}, env, 20);
    };
    test::RunResult st;
    for (int i = 0; i < 100; ++i) {
        st = ctl("status");
        if (st.exitCode == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(st.exitCode, 0) << st.out << st.err << test::readText(dir + "/err");
    auto captureMatches = [&](const test::Sound& want) {
        const auto got = test::captureInProcess(server.name(), "recorder", frames, 2, dir + "/capture.wav", 10,
                                                {client + ":out_1", client + ":out_2"});
        EXPECT_EQ(got.exitCode, 0) << got.log;
        return test::matchCapture(got.sound.channel(0), got.sound.channel(1), want, period, 256);
    };
    auto m = captureMatches(before);
    EXPECT_EQ(m.mismatched, 0u) << m.failure;
    EXPECT_GT(m.compared, frames / 256 / 2);
    // The compressor's gain reduction is a live, read-only output.
    auto get = ctl("get comp.gain_red");
    ASSERT_EQ(get.exitCode, 0) << get.out << get.err;
    EXPECT_NE(get.out.find("comp.gain_red = -"), std::string::npos) << get.out;
    EXPECT_NE(get.out.find("(output, read-only)"), std::string::npos) << get.out;
    EXPECT_NE(ctl("list params comp").out.find("outputs: amplitude="), std::string::npos);
    EXPECT_NE(ctl("set comp.gain_red -3").exitCode, 0) << "an output cannot be set";
    // A change from the socket is heard: the capture equals the render with the new value, not the old.
    auto set = ctl("set fx.drive 0.9");
    ASSERT_EQ(set.exitCode, 0) << set.out << set.err;
    ASSERT_EQ(ctl("wait applied").exitCode, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // past the parameter's smoothing
    m = captureMatches(after);
    EXPECT_EQ(m.mismatched, 0u) << m.failure;
    EXPECT_GT(m.compared, frames / 256 / 2);
    const auto old = captureMatches(before);
    EXPECT_GT(old.mismatched, old.compared) << "the old drive is no longer what plays";
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << test::readText(dir + "/err");
    fs::remove_all(dir);
}

namespace {

const std::string kSampler = "lv2:http://lv2plug.in/plugins/eg-sampler";
const std::string kClick = "/usr/lib/lv2/eg-sampler.lv2/click.wav";

/// Where `needle` occurs in `hay` sample for sample, or npos.
size_t findExact(const std::vector<float>& hay, const std::vector<float>& needle) {
    if (needle.empty() || hay.size() < needle.size()) return std::string::npos;
    for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
        if (std::equal(needle.begin(), needle.end(), hay.begin() + static_cast<long>(i))) return i;
    return std::string::npos;
}

}  // namespace

TEST_F(PluginRender, TheSamplerLoadsItsSampleThroughTheWorkerAndANotePlaysItAtItsFrame) {
    // eg-sampler requires state:loadDefaultState, urid:map and worker:schedule; its default
    // state names click.wav, which it loads in its worker (it says so in trace messages).
    const std::string session = dir + "/s.toml";
    test::writeText(session, "[session]\nname = \"smp\"\n[engine]\ninput_ports = 1\noutput_ports = 1\n" + node("smp", kSampler, {}));
    test::writeText(dir + "/notes", "at 0.5 note smp 60\nat 1.25 note smp 72 90\n");
    test::Sound silence;
    silence.rate = 48000;
    silence.channels = 1;
    silence.samples.assign(96000, 0.0f);
    test::writeSound(dir + "/silence.wav", silence);
    auto r = test::run({test::binary(), "render", session, "-i", dir + "/silence.wav", "-o", dir + "/out.wav", "--script",
                        dir + "/notes"},
                       {"RACKTERM_LV2_TRACE=1"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("eg_sampler: trace: Scheduling restore"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("eg_sampler: trace: Loading " + kClick), std::string::npos) << r.err;
    const auto out = test::readSound(dir + "/out.wav").samples;
    // eg-sampler's render() overwrites the sample's last frame with silence (it breaks out
    // of its loop before counting that frame): every host hears the click without it.
    auto click = test::readSound(kClick).samples;
    click.pop_back();
    ASSERT_EQ(out.size(), 96000u);
    ASSERT_GT(click.size(), 100u);
    // The sample, sample for sample, at each note's exact frame; silence elsewhere.
    for (const size_t at : {size_t{24000}, size_t{60000}})
        EXPECT_TRUE(std::equal(click.begin(), click.end(), out.begin() + static_cast<long>(at))) << "at frame " << at;
    size_t loud = 0;
    for (const float s : out) loud += s != 0.0f;
    size_t inClick = 0;
    for (const float s : click) inClick += s != 0.0f;
    EXPECT_EQ(loud, 2 * inClick) << "nothing but the two notes";
    // A node without a MIDI input says so.
    test::writeText(dir + "/bad", "at 0.5 note smp2 60\n");
    test::writeText(session, "[session]\nname = \"smp\"\n[engine]\ninput_ports = 1\noutput_ports = 1\n" +
                                 node("smp2", "ladspa:amp_mono", {}));
    r = test::run({test::binary(), "render", session, "-i", dir + "/silence.wav", "-o", dir + "/out2.wav", "--script",
                   dir + "/bad"});
    EXPECT_NE(r.exitCode, 0);
    EXPECT_NE(r.err.find("node 'smp2' (amp_mono) takes no MIDI"), std::string::npos) << r.err;
}

TEST(PluginLive, TheSamplerPlaysLiveWhenANoteComesFromTheSocket) {
    test::JackServer server(48000, 256);
    ASSERT_TRUE(server.ready()) << server.error();
    const std::string dir = test::tempDir("sampler-live");
    const std::string client = "sampler_live";
    test::writeText(dir + "/s.toml", "[session]\nname = \"" + client + "\"\n[engine]\ninput_ports = 1\noutput_ports = 1\n" +
                                         node("smp", kSampler, {}));
    const std::vector<std::string> env = {server.envEntry(), "XDG_RUNTIME_DIR=" + dir, "RACKTERM_LV2_TRACE=1"};
    test::Child rackterm(test::spawn({test::binary(), "--headless", dir + "/s.toml"}, env, dir + "/out", dir + "/err"));
    ASSERT_GT(rackterm.pid(), 0);
    auto ctl = [&](const std::string& command) {
        return test::run({test::binary(), "ctl", "--session", client, command}, env, 20);
    };
    test::RunResult st;
    for (int i = 0; i < 100 && (st = ctl("status")).exitCode != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(st.exitCode, 0) << st.out << st.err << test::readText(dir + "/err");
    // Notes from the socket while a recorder listens: the click is in what JACK carried.
    std::atomic<bool> stop{false};
    std::thread notes([&] {
        while (!stop.load()) {
            ctl("note smp 60");
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    });
    const auto got = test::captureInProcess(server.name(), "recorder", 24000, 1, dir + "/capture.wav", 10, {client + ":out_1"});
    stop.store(true);
    notes.join();
    ASSERT_EQ(got.exitCode, 0) << got.log;
    auto click = test::readSound(kClick).samples;
    click.pop_back();  // as eg-sampler plays it (see the render test)
    EXPECT_NE(findExact(got.sound.samples, click), std::string::npos) << "the sample, sample for sample, in the capture";
    const std::string err = test::readText(dir + "/err");
    EXPECT_NE(err.find("eg_sampler: trace: Scheduling restore"), std::string::npos) << err;
    EXPECT_NE(err.find("eg_sampler: trace: Loading " + kClick), std::string::npos) << err;
    EXPECT_EQ(rackterm.stop(SIGTERM), 0) << err;
    fs::remove_all(dir);
}

TEST_F(PluginRender, APluginsStateIsSavedBesideTheSessionRestoredOnLoadAndCarriedAcrossASwap) {
    const std::string session = dir + "/s.toml", state = dir + "/s.state/smp";
    test::writeText(session, "[session]\nname = \"smp\"\n[engine]\ninput_ports = 1\noutput_ports = 1\n" + node("smp", kSampler, {}));
    test::Sound silence;
    silence.rate = 48000;
    silence.channels = 1;
    silence.samples.assign(96000, 0.0f);
    test::writeSound(dir + "/silence.wav", silence);
    auto renderWith = [&](const std::string& script, const std::string& out) {
        test::writeText(dir + "/script", script);
        return test::run({test::binary(), "render", session, "-i", dir + "/silence.wav", "-o", out, "--script", dir + "/script"});
    };
    // `save` writes the plugin's state beside the session: s.state/smp/state.ttl, the sample linked in.
    auto r = renderWith("save\n", dir + "/a.wav");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    ASSERT_TRUE(fs::exists(state + "/state.ttl")) << r.out << r.err;
    EXPECT_NE(test::readText(state + "/state.ttl").find("click.wav"), std::string::npos) << test::readText(state + "/state.ttl");
    ASSERT_TRUE(fs::exists(state + "/click.wav"));
    // Another sound in its place: what the session's state now holds.
    fs::remove(state + "/click.wav");
    fs::copy_file(kFront, state + "/click.wav");
    auto front = test::readSound(kFront).samples;
    front.pop_back();  // eg-sampler silences a sample's last frame (see above)
    // Opened again, the node plays it; after a hot swap (`reload`) it still does. Saved again, the
    // sample it took from the state folder is kept (copied into the new state, not lost with the old).
    r = renderWith("at 0.5 note smp 60\nat 0.75 reload smp\nat 1.0 note smp 60\nat 1.5 save\n", dir + "/b.wav");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    auto out = test::readSound(dir + "/b.wav").samples;
    ASSERT_GE(out.size(), 48000u + 12000u);
    EXPECT_TRUE(std::equal(front.begin(), front.begin() + 12000, out.begin() + 24000)) << "restored on load";
    EXPECT_TRUE(std::equal(front.begin(), front.begin() + 12000, out.begin() + 48000)) << "kept across the swap";
    ASSERT_TRUE(fs::is_regular_file(state + "/click.wav")) << "the sample is still in the state folder";
    EXPECT_EQ(test::readSound(state + "/click.wav").samples, test::readSound(kFront).samples);
    for (const auto& e : fs::directory_iterator(dir + "/s.state"))
        EXPECT_EQ(e.path().filename(), "smp") << "no folder left over from the save";
    r = renderWith("at 0.5 note smp 60\n", dir + "/c.wav");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    out = test::readSound(dir + "/c.wav").samples;
    EXPECT_TRUE(std::equal(front.begin(), front.begin() + 12000, out.begin() + 24000)) << "the state saved twice";
    // Saved as another session: the sample is copied into its folder (not linked to this one's).
    r = renderWith("save " + dir + "/copy.toml\n", dir + "/c2.wav");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(dir + "/copy.state/smp/click.wav"))) << "a copy, not a link";
    // `load` of another session restores that session's state, not this one's.
    const std::string other = dir + "/other.toml";
    test::writeText(other, "[session]\nname = \"other\"\n[engine]\ninput_ports = 1\noutput_ports = 1\n" + node("smp", kSampler, {}));
    r = renderWith("load " + other + "\nat 0.5 note smp 60\n", dir + "/d.wav");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    out = test::readSound(dir + "/d.wav").samples;
    auto clickSound = test::readSound(kClick).samples;
    clickSound.pop_back();
    EXPECT_TRUE(std::equal(clickSound.begin(), clickSound.end(), out.begin() + 24000)) << "other.toml has no saved state: the default sample";

    // The carry itself, in process: a fresh instance gets a playing one's state, not its own default.
    loader::setPluginWorkSynchronous(true);
    auto module = load(kSampler);
    ASSERT_TRUE(module);
    auto a = loader::createInstance(module, 48000, 256), b = loader::createInstance(module, 48000, 256);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(loader::hasPluginState(*a.value()));
    ASSERT_TRUE(loader::restorePluginState(*a.value(), state));
    auto carried = loader::copyPluginState(*a.value(), *b.value());
    ASSERT_TRUE(carried) << carried.error();
    std::vector<float> in(256, 0.0f), block(256), played;
    const float* ins[1] = {in.data()};
    float* outs[1] = {block.data()};
    const auto& d = b.value()->descriptor();
    d.process(b.value()->get(), ins, outs, 256);  // the worker's answers (the sample) arrive after a block
    const uint8_t on[3] = {0x90, 60, 100};
    ASSERT_TRUE(loader::sendMidi(*b.value(), on, 3));
    for (int i = 0; i < 60; ++i) {
        d.process(b.value()->get(), ins, outs, 256);
        played.insert(played.end(), block.begin(), block.end());
    }
    EXPECT_TRUE(std::equal(front.begin(), front.begin() + 12000, played.begin())) << "b plays a's sample";
    const auto restored = loader::restorePluginState(*a.value(), dir + "/nowhere");
    EXPECT_FALSE(restored);
    loader::setPluginWorkSynchronous(false);
    // A node removed and the session saved: its state folder goes with it.
    r = renderWith("remove smp\nsave\n", dir + "/e.wav");
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/s.state")) << "the removed node's state went with it";
}

TEST_F(PluginRender, TheExampleSessionChecksAndRendersAndCheckNamesAMistypedPlugin) {
    const std::string example = test::sourceDir() + "/examples/plugins.toml";
    auto r = test::run({test::binary(), "check", example});
    ASSERT_EQ(r.exitCode, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("src -> comp -> echo -> lp -> gain"), std::string::npos) << r.out;
    r = test::run({test::binary(), "render", example, "-i", kFront, "-o", dir + "/ex.wav"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_GT(test::rmsDb(test::readSound(dir + "/ex.wav").channel(0)), -40.0);
    // A mistyped plugin: one line with the file, line and column, and the plugin meant.
    std::string text = test::readText(example);
    text.replace(text.find("mda/Delay"), 9, "mda/Delya");
    test::writeText(dir + "/typo.toml", text);
    r = test::run({test::binary(), "check", dir + "/typo.toml"});
    EXPECT_EQ(r.exitCode, 1);
    EXPECT_NE(r.err.find("typo.toml:26:13: lv2:http://drobilla.net/plugins/mda/Delya: no such LV2 plugin"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("(did you mean 'lv2:http://drobilla.net/plugins/mda/Delay'?)"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    // `rackterm processors WORD` finds plugins; nothing matching is exit 2.
    r = test::run({test::binary(), "processors", "mda/delay"});
    EXPECT_EQ(r.exitCode, 0);
    EXPECT_NE(r.out.find("lv2:http://drobilla.net/plugins/mda/Delay  MDA Delay  (2 in, 2 out, 6 controls)"), std::string::npos)
        << r.out;
    r = test::run({test::binary(), "processors", "amp_mono"});
    EXPECT_NE(r.out.find("ladspa:amp_mono  Mono Amplifier  (amp.so, 1 in, 1 out, 1 control)"), std::string::npos) << r.out;
    EXPECT_EQ(test::run({test::binary(), "processors", "no-such-plugin-anywhere"}).exitCode, 2);
}

TEST_F(PluginRender, APluginResetAfterNaNPlaysDryWhileANewInstanceStartsAndGivesUpAfterThree) {
    // The rack mutes a block with NaN and resets the node; a plugin cannot be reset on the
    // audio thread (activate() may allocate), so the node plays dry until a new instance runs.
    writeTestBundle(dir + "/lv2");
    const std::string session = dir + "/s.toml";
    test::writeText(session, "[session]\nname = \"nan\"\n[engine]\ninput_ports = 1\noutput_ports = 1\n" +
                                 node("g", "lv2:urn:rackterm:test:nan-at-10", {{"gain", "0.5"}}));
    const std::string in = input(1), out = dir + "/out.wav";
    auto r = test::run({test::binary(), "render", session, "-i", in, "-o", out, "--block", "256"},
                       {"LV2_PATH=" + dir + "/lv2", "RACKTERM_SANDBOX=" + (fs::path(test::binary()).parent_path() / "rackterm-sandbox").string()});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_NE(r.err.find("node 'g' (lv2:urn:rackterm:test:nan-at-10) put out NaN/Inf; it plays dry while a new instance"),
              std::string::npos) << r.err;
    EXPECT_NE(r.err.find("node 'g': restarted"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("after 3 restarts in 10 s; it stays dry until `reload g`"), std::string::npos) << r.err;
    const auto got = test::readSound(out).samples, x = test::readSound(in).samples;
    ASSERT_EQ(got.size(), x.size());
    for (const float v : got) ASSERT_TRUE(std::isfinite(v));
    // Blocks 1-9: the gain; block 10: muted; then dry or the new instance's gain; never anything else.
    for (size_t f = 0; f < 9 * 256; ++f) ASSERT_EQ(got[f], x[f] * 0.5f) << f;
    for (size_t f = 9 * 256; f < 10 * 256; ++f) ASSERT_EQ(got[f], 0.0f) << f;
    size_t dry = 0, gained = 0;
    for (size_t f = 10 * 256; f < got.size(); ++f) {
        dry += got[f] == x[f] && x[f] != 0.0f;
        gained += got[f] == x[f] * 0.5f && x[f] != 0.0f;
    }
    EXPECT_GT(dry, 0u) << "dry while it waits, and after giving up";
    EXPECT_GT(gained, 0u) << "the new instances play";
}

TEST_F(PluginRender, APluginsLatencyIsKnownBeforeItPlaysAndTheGraphCompensatesIt) {
    // The fixture reports its 100 frames only from run(), as real plugins do: the host learns it from
    // a run on silence at creation, so the first rack already delays the dry path to match.
    writeTestBundle(dir + "/lv2");
    auto module = loadFromBundles(dir + "/lv2", "lv2:urn:rackterm:test:latency");
    ASSERT_TRUE(module) << module.error();
    auto inst = loader::createInstance(module.value(), 48000.0, 256);
    ASSERT_TRUE(inst) << inst.error();
    EXPECT_EQ(loader::latencyFrames(inst.value()->descriptor(), inst.value()->get()), 100u) << "before any block";
    // input -> late (100 frames) and input -> dry, both x0.5, summed at the output: x delayed 100 frames.
    const std::string session = dir + "/s.toml";
    test::writeText(session, besideDryPath("pdc", node("late", "lv2:urn:rackterm:test:latency", {{"gain", "0.5"}}),
                                           node("dry", "lv2:urn:rackterm:test:gain", {{"gain", "0.5"}})));
    const std::string in = input(1), out = dir + "/out.wav";
    auto r = test::run({test::binary(), "render", session, "-i", in, "-o", out, "--block", "256"},
                       {"LV2_PATH=" + dir + "/lv2"});
    ASSERT_EQ(r.exitCode, 0) << r.err;
    const auto got = test::readSound(out).samples, x = test::readSound(in).samples;
    ASSERT_EQ(got.size(), x.size());
    for (size_t f = 0; f < 100; ++f) ASSERT_EQ(got[f], 0.0f) << f;
    for (size_t f = 100; f < got.size(); ++f) ASSERT_FLOAT_EQ(got[f], x[f - 100]) << f;
}

TEST_F(PluginRender, AFixedBlockPluginRunsWholeBlocksOnlyAndItsExtraLatencyIsCompensated) {
    // It requires buf-size:fixedBlockLength and puts out NaN for a run of any other length. The
    // render ends on a short block and `at` lines cut blocks at frames 4862 and 30001: the plugin
    // still runs 256 frames at a time, one run late (256 frames of latency, reported), and a dry
    // path beside it (x0.5, summed at the output) is delayed to match: out = x, 256 frames late.
    writeTestBundle(dir + "/lv2");
    const std::string session = dir + "/s.toml";
    test::writeText(session, besideDryPath("fixed", node("late", "lv2:urn:rackterm:test:fixed-block", {{"gain", "0.5"}}),
                                           node("dry", "lv2:urn:rackterm:test:gain", {{"gain", "0.5"}})));
    test::writeText(dir + "/cuts", "at 0.101292 set late.gain 0.5\nat 0.625021 set late.gain 0.5\n");
    const std::string in = input(1), out = dir + "/out.wav";
    const std::vector<std::string> env = {"LV2_PATH=" + dir + "/lv2", "RACKTERM_PROCESSOR_PATH=" + test::moduleDir()};
    auto r = test::run({test::binary(), "render", session, "-i", in, "-o", out, "--block", "256", "--script", dir + "/cuts"}, env);
    ASSERT_EQ(r.exitCode, 0) << r.err;
    EXPECT_EQ(r.err.find("NaN"), std::string::npos) << r.err;
    const auto got = test::readSound(out).samples, x = test::readSound(in).samples;
    ASSERT_EQ(got.size(), x.size());
    ASSERT_NE(x.size() % 256, 0u) << "the render ends on a short block";
    for (size_t f = 0; f < 256; ++f) ASSERT_EQ(got[f], 0.0f) << f;
    for (size_t f = 256; f < got.size(); ++f) ASSERT_EQ(got[f], x[f - 256]) << f;
    // The node reports the run's 256 frames as its latency (so the graph compensates other paths).
    auto module = loadFromBundles(dir + "/lv2", "lv2:urn:rackterm:test:fixed-block");
    ASSERT_TRUE(module) << module.error();
    auto inst = loader::createInstance(module.value(), 48000.0, 128);
    ASSERT_TRUE(inst) << inst.error();
    EXPECT_EQ(loader::latencyFrames(inst.value()->descriptor(), inst.value()->get()), 128u);
}
