#include "core/stats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

using fabscope::core::percentile_sorted;
using fabscope::core::summarize;

TEST(Stats, KnownValuesOneToTen) {
  std::vector<double> v{7, 1, 10, 3, 5, 2, 9, 4, 8, 6};
  const auto s = summarize(v);
  EXPECT_EQ(s.count, 10u);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_DOUBLE_EQ(s.p50, 5.5);           // numpy.percentile(range(1,11), 50)
  EXPECT_NEAR(s.p90, 9.1, 1e-12);         // numpy: 9.1
  EXPECT_NEAR(s.p99, 9.91, 1e-12);        // numpy: 9.91
  EXPECT_NEAR(s.p999, 9.991, 1e-12);      // numpy: 9.991
  EXPECT_NEAR(s.stddev, 3.0276503540974917, 1e-12);  // sample stddev (n-1)
}

TEST(Stats, PercentileInterpolatesBetweenClosestRanks) {
  const std::vector<double> v{10, 20, 30, 40};
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 0), 10);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 100), 40);
  EXPECT_DOUBLE_EQ(percentile_sorted(v, 50), 25);
  EXPECT_NEAR(percentile_sorted(v, 25), 17.5, 1e-12);
}

TEST(Stats, SingleSampleHasZeroSpread) {
  const std::vector<double> v{42};
  const auto s = summarize(v);
  EXPECT_DOUBLE_EQ(s.p50, 42);
  EXPECT_DOUBLE_EQ(s.p999, 42);
  EXPECT_DOUBLE_EQ(s.stddev, 0);
}

TEST(Stats, NaNSamplesAreIgnoredAndEmptyIsNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> v{nan, 3, nan, 1, 2};
  const auto s = summarize(v);
  EXPECT_EQ(s.count, 3u);
  EXPECT_DOUBLE_EQ(s.p50, 2);
  const auto e = summarize(std::vector<double>{nan});
  EXPECT_EQ(e.count, 0u);
  EXPECT_TRUE(std::isnan(e.p50));
  EXPECT_TRUE(std::isnan(e.mean));
}
