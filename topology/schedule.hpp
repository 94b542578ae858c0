// The all-pairs round-robin schedule (circle method): every unordered pair of N ranks meets in
// exactly one round, and within a round every rank is in at most one pair.
//
// With M = N rounded up to even, rank M-1 stays fixed and ranks 0..M-2 rotate: in round r the
// fixed rank meets r, and every other rank x meets (2r - x) mod (M-1). For odd N the slot M-1 is
// empty, so the rank that would meet it sits the round out. Rounds: M-1 (N-1 for even N, N for
// odd N). Partners are computed in O(1), so no schedule is ever materialised (N = 12,500 hosts
// would be 78 M pairs).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace fabscope::topology {

[[nodiscard]] std::int64_t circle_rounds(std::int64_t n);

// The partner of `rank` in round `round` (0-based), or -1 when it sits out.
[[nodiscard]] std::int64_t circle_partner(std::int64_t n, std::int64_t round, std::int64_t rank);

// The pairs (lower rank first) of one round, in ascending order of the lower rank.
[[nodiscard]] std::vector<std::pair<std::int64_t, std::int64_t>> circle_round(std::int64_t n,
                                                                             std::int64_t round);

}  // namespace fabscope::topology
