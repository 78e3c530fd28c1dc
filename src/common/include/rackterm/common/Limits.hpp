// Limits that hold on every path a session grows by (the session file,
// `load`, `add`): one number and one message each. [any thread]
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rackterm {

/// Most nodes a rack holds (the engine sizes its meter frames by it).
inline constexpr size_t kMaxNodes = 256;

/// The one message for a session that would pass kMaxNodes:
/// "a rack holds at most 256 nodes; this would make 257".
inline std::string nodeLimitMessage(size_t wouldHave) {
    return "a rack holds at most " + std::to_string(kMaxNodes) + " nodes; this would make " + std::to_string(wouldHave);
}

/// Most connections a session holds (`[[connection]]`, `connect`, `add ... after`).
inline constexpr size_t kMaxConnections = 1024;

/// The one message for a session that would pass kMaxConnections.
inline std::string connectionLimitMessage(size_t wouldHave) {
    return "a session holds at most " + std::to_string(kMaxConnections) + " connections; this would make " +
           std::to_string(wouldHave);
}

/// Most channels a processor may declare for its input or its output.
inline constexpr unsigned kMaxProcessorChannels = 8;

/// Most JACK ports of the reserved `input` and `output` nodes, each.
inline constexpr unsigned kMaxIoChannels = 32;

/// Longest node id, in characters.
inline constexpr size_t kMaxNodeIdChars = 256;

/// A node id: 1 to kMaxNodeIdChars of [a-z0-9_].
inline bool isNodeId(std::string_view s) {
    if (s.empty() || s.size() > kMaxNodeIdChars) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

/// What isNodeId() wants, for messages.
inline constexpr const char* kNodeIdRule = "must be 1-256 lowercase letters, digits and _";

}  // namespace rackterm
