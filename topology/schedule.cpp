#include "topology/schedule.hpp"

namespace fabscope::topology {

std::int64_t circle_rounds(std::int64_t n) {
  if (n < 2) return 0;
  const std::int64_t m = n % 2 == 0 ? n : n + 1;
  return m - 1;
}

std::int64_t circle_partner(std::int64_t n, std::int64_t round, std::int64_t rank) {
  if (n < 2 || rank < 0 || rank >= n || round < 0 || round >= circle_rounds(n)) return -1;
  const std::int64_t m = n % 2 == 0 ? n : n + 1;
  const std::int64_t ring = m - 1;
  std::int64_t partner = 0;
  if (rank == m - 1) {
    partner = round;
  } else if (rank == round) {
    partner = m - 1;
  } else {
    partner = ((2 * round - rank) % ring + ring) % ring;
  }
  return partner >= n ? -1 : partner;
}

std::vector<std::pair<std::int64_t, std::int64_t>> circle_round(std::int64_t n, std::int64_t round) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t p = circle_partner(n, round, r);
    if (p > r) out.emplace_back(r, p);
  }
  return out;
}

}  // namespace fabscope::topology
