// The compact form of a pairs measurement (io/pair_rows.hpp) and the --keep-samples policy.
#include "io/pair_rows.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "io/results.hpp"

using namespace fabscope;

namespace {

io::PairRecord record(int a, int b, double lat, double bw, std::int8_t status = 1) {
  io::PairRecord r;
  r.a = a;
  r.b = b;
  r.status = status;
  r.latency_ns = {lat, lat, lat};
  r.bw_gbps_fwd = {bw, bw, bw};
  r.bw_gbps_rev = {bw, bw, bw};
  return r;
}

}  // namespace

TEST(PairRows, LatencyDecilesDecodeWithinTheirResolution) {
  std::vector<double> lat(1000), scratch;
  for (std::size_t i = 0; i < lat.size(); ++i)
    lat[i] = 1000.0 + static_cast<double>(i);  // 1000..1999
  const auto s = io::summarize_side(lat, {}, scratch);
  EXPECT_DOUBLE_EQ(s.lat_min, 1000);
  EXPECT_DOUBLE_EQ(s.lat_p50, 1499.5);
  EXPECT_NEAR(s.lat_p99, 1989.01, 1e-9);
  EXPECT_EQ(s.lat_q[5], 128);
  for (std::size_t k = 0; k < io::kLatQuantiles; ++k) {
    const double exact = 1000.0 + 999.0 * static_cast<double>(k) / 10.0;
    EXPECT_NEAR(io::decode_lat(s.lat_q[k], s.lat_p50) / exact, 1.0, 0.011) << "decile " << k;
  }
  EXPECT_TRUE(std::isnan(s.bw_best));
  EXPECT_EQ(s.bw_q[0], 0);  // no window
}

TEST(PairRows, WindowsBestFirstAndStallsCounted) {
  std::vector<double> scratch;
  const std::vector<double> bw{100, 50, 10, NAN, 99};
  const auto s = io::summarize_side({}, bw, scratch);
  EXPECT_DOUBLE_EQ(s.bw_best, 100);
  EXPECT_DOUBLE_EQ(s.bw_p50, 74.5);
  EXPECT_EQ(s.stalled, 1);  // 10 < 0.25 x 100
  EXPECT_EQ(s.bw_q[0], 255);
  EXPECT_EQ(s.bw_q[1], 252);  // 99
  EXPECT_EQ(s.bw_q[2], 128);  // 50 -> 127.5 rounds to 128
  EXPECT_EQ(s.bw_q[3], 26);   // 10
  EXPECT_EQ(s.bw_q[4], 0);    // the NaN window: absent
  EXPECT_NEAR(io::decode_bw(s.bw_q[3], s.bw_best), 10, 0.2);
  EXPECT_TRUE(std::isnan(s.lat_p50));
  // More windows than codes: 32 order statistics, best first, worst last.
  std::vector<double> many(100);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = static_cast<double>(i + 1);
  const auto m = io::summarize_side({}, many, scratch);
  EXPECT_EQ(io::bw_codes(many.size()), 32U);
  EXPECT_EQ(m.bw_q[0], 255);
  EXPECT_EQ(m.bw_q[31], 3);  // 1 / 100 x 255 = 2.55
}

TEST(PairRows, PackRoundTrips) {
  std::vector<double> scratch, lat{1, 2, 3}, bw{4, 5};
  const auto s = io::summarize_side(lat, bw, scratch);
  std::vector<double> packed(io::SideSummary::kDoubles);
  s.pack(packed);
  const auto u = io::SideSummary::unpack(packed);
  EXPECT_EQ(u.lat_q, s.lat_q);
  EXPECT_EQ(u.bw_q, s.bw_q);
  EXPECT_DOUBLE_EQ(u.lat_p99, s.lat_p99);
  EXPECT_DOUBLE_EQ(u.bw_best, 5);
}

TEST(PairRows, KeepSamplesNames) {
  EXPECT_EQ(io::parse_keep_samples("all"), io::KeepSamples::kAll);
  EXPECT_EQ(io::parse_keep_samples("suspect"), io::KeepSamples::kSuspect);
  EXPECT_EQ(io::parse_keep_samples("none"), io::KeepSamples::kNone);
  EXPECT_FALSE(io::parse_keep_samples("some").has_value());
  EXPECT_EQ(io::keep_samples_name(io::KeepSamples::kSuspect), "suspect");
}

TEST(PairRows, SuspectPolicyKeepsFailedStalledAndOutlierPairsOnly) {
  std::vector<io::PairRecord> round;
  for (int i = 0; i < 10; ++i) round.push_back(record(2 * i, 2 * i + 1, 2000, 100));
  round[1].status = 2;                       // failed
  round[2].bw_gbps_rev = {100, 100, 20};     // a stalled window (20 < 25)
  round[3].latency_ns = {4100, 4100, 4100};  // latency p50 > 2 x the round's median
  round[4].bw_gbps_fwd = {70, 70, 70};       // bandwidth p50 < 0.75 x the round's median
  round[5].latency_ns = {3900, 3900, 3900};  // slower, but within the factor
  round[6].bw_gbps_fwd = {80, 80, 80};       // within the factor
  EXPECT_EQ(io::mark_suspects(round, io::KeepSamples::kSuspect), 4U);
  std::vector<bool> kept;
  for (const auto& r : round) kept.push_back(r.keep_samples);
  EXPECT_EQ(kept,
            (std::vector<bool>{false, true, true, true, true, false, false, false, false, false}));
  EXPECT_EQ(io::mark_suspects(round, io::KeepSamples::kAll), 10U);
  for (const auto& r : round) EXPECT_TRUE(r.keep_samples);
  EXPECT_EQ(io::mark_suspects(round, io::KeepSamples::kNone), 0U);
  for (const auto& r : round) EXPECT_FALSE(r.keep_samples);
}

TEST(PairRows, RunSummaryHistogramsGiveTheMedianWithinABin) {
  io::PairsSummary m;
  std::vector<double> lat, bw;
  std::uint64_t x = 12345;
  auto u01 = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return static_cast<double>(x >> 11) * 0x1.0p-53;
  };
  for (int i = 0; i < 10001; ++i) {
    const double l = 1500 * std::exp(0.3 * (u01() - 0.5)), f = 380 + 20 * u01(), r = 370 + 20 * u01();
    m.add(1, l, f, r);
    lat.push_back(l), bw.push_back(f), bw.push_back(r);
  }
  m.add(2, 1e9, 1e-9, 1e-9);   // a failed row: counted, not in the histograms
  m.add(1, NAN, 0, INFINITY);  // nothing finite and positive to add
  EXPECT_EQ(m.rows, 10003);
  EXPECT_EQ(m.status_rows[1], 10002);
  EXPECT_EQ(m.status_rows[2], 1);
  std::nth_element(lat.begin(), lat.begin() + 5000, lat.end());
  const double lat_med = io::PairsSummary::median(m.lat_hist, io::PairsSummary::kLatLowNs,
                                                  m.lat_min, m.lat_max);
  EXPECT_NEAR(lat_med / lat[5000], 1.0, 0.011);
  std::sort(bw.begin(), bw.end());
  const double bw_exact = (bw[10000] + bw[10001]) / 2;
  const double bw_med =
      io::PairsSummary::median(m.bw_hist, io::PairsSummary::kBwLowGbps, m.bw_min, m.bw_max);
  EXPECT_NEAR(bw_med / bw_exact, 1.0, 0.011);
  EXPECT_DOUBLE_EQ(m.bw_min, bw.front());
  EXPECT_DOUBLE_EQ(m.bw_max, bw.back());
  // Edges: at or below lo in the first bin, beyond the range in the last.
  EXPECT_EQ(io::PairsSummary::bin(0.5, 1.0), 0U);
  EXPECT_EQ(io::PairsSummary::bin(1e300, 1.0), io::PairsSummary::kBins - 1);
  EXPECT_EQ(io::PairsSummary::bin(2.0, 1.0), static_cast<std::size_t>(io::PairsSummary::kBinsPerOctave));
  EXPECT_TRUE(std::isnan(io::PairsSummary::median(std::vector<std::int64_t>(io::PairsSummary::kBins),
                                                  1.0, NAN, NAN)));
}
