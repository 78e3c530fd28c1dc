#include <rackterm/app/Trial.hpp>

#include <rackterm/loader/Trial.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace rackterm::app {

namespace fs = std::filesystem;

std::string sandboxPath() {
    if (const char* env = std::getenv("RACKTERM_SANDBOX"); env && *env) return env;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return {};
    const fs::path p = exe.parent_path() / "rackterm-sandbox";
    return fs::is_regular_file(p, ec) ? p.string() : std::string();
}

namespace {
std::string number(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}
}  // namespace

std::unique_ptr<TrialRun> TrialRun::start(const std::string& modulePath, double sampleRateHz, uint32_t blockFrames,
                                          const std::vector<std::pair<std::string, float>>& values, double now) {
    std::unique_ptr<TrialRun> t(new TrialRun);
    const std::string sandbox = sandboxPath();
    if (sandbox.empty() || !t->spawn(sandbox, modulePath, sampleRateHz, blockFrames, values, now)) {
        // The control thread runs it: NaN and slowness are caught, a crash is not.
        auto trial = loader::trialModule(modulePath, sampleRateHz, blockFrames, values);
        t->loadError_ = !trial;
        t->problem_ = trial ? trial.value().problem : trial.error();
        t->median_ = trial ? trial.value().medianBlockSeconds : 0.0;
    }
    return t;
}

bool TrialRun::spawn(const std::string& sandbox, const std::string& modulePath, double sampleRateHz, uint32_t blockFrames,
                     const std::vector<std::pair<std::string, float>>& values, double now) {
    std::vector<std::string> args = {sandbox, "trial", modulePath, number(sampleRateHz), std::to_string(blockFrames)};
    for (const auto& [id, v] : values) args.push_back(id + "=" + number(v));
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int pipeFds[2];
    if (::pipe2(pipeFds, O_CLOEXEC) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipeFds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int r = posix_spawn(&pid, sandbox.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipeFds[1]);
    if (r != 0) {
        ::close(pipeFds[0]);
        return false;
    }
    ::fcntl(pipeFds[0], F_SETFL, O_NONBLOCK);
    pid_ = pid;
    out_ = pipeFds[0];
    isolated_ = true;
    deadline_ = now + kTrialTimeoutSeconds;
    return true;
}

TrialRun::~TrialRun() {
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
}

void TrialRun::readOutput() {
    char buf[4096];
    for (ssize_t n; (n = ::read(out_, buf, sizeof buf)) > 0;) {
        text_.append(buf, static_cast<size_t>(n));
        if (text_.size() > 65536) {  // a chatty processor: keep the tail, where the verdict is
            const size_t cut = text_.find('\n', text_.size() - 32768);
            text_.erase(0, cut == std::string::npos ? text_.size() - 32768 : cut + 1);
        }
    }
}

bool TrialRun::poll(double now) {
    if (pid_ <= 0) return true;
    readOutput();
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
        readOutput();
        pid_ = -1;
        finish(status);
        return true;
    }
    if (now < deadline_) return false;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    finish(-1);
    return true;
}

void TrialRun::wait() {
    while (pid_ > 0) {
        pollfd p{out_, POLLIN, 0};
        ::poll(&p, 1, 5);
        const double now =
            std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
        poll(now);
    }
}

void TrialRun::finish(int status) {
    ::close(out_);
    out_ = -1;
    // The last line says how it ended; the last "stage" line where it was.
    std::string last, stage;
    for (size_t at = 0; at < text_.size();) {
        const size_t eol = text_.find('\n', at);
        if (eol == std::string::npos) break;
        const std::string line = text_.substr(at, eol - at);
        at = eol + 1;
        if (line.rfind("stage ", 0) == 0) stage = line.substr(6);
        else last = line;
    }
    std::string where;
    if (const size_t sp = stage.find(' '); sp != std::string::npos)
        where = "block " + stage.substr(sp + 1) + " of the " + stage.substr(0, sp);
    if (status == -1) {
        problem_ = "did not finish " + (where.empty() ? std::string("loading") : where) + " within " +
                   number(kTrialTimeoutSeconds) + " s (an endless loop?)";
    } else if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = sigabbrev_np(sig);
        problem_ = std::string("crashed (SIG") + (name ? name : std::to_string(sig).c_str()) + ") " +
                   (where.empty() ? std::string("while loading") : "in " + where);
    } else if (last.rfind("ok ", 0) == 0) {
        median_ = std::atof(last.c_str() + 3);
    } else if (last.rfind("refused ", 0) == 0) {
        problem_ = last.substr(8);
    } else if (last.rfind("error ", 0) == 0) {
        problem_ = last.substr(6);
        loadError_ = true;
    } else {
        problem_ = "its trial ended without a verdict (exit status " +
                   std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
    }
}

}  // namespace rackterm::app
