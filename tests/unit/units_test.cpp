#include "core/units.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

using namespace fabscope::core;

TEST(Units, ParseSize) {
  EXPECT_EQ(parse_size("8", "--x"), 8u);
  EXPECT_EQ(parse_size("64K", "--x"), 65536u);
  EXPECT_EQ(parse_size("4M", "--x"), 4u << 20);
  EXPECT_EQ(parse_size("2G", "--x"), 2ull << 30);
  EXPECT_EQ(parse_size(" 1KiB ", "--x"), 1024u);
}

TEST(Units, ParseSizeRejectsJunkAndNamesTheFlag) {
  for (const char* bad : {"", "K", "12Q", "-1", "1.5M", "abc", "4MB"}) {
    try {
      (void)parse_size(bad, "--bw-size");
      FAIL() << "accepted '" << bad << "'";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--bw-size"), std::string::npos) << e.what();
      EXPECT_EQ(e.code(), ExitCode::kUsage);
    }
  }
}

TEST(Units, ParseSizesRange) {
  const auto v = parse_sizes("1:4M", "--sizes");
  ASSERT_EQ(v.size(), 23u);
  EXPECT_EQ(v.front(), 1u);
  EXPECT_EQ(v.back(), 4u << 20);
  for (std::size_t i = 1; i < v.size(); ++i) EXPECT_EQ(v[i], 2 * v[i - 1]);
  EXPECT_EQ(parse_sizes("8:8", "--sizes"), std::vector<std::size_t>{8});
}

TEST(Units, ParseSizesListIsSortedAndUnique) {
  EXPECT_EQ(parse_sizes("1M,8,64K,8", "--sizes"), (std::vector<std::size_t>{8, 65536, 1u << 20}));
}

TEST(Units, ParseSizesRejectsBadRanges) {
  for (const char* bad : {"4M:1", "3:64", "1:100", ":", "1:", "1:4M:8"}) {
    EXPECT_THROW((void)parse_sizes(bad, "--sizes"), UsageError) << bad;
  }
}

TEST(Units, Durations) {
  EXPECT_DOUBLE_EQ(parse_duration_s("30m", "--budget"), 1800);
  EXPECT_DOUBLE_EQ(parse_duration_s("2h", "--budget"), 7200);
  EXPECT_DOUBLE_EQ(parse_duration_s("1.5s", "--budget"), 1.5);
  EXPECT_DOUBLE_EQ(parse_duration_s("90", "--budget"), 90);
  EXPECT_DOUBLE_EQ(parse_duration_s("500ms", "--budget"), 0.5);
  EXPECT_THROW((void)parse_duration_s("soon", "--budget"), UsageError);
  EXPECT_THROW((void)parse_duration_s("-3s", "--budget"), UsageError);
  EXPECT_DOUBLE_EQ(parse_duration_s("7d", "--budget"), 7 * 86400);
  // Out of range: a deadline past 30 days would overflow the int64 nanosecond clock arithmetic
  // (issue 18: --timeout 99999999999999999s stored pairs as "peer silent for -9223372036.9 s").
  for (const char* big : {"99999999999999999s", "10000000000s", "31d", "1e300", "inf"}) {
    try {
      (void)parse_duration_s(big, "--pair-timeout");
      ADD_FAILURE() << big << " accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--pair-timeout"), std::string::npos) << e.what();
    }
  }
}

TEST(Units, Formatting) {
  EXPECT_EQ(format_size(4096), "4K");
  EXPECT_EQ(format_size(1u << 20), "1M");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_duration(12.34), "12.3 s");
  EXPECT_EQ(format_duration(125), "2m05s");
  EXPECT_EQ(format_duration(7300), "2h01m");
}
