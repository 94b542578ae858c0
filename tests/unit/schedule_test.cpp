#include "topology/schedule.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

using namespace fabscope::topology;

// Every unordered pair exactly once, every rank at most once per round, N-1 rounds for even N
// (N rounds for odd N, where one rank sits out each round), partners agree both ways.
TEST(Schedule, CircleCoversEveryPairExactlyOnce) {
  for (std::int64_t n = 2; n <= 33; ++n) {
    const std::int64_t rounds = circle_rounds(n);
    EXPECT_EQ(rounds, n % 2 == 0 ? n - 1 : n) << "n=" << n;
    std::set<std::pair<std::int64_t, std::int64_t>> seen;
    for (std::int64_t r = 0; r < rounds; ++r) {
      std::vector<int> busy(static_cast<std::size_t>(n), 0);
      std::int64_t sitting_out = 0;
      for (std::int64_t x = 0; x < n; ++x) {
        const std::int64_t p = circle_partner(n, r, x);
        if (p < 0) {
          ++sitting_out;
          continue;
        }
        ASSERT_NE(p, x);
        ASSERT_LT(p, n);
        ASSERT_EQ(circle_partner(n, r, p), x) << "n=" << n << " round " << r;
        ++busy[static_cast<std::size_t>(x)];
        if (x < p) {
          EXPECT_TRUE(seen.insert({x, p}).second) << "pair repeated n=" << n;
        }
      }
      for (int b : busy) EXPECT_LE(b, 1);
      EXPECT_EQ(sitting_out, n % 2) << "n=" << n;
      EXPECT_EQ(static_cast<std::int64_t>(circle_round(n, r).size()), n / 2);
    }
    EXPECT_EQ(static_cast<std::int64_t>(seen.size()), n * (n - 1) / 2) << "n=" << n;
  }
}

TEST(Schedule, DegenerateInputs) {
  EXPECT_EQ(circle_rounds(1), 0);
  EXPECT_EQ(circle_rounds(0), 0);
  EXPECT_EQ(circle_partner(4, 3, 0), -1);   // round out of range
  EXPECT_EQ(circle_partner(4, 0, 4), -1);   // rank out of range
}

TEST(Schedule, LargeNWithoutMaterialising) {
  const std::int64_t n = 12500;
  EXPECT_EQ(circle_rounds(n), n - 1);
  // Spot-check symmetry on a late round.
  for (std::int64_t x = 0; x < n; x += 97) {
    const auto p = circle_partner(n, 9876, x);
    ASSERT_GE(p, 0);
    EXPECT_EQ(circle_partner(n, 9876, p), x);
  }
}
