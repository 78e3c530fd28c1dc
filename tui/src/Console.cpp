#include <rackterm/tui/Console.hpp>

#include "Screen.hpp"

#include <rackterm/app/Commands.hpp>
#include <rackterm/app/Logging.hpp>
#include <rackterm/app/Modes.hpp>
#include <rackterm/app/Values.hpp>
#include <rackterm/common/Files.hpp>
#include <rackterm/common/Text.hpp>

#include <curses.h>
#include <langinfo.h>
#include <poll.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

namespace rackterm::tui {

namespace {

/// spdlog sink feeding the log pane (newest last, at most 500 lines).
class PaneSink : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::deque<std::string> lines;

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        std::string level = msg.level >= spdlog::level::err ? "error: " : msg.level == spdlog::level::warn ? "warning: " : "";
        lines.push_back(level + std::string(msg.payload.data(), msg.payload.size()));
        while (lines.size() > 500) lines.pop_front();
    }
    void flush_() override {}
};

class Console;
Console* active = nullptr;  // readline's callbacks are plain functions

class Console {
public:
    Console(app::Live& live, std::shared_ptr<PaneSink> sink) : live_(live), sink_(std::move(sink)) {
        bindKeys();
        if (!live_.reload) return;
        // Build progress and results also go to the message line; the first compiler error too.
        live_.reload->setReporters(
            [this](const std::string& l) {
                spdlog::info("{}", l);
                if (l.rfind("building ", 0) == 0 || l.find(": build ok in ") != std::string::npos ||
                    l.find(": module replaced") != std::string::npos) {
                    view_.message = l;
                    view_.messageIsError = false;
                }
            },
            [this](const std::string& l) {
                spdlog::warn("{}", l);
                view_.message = l;
                view_.messageIsError = true;
            });
    }
    ~Console() {
        // The reporters capture this console: hand hot reload back to the log alone.
        if (live_.reload)
            live_.reload->setReporters([](const std::string& l) { spdlog::info("{}", l); },
                                       [](const std::string& l) { spdlog::warn("{}", l); });
    }
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;
    int run(int stopFd);

    // readline glue
    int takeChar() {
        if (feedPos_ < feed_.size()) return static_cast<unsigned char>(feed_[feedPos_++]);
        return EOF;
    }
    bool charReady() const { return feedPos_ < feed_.size(); }
    void redisplay() { drawCommandLine(prompt_, rl_line_buffer ? rl_line_buffer : "", static_cast<size_t>(rl_point)); }
    void lineDone(char* line);
    const app::Runtime& runtime() const { return *live_.runtime; }
    /// Show readline's list of several completions in the log pane.
    void showMatches(char** matches, int count);

private:
    /// One row of the key table: the keys, how help shows them, what they do.
    struct KeyBinding {
        std::vector<int> keys;
        const char* label;
        const char* help;
        std::function<void()> action;
    };
    void bindKeys();
    void onKey(int key);
    void onNormalKey(int key);
    void onCommandKey(int key);
    void feed(const std::string& bytes);
    enum class LineMode { Command, Find };
    void startCommand(const std::string& prompt = ":", const std::string& prefill = "", LineMode mode = LineMode::Command);
    void endCommand();
    void find(const std::string& text);
    void adjust(int steps);
    void moveParam(int delta);
    /// Select the next (`delta` > 0) or previous node, wrapping around; its first parameter.
    void selectNode(int delta);
    void say(const app::Reply& r);
    /// Run a command line from the console; a pending reply is shown when final.
    void run(const std::string& line);
    void tick();
    /// Keep the selected node and parameter inside the rack as it is now.
    void keepSelection();
    void draw();
    app::Runtime& rt() { return *live_.runtime; }

    app::Live& live_;
    std::shared_ptr<PaneSink> sink_;
    View view_;
    bool commandMode_ = false;
    LineMode lineMode_ = LineMode::Command;
    std::string prompt_ = ":";
    bool confirmQuit_ = false;
    bool confirmRecover_ = false;  // the bottom line offers the recovery file found at open
    bool quit_ = false;
    std::string feed_;
    size_t feedPos_ = 0;
    std::vector<KeyBinding> keys_;
    std::vector<std::function<std::optional<app::Reply>()>> pending_;  // replies still to come, in order
};

int rlGetc(FILE*) { return active ? active->takeChar() : EOF; }
int rlInputAvailable() { return active && active->charReady(); }
void rlRedisplay() {
    if (active) active->redisplay();
}
void rlLine(char* line) {
    if (active) active->lineDone(line);
}
std::vector<std::string> completionWords;

char* completionGenerator(const char* /*text*/, int state) {
    static size_t next = 0;
    if (state == 0) next = 0;
    if (next >= completionWords.size()) return nullptr;
    return strdup(completionWords[next++].c_str());
}

char** rlComplete(const char* text, int start, int /*end*/) {
    if (!active) return nullptr;
    const app::Completions c = app::complete(active->runtime(), std::string(rl_line_buffer, static_cast<size_t>(start)), text);
    if (c.files) return rl_completion_matches(text, rl_filename_completion_function);
    rl_attempted_completion_over = 1;
    if (c.words.empty()) return nullptr;
    completionWords = c.words;
    // "node." continues into a parameter: no space after it.
    rl_completion_append_character = (c.words.size() == 1 && (c.words[0].back() == '.' || c.words[0].back() == ':')) ? '\0' : ' ';
    return rl_completion_matches(text, completionGenerator);
}

void rlShowMatches(char** matches, int count, int /*longest*/) {
    if (active) active->showMatches(matches, count);
}

void rlNoPrep(int) {}
void rlNoDeprep() {}

/// The history file, or "" when there is none to use: readline reads and
/// writes it by path, so anything but a regular file (a FIFO would block the
/// console at start and at quit) is left alone.
std::string historyFile() {
    const std::string dir = app::stateFolder();
    if (dir.empty()) return {};
    const std::string path = dir + "/history";
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        spdlog::warn("{}: is {}, not a regular file; command history is not kept", printable(path, kPathChars),
                     files::kindOf(st.st_mode));
        return {};
    }
    return path;
}

void Console::say(const app::Reply& r) {
    if (r.text.empty()) return;
    const std::string text = printable(r.text, std::string::npos);  // one line on the screen, whatever was typed
    view_.message = r.ok ? text : "error: " + text;
    view_.messageIsError = !r.ok;
    if (r.ok) spdlog::info("{}", text);
    else spdlog::warn("{}", text);
}

void Console::run(const std::string& line) {
    app::CommandContext ctx = live_.context(app::Source::Console);
    app::Reply r = app::execute(ctx, line);
    if (r.waiting()) {
        pending_.push_back(std::move(r.pending));
        return;
    }
    say(r);
    if (r.quit) quit_ = true;
}

void Console::lineDone(char* line) {
    if (line) {
        if (*line) add_history(line);
        std::string text = line;
        std::free(line);
        const LineMode mode = lineMode_;
        endCommand();
        if (mode == LineMode::Find) find(text);
        else run(text);
    } else {
        endCommand();
    }
}

void Console::startCommand(const std::string& prompt, const std::string& prefill, LineMode mode) {
    commandMode_ = true;
    lineMode_ = mode;
    prompt_ = prompt;
    view_.message.clear();
    curs_set(1);
    rl_callback_handler_install(prompt.c_str(), &rlLine);
    if (!prefill.empty()) rl_insert_text(prefill.c_str());
}

void Console::showMatches(char** matches, int count) {
    std::string all;
    for (int i = 1; i <= count; ++i) all += std::string(i > 1 ? "  " : "") + matches[i];
    sink_->lines.push_back(all);
    while (sink_->lines.size() > 500) sink_->lines.pop_front();
}

void Console::find(const std::string& text) {
    // The first node id, then the first parameter id (after the selection), containing `text`.
    if (text.empty()) return;
    const size_t count = rt().nodeCount();
    for (size_t k = 1; k <= count; ++k) {
        const size_t n = (view_.node + k) % count;
        if (rt().nodeId(n).find(text) != std::string::npos) {
            view_.node = n;
            view_.param = 0;
            view_.message = "found node " + rt().nodeId(n);
            return;
        }
    }
    for (size_t k = 0; k < count; ++k) {
        const size_t n = (view_.node + k) % count;
        const auto& d = rt().descriptor(n);
        for (uint32_t p = 0; p < d.param_count; ++p)
            if (std::string(d.params[p].id).find(text) != std::string::npos && (n != view_.node || p > view_.param || k > 0)) {
                view_.node = n;
                view_.param = p;
                view_.message = "found " + rt().nodeId(n) + "." + d.params[p].id;
                return;
            }
    }
    view_.message = "no node or parameter matches " + quote(text);
    view_.messageIsError = true;
}

void Console::endCommand() {
    commandMode_ = false;
    rl_callback_handler_remove();
    curs_set(0);
}

void Console::feed(const std::string& bytes) {
    feed_ = bytes;
    feedPos_ = 0;
    while (commandMode_ && feedPos_ < feed_.size()) rl_callback_read_char();
    feed_.clear();
    feedPos_ = 0;
}

void Console::onCommandKey(int key) {
    switch (key) {
        case 27:  // a lone Escape cancels the line
            rl_replace_line("", 0);
            endCommand();
            return;
        case KEY_LEFT: feed("\x1b[D"); return;
        case KEY_RIGHT: feed("\x1b[C"); return;
        case KEY_UP: feed("\x1b[A"); return;
        case KEY_DOWN: feed("\x1b[B"); return;
        case KEY_HOME: feed("\x01"); return;
        case KEY_END: feed("\x05"); return;
        case KEY_DC: feed("\x04"); return;
        case KEY_BACKSPACE:
        case 8:
        case 127:
            if (rl_end == 0) {  // backspace on an empty line leaves, as in vim
                endCommand();
                return;
            }
            feed("\x7f");
            return;
        case KEY_ENTER: feed("\n"); return;
        default:
            if (key >= 0 && key < 256) feed(std::string(1, static_cast<char>(key)));
    }
}

void Console::moveParam(int delta) {
    if (rt().nodeCount() == 0) return;
    // Across nodes in the order the rack pane shows them.
    const std::vector<size_t> o = rt().processingOrder();
    auto params = [&](int position) {
        return std::max<int>(1, static_cast<int>(rt().descriptor(o[static_cast<size_t>(position)]).param_count));
    };
    int position = static_cast<int>(std::find(o.begin(), o.end(), view_.node) - o.begin());
    if (position >= static_cast<int>(o.size())) position = 0;
    int param = static_cast<int>(view_.param) + delta;
    while (param < 0 && position > 0) param += params(--position);
    while (param >= params(position) && position + 1 < static_cast<int>(o.size())) param -= params(position++);
    const size_t node = o[static_cast<size_t>(position)];
    const int count = static_cast<int>(rt().descriptor(node).param_count);
    view_.node = node;
    view_.param = static_cast<size_t>(std::clamp(param, 0, std::max(0, count - 1)));
}

void Console::adjust(int steps) {
    if (rt().nodeCount() == 0 || rt().descriptor(view_.node).param_count == 0) return;
    const auto& info = rt().descriptor(view_.node).params[view_.param];
    const float v = app::stepValue(info, rt().value(view_.node, view_.param), steps);
    // A held key is one undo step: changes within a second of each other merge.
    if (auto g = rt().setValue(view_.node, view_.param, v, app::Merge::Run); g)
        view_.message = rt().nodeId(view_.node) + "." + info.id + " = " + app::formatValue(info, v);
}

void Console::selectNode(int delta) {
    if (const size_t nodes = rt().nodeCount()) {
        const std::vector<size_t> o = rt().processingOrder();
        const size_t position = static_cast<size_t>(std::find(o.begin(), o.end(), view_.node) - o.begin()) % nodes;
        view_.node = o[(position + (delta > 0 ? 1 : nodes - 1)) % nodes];
        view_.param = 0;
    }
}

void Console::bindKeys() {
    auto selected = [this] { return rt().nodeCount() && rt().descriptor(view_.node).param_count; };
    keys_ = {
        {{'j', KEY_DOWN}, "j k / Down Up", "select parameter (across nodes)", [this] { moveParam(1); }},
        {{'k', KEY_UP}, "", "", [this] { moveParam(-1); }},
        {{'\t'}, "Tab / Shift-Tab", "select node", [this] { selectNode(1); }},
        {{KEY_BTAB}, "", "", [this] { selectNode(-1); }},
        {{'h', KEY_LEFT}, "h l / Left Right", "adjust value (0.5 dB or 1 % steps; held: one undo step)", [this] { adjust(-1); }},
        {{'l', KEY_RIGHT}, "", "", [this] { adjust(1); }},
        {{'H', KEY_SLEFT}, "H L", "adjust x10", [this] { adjust(-10); }},
        {{'L', KEY_SRIGHT}, "", "", [this] { adjust(10); }},
        {{'='}, "=", "type a value",
         [this, selected] {
             if (selected())
                 startCommand(":", "set " + rt().nodeId(view_.node) + "." + rt().descriptor(view_.node).params[view_.param].id + " ");
         }},
        {{'d'}, "d", "back to default",
         [this, selected] {
             if (!selected()) return;
             const auto& info = rt().descriptor(view_.node).params[view_.param];
             if (rt().setValue(view_.node, view_.param, info.default_value))
                 view_.message = rt().nodeId(view_.node) + "." + info.id + " = " + app::formatValue(info, info.default_value) + " (default)";
         }},
        {{'b'}, "b", "bypass the node",
         [this] {
             if (rt().nodeCount()) run("bypass " + rt().nodeId(view_.node));
         }},
        {{'u'}, "u", "undo the last change", [this] { run("undo"); }},
        {{18}, "Ctrl-R", "redo", [this] { run("redo"); }},
        {{'/'}, "/", "find a node or parameter", [this] { startCommand("/", "", LineMode::Find); }},
        {{':'}, ":", "command line (Tab completes, Up/Down history)", [this] { startCommand(); }},
        {{KEY_PPAGE}, "PgUp PgDn End", "scroll the log", [this] { view_.logScroll += std::max(1, LINES / 3); }},
        {{KEY_NPAGE}, "", "", [this] { view_.logScroll = std::max(0, view_.logScroll - std::max(1, LINES / 3)); }},
        {{KEY_END}, "", "", [this] { view_.logScroll = 0; }},
        {{'g'}, "g", "graph view: nodes and connections (h j k l scroll, g closes)",
         [this] {
             view_.graph = !view_.graph;
             view_.graphX = view_.graphY = 0;
         }},
        {{'?'}, "?", "this help (any key closes it)", [this] { view_.help = true; }},
        {{'q'}, "q", "quit (asks when unsaved)",
         [this] {
             if (rt().dirty()) {
                 confirmQuit_ = true;
                 view_.prompt = "Unsaved changes. Save before quitting? (y)es (n)o, any other key cancels";
             } else {
                 quit_ = true;
             }
         }},
    };
    for (const auto& k : keys_)
        if (*k.label) view_.keyHelp.emplace_back(k.label, k.help);
}

void Console::onNormalKey(int key) {
    keepSelection();  // a command typed before may have removed nodes
    if (view_.help) {
        view_.help = false;
        return;
    }
    if (view_.graph) {  // the graph view scrolls; g, q or Esc close it
        switch (key) {
            case 'h': case KEY_LEFT: view_.graphX = view_.graphX >= 8 ? view_.graphX - 8 : 0; return;
            case 'l': case KEY_RIGHT: view_.graphX += 8; return;
            case 'k': case KEY_UP: view_.graphY = view_.graphY >= 2 ? view_.graphY - 2 : 0; return;
            case 'j': case KEY_DOWN: view_.graphY += 2; return;
            case 'g': case 'q': case 27: view_.graph = false; return;
            default: break;  // the other keys work as in the rack
        }
    }
    if (confirmRecover_) {
        confirmRecover_ = false;
        view_.prompt.clear();
        if (key == 'r' || key == 'R') run("recover");
        else if (key == 'd' || key == 'D') run("discard");
        return;
    }
    if (confirmQuit_) {
        confirmQuit_ = false;
        view_.prompt.clear();
        if (key == 'y' || key == 'Y') {
            run("x");  // save, then quit once saved
        } else if (key == 'n' || key == 'N') {
            quit_ = true;
        }
        return;
    }
    for (const auto& k : keys_)
        if (std::find(k.keys.begin(), k.keys.end(), key) != k.keys.end()) {
            k.action();
            return;
        }
}

void Console::onKey(int key) {
    if (key == KEY_RESIZE) return;  // ncurses updated LINES/COLS; next draw adapts
    if (commandMode_) onCommandKey(key);
    else onNormalKey(key);
}

void Console::tick() {
    if (app::serviceLive(live_)) quit_ = true;  // `quit` over the control socket
    keepSelection();
    while (!pending_.empty()) {  // the console's own commands answer in order
        std::optional<app::Reply> r = pending_.front()();
        if (!r) break;
        pending_.erase(pending_.begin());
        say(*r);
        if (r->quit) quit_ = true;
    }
}

void Console::keepSelection() {
    // add, remove, load and undo change the nodes: keep the selection inside them.
    const size_t nodes = rt().nodeCount();
    if (view_.node >= nodes) view_.node = nodes ? nodes - 1 : 0;
    const size_t params = nodes ? rt().descriptor(view_.node).param_count : 0;
    if (view_.param >= params) view_.param = params ? params - 1 : 0;
}

void Console::draw() {
    drawScreen(rt(), live_.status(), view_, sink_->lines);
    if (commandMode_) redisplay();
    else drawHintLine(view_);
    refresh();
}

int Console::run(int stopFd) {
    const char* codeset = nl_langinfo(CODESET);
    view_.unicode = codeset && std::strcmp(codeset, "UTF-8") == 0;
    view_.color = std::getenv("NO_COLOR") == nullptr;
    set_escdelay(25);
    initscr();
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    nodelay(stdscr, TRUE);
    curs_set(0);
    view_.color = view_.color && has_colors();
    initColors(view_.color);

    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_getc_function = &rlGetc;
    rl_input_available_hook = &rlInputAvailable;
    rl_redisplay_function = &rlRedisplay;
    rl_prep_term_function = &rlNoPrep;
    rl_attempted_completion_function = &rlComplete;
    rl_completion_display_matches_hook = &rlShowMatches;
    rl_completer_word_break_characters = const_cast<char*>(" \t");  // '.' stays inside NODE.PARAM
    FILE* devnull = std::fopen("/dev/null", "w");
    if (devnull) rl_outstream = devnull;  // readline must never write to the curses screen
    rl_deprep_term_function = &rlNoDeprep;
    const std::string hist = historyFile();
    if (!hist.empty()) read_history(hist.c_str());
    active = this;

    int code = app::kExitOk;
    bool signalled = false;
    double lastDraw = 0;
    if (live_.recovery && live_.recovery->offered()) {
        confirmRecover_ = true;
        view_.prompt = "Unsaved edits of an earlier session were kept: (r)ecover, (d)iscard, other key: later";
    }
    while (!quit_) {
        std::vector<pollfd> fds = {{STDIN_FILENO, POLLIN, 0}, {stopFd, POLLIN, 0}};
        for (const auto& f : live_.pollFds()) fds.push_back(f);
        ::poll(fds.data(), fds.size(), live_.pollTimeout(pending_.empty() ? 30 : 2));
        if (fds[1].revents & POLLIN) {  // SIGHUP (the terminal went away), SIGTERM, SIGINT
            signalled = true;
            break;
        }
        for (int key; (key = getch()) != ERR;) {
            onKey(key);
            if (quit_) break;
        }
        tick();
        if (app::stopForServerLoss(live_)) {
            code = app::kExitEnvironment;
            break;
        }
        if (app::nowSeconds() - lastDraw > 0.03) {
            draw();
            lastDraw = app::nowSeconds();
        }
    }
    if (commandMode_) rl_callback_handler_remove();
    active = nullptr;
    if (!hist.empty()) {
        write_history(hist.c_str());
        history_truncate_file(hist.c_str(), 1000);
    }
    endwin();
    if (devnull) std::fclose(devnull);
    live_.end(!signalled && code == app::kExitOk);
    if (code == app::kExitEnvironment)
        std::fprintf(stderr, "rackterm: the JACK server stopped; start it again and reopen the session\n");
    return code;
}

}  // namespace

int runConsole(const std::string& sessionPath, app::LiveOptions options) {
    std::setlocale(LC_ALL, "");
    auto sink = std::make_shared<PaneSink>();
    sink->set_pattern("%H:%M:%S %v");
    app::initLogging(false, sink);
    const int stopFd = app::installStopSignals();
    int code = app::kExitOk;
    auto live = app::openLive(sessionPath, code, options);
    if (!live) {
        std::fprintf(stderr, "rackterm: %s\n", live.error().c_str());
        return code;
    }
    Console console(*live.value(), sink);
    return console.run(stopFd);
}

}  // namespace rackterm::tui
