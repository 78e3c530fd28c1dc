#include <rackterm/app/LineFramer.hpp>

namespace rackterm::app {

void LineFramer::append(std::string_view bytes) { pending_.append(bytes); }

bool LineFramer::hasLine() const noexcept { return pending_.find('\n') != std::string::npos; }

void LineFramer::finish() {
    if (!pending_.empty() && pending_.find('\n') == std::string::npos) {
        if (discarding_) pending_.clear();
        else pending_ += '\n';
    }
    discarding_ = false;
}

std::vector<LineFramer::Item> LineFramer::take(size_t budget) {
    std::vector<Item> items;
    for (size_t used = 0; used < budget; ++used) {
        const size_t nl = pending_.find('\n');
        if (nl == std::string::npos) {
            if (pending_.size() > kMaxLine) {  // an over-long line: refuse it once, drop it up to its newline
                if (!discarding_) items.push_back(Item{{}, true});
                discarding_ = true;
                pending_.clear();
            }
            break;
        }
        std::string line = pending_.substr(0, nl);
        pending_.erase(0, nl + 1);
        if (discarding_ || line.size() > kMaxLine) {
            if (!discarding_) items.push_back(Item{{}, true});
            discarding_ = false;
            continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        items.push_back(Item{std::move(line), false});
    }
    return items;
}

}  // namespace rackterm::app
