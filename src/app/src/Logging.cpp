#include <rackterm/app/Logging.hpp>

#include <rackterm/engine/JackBackend.hpp>

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace rackterm::app {

namespace fs = std::filesystem;

std::string stateFolder() {
    fs::path base;
    if (const char* s = std::getenv("XDG_STATE_HOME"); s && *s) base = s;
    else if (const char* h = std::getenv("HOME"); h && *h) base = fs::path(h) / ".local" / "state";
    else return {};
    std::error_code ec;
    fs::create_directories(base / "rackterm", ec);
    return ec ? std::string() : (base / "rackterm").string();
}

void initLogging(bool toStderr, std::shared_ptr<spdlog::sinks::sink> extra) {
    std::vector<spdlog::sink_ptr> sinks;
    if (const std::string dir = stateFolder(); !dir.empty()) {
        try {
            sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(dir + "/rackterm.log", 1 << 20, 3));
        } catch (const spdlog::spdlog_ex&) {
        }
    }
    if (toStderr) {
        auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        err->set_pattern("rackterm: %^%l%$: %v");
        sinks.push_back(err);
    }
    if (extra) sinks.push_back(extra);
    auto logger = std::make_shared<spdlog::logger>("rackterm", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    engine::JackBackend::setMessageHandler([](const char* line) { spdlog::debug("jack: {}", line); });
}

}  // namespace rackterm::app
