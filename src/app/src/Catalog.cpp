#include <rackterm/app/Catalog.hpp>
#include <rackterm/app/Packages.hpp>

#include <rackterm/loader/Plugins.hpp>

#include <cctype>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#ifndef RACKTERM_INSTALL_MODULE_SUBDIR
#define RACKTERM_INSTALL_MODULE_SUBDIR "lib/rackterm/processors"
#endif

namespace rackterm::app {

namespace fs = std::filesystem;

std::vector<std::string> moduleFolders() {
    std::vector<std::string> out;
    if (const char* env = std::getenv("RACKTERM_PROCESSOR_PATH")) {
        std::string all = env;
        size_t start = 0;
        while (start <= all.size()) {
            size_t colon = all.find(':', start);
            if (colon == std::string::npos) colon = all.size();
            if (colon > start) out.push_back(all.substr(start, colon - start));
            start = colon + 1;
        }
    }
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        out.push_back((exe.parent_path() / "processors").string());
        out.push_back((exe.parent_path().parent_path() / RACKTERM_INSTALL_MODULE_SUBDIR).string());
    }
    return out;
}

std::string builtinModulePath(const std::string& name) {
    for (const auto& dir : moduleFolders()) {
        const fs::path p = fs::path(dir) / ("lib" + name + ".so");
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) return p.string();
    }
    return {};
}

std::vector<std::string> processorNames() {
    std::vector<std::string> names = {"player"};
    for (const auto& dir : moduleFolders()) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(dir, ec)) {
            const std::string f = e.path().filename().string();
            if (f.size() > 6 && f.rfind("lib", 0) == 0 && f.substr(f.size() - 3) == ".so") {
                std::string n = f.substr(3, f.size() - 6);
                if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
            }
        }
    }
    for (auto& n : packageComponentNames()) names.push_back(std::move(n));  // "ID/COMPONENT"
    return names;
}

namespace {

std::string lowered(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string counts(const loader::PluginInfo& p) {
    auto n = [](uint32_t v, const char* what) { return std::to_string(v) + " " + what; };
    return n(p.audioInputs, "in") + ", " + n(p.audioOutputs, "out") + ", " +
           n(p.controlInputs, p.controlInputs == 1 ? "control" : "controls") +
           (p.controlOutputs ? ", " + n(p.controlOutputs, p.controlOutputs == 1 ? "meter" : "meters") : "");
}

}  // namespace

std::vector<std::string> processorListing(const std::string& filter) {
    const std::string f = lowered(filter);
    std::vector<std::string> out;
    auto keep = [&](const std::string& entry, const char* kind) {
        if (f.empty() || f == kind || lowered(entry).find(f) != std::string::npos) out.push_back(entry);
    };
    for (const auto& name : processorNames())
        if (!isPackageReference(name)) keep(name + " (built-in)", "built-in");
    for (const auto& p : installedPackages())
        for (const auto& c : p.components) keep(p.id + "/" + c.first + " (package " + p.id + " " + p.version + ")", "package");
    for (const auto& p : loader::installedPlugins()) {
        const bool lv2 = p.reference.rfind("lv2:", 0) == 0;
        if (lv2) keep(p.reference + "  " + p.name + "  (" + counts(p) + ")", "lv2");
        else keep(p.reference + "  " + p.name + "  (" + fs::path(p.file).filename().string() + ", " + counts(p) + ")", "ladspa");
    }
    return out;
}

std::vector<std::string> pluginNamesStartingWith(const std::string& prefix) {
    std::vector<std::string> out;
    if (prefix.empty()) return out;
    if (prefix.find(':') == std::string::npos) {  // "l", "lad": the kinds first, not hundreds of names
        for (const char* kind : {"lv2:", "ladspa:"})
            if (std::string(kind).rfind(prefix, 0) == 0) out.push_back(kind);
        return out;
    }
    if (prefix.rfind("lv2:", 0) != 0 && prefix.rfind("ladspa:", 0) != 0) return out;
    for (const auto& p : loader::installedPlugins())
        if (p.reference.rfind(prefix, 0) == 0) out.push_back(p.reference);
    return out;
}

std::string resolveAgainst(const std::string& sessionPath, const std::string& path) {
    if (path.empty() || fs::path(path).is_absolute() || sessionPath.empty()) return path;
    return (fs::absolute(sessionPath).parent_path() / path).lexically_normal().string();
}

}  // namespace rackterm::app
