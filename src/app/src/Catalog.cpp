#include <rackterm/app/Catalog.hpp>

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
    return names;
}

std::string resolveAgainst(const std::string& sessionPath, const std::string& path) {
    if (path.empty() || fs::path(path).is_absolute() || sessionPath.empty()) return path;
    return (fs::absolute(sessionPath).parent_path() / path).lexically_normal().string();
}

}  // namespace rackterm::app
