// "Did you mean" suggestions by edit distance. [any thread]
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rackterm {

/// Levenshtein distance between a and b (insert, delete, substitute each cost 1).
inline size_t editDistance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0u : 1u)});
            diag = up;
        }
    }
    return row[b.size()];
}

/// The candidate nearest to `word`, or "" when none is within a third of the
/// longer of the two (+1) edits.
inline std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
    std::string best;
    size_t bestDistance = SIZE_MAX;
    for (const auto& c : candidates) {
        const size_t d = editDistance(word, c);
        if (d <= std::max(word.size(), c.size()) / 3 + 1 && d < bestDistance) {
            bestDistance = d;
            best = c;
        }
    }
    return best;
}

/// " (did you mean 'x'?)" or "" when nothing is near.
inline std::string didYouMean(std::string_view word, const std::vector<std::string>& candidates) {
    const std::string n = nearest(word, candidates);
    return n.empty() ? std::string() : " (did you mean '" + n + "'?)";
}

}  // namespace rackterm
