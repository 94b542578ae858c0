// The compact form of one pairs measurement (results/SCHEMA.md, version 2, `pairs/`): what the row
// table keeps of a pair's samples so that a 12,500-host run stays small, and the policy that
// decides whose raw samples are kept as well (--keep-samples).
//
// Per side of a pair (the initiator's latency and forward windows, the peer's reverse windows):
//   latency_q   11 codes: the deciles (min, p10 .. p90, max) of the latency samples, each as
//               round(32 * log2(q / p50)) + 128 clamped to 1..255 (0: no sample); decoded
//               p50 * 2^((code - 128) / 32), within 1.1 % of the sample quantile.
//   bw_q        K = min(bw_windows, 32) codes: the windows sorted from best down (more than 32:
//               32 evenly spaced order statistics), each round(255 * window / best) clamped to
//               1..255 (0: no window); decoded best * code / 255, within 0.2 % of best.
// Each rank computes its side's summary from its own samples (pairs.cpp), so rank 0 only copies.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace fabscope::io {

inline constexpr std::size_t kLatQuantiles = 11;  // min, p10, p20, ..., p90, max
inline constexpr std::size_t kMaxBwCodes = 32;
inline constexpr double kLatCodesPerOctave = 32;

// What --keep-samples keeps of the raw samples (pair_samples/*).
enum class KeepSamples : std::int8_t { kNone = 0, kSuspect = 1, kAll = 2 };
[[nodiscard]] std::string_view keep_samples_name(KeepSamples k);
[[nodiscard]] std::optional<KeepSamples> parse_keep_samples(std::string_view text);

// The suspect rule (--keep-samples suspect): a pair whose raw samples are kept because a person
// will want to look at them. Failed or timed out; a bandwidth window below kSuspectStallFraction of
// its direction's best window (the criteria's default stall test); latency p50 above
// kSuspectLatencyFactor x the round's median latency p50; or a bandwidth p50 below
// kSuspectBwFactor x the round's median bandwidth p50 (either direction).
inline constexpr double kSuspectStallFraction = 0.25;
inline constexpr double kSuspectLatencyFactor = 2.0;
inline constexpr double kSuspectBwFactor = 0.75;

// The number of bandwidth codes per direction for bw_windows windows.
[[nodiscard]] constexpr std::size_t bw_codes(std::size_t bw_windows) {
  return bw_windows < kMaxBwCodes ? bw_windows : kMaxBwCodes;
}

// One rank's side of a pair: its latency samples (the initiator's; the peer's are NaN) and the
// bandwidth windows it sent.
struct SideSummary {
  double lat_min = 0, lat_p50 = 0, lat_p99 = 0;  // NaN: no latency sample
  double bw_p50 = 0, bw_best = 0;                // NaN: no window
  std::array<std::uint8_t, kLatQuantiles> lat_q{};
  std::array<std::uint8_t, kMaxBwCodes> bw_q{};  // the first bw_codes(windows) are used
  std::uint8_t stalled = 0;                      // windows below kSuspectStallFraction x bw_best

  // Packed as doubles for the per-round gather (kDoubles values).
  static constexpr std::size_t kDoubles = 6 + kLatQuantiles + kMaxBwCodes;
  void pack(std::span<double> out) const;
  [[nodiscard]] static SideSummary unpack(std::span<const double> in);
};

// The summary of a whole pairs run (<run>/summary, results/SCHEMA.md): rows per status, and
// log-binned histograms of the ok rows' latency p50 and bandwidth p50 (both directions), with the
// exact extremes, so `trend` reads a few KB per run instead of every row. The writer adds each
// round's rows and rewrites it with the round; O(1) per row, a fixed size per run.
struct PairsSummary {
  static constexpr int kBinsPerOctave = 64;  // bins 1.09 % wide
  static constexpr int kOctaves = 40;
  static constexpr std::size_t kBins = static_cast<std::size_t>(kBinsPerOctave) * kOctaves;
  static constexpr std::size_t kStatuses = 4;  // schema::PairStatus codes 0..3
  static constexpr double kLatLowNs = 1.0;     // bin k: [lo 2^(k/64), lo 2^((k+1)/64)); the first
  static constexpr double kBwLowGbps = 0x1p-20;  // bin also holds values below lo, the last above
  std::int64_t rows = 0;
  std::array<std::int64_t, kStatuses> status_rows{};
  std::vector<std::int64_t> lat_hist = std::vector<std::int64_t>(kBins),
                            bw_hist = std::vector<std::int64_t>(kBins);
  double lat_min, lat_max, bw_min, bw_max;  // NaN until an ok row has the value
  PairsSummary();
  // One row (its status, latency p50 and the bandwidth p50 of each direction); only the values of
  // an ok row that are finite and positive enter the histograms.
  void add(std::int8_t status, double lat_p50, double bw_fwd, double bw_rev);
  [[nodiscard]] static std::size_t bin(double value, double lo);
  // The median of a histogram, interpolated geometrically in its bin and kept within [min, max];
  // NaN when empty (the analysis computes it the same way).
  [[nodiscard]] static double median(const std::vector<std::int64_t>& hist, double lo, double min,
                                     double max);
};

// Summary of one side; `scratch` is reused between calls (no allocation once it is large enough).
[[nodiscard]] SideSummary summarize_side(std::span<const double> latency_ns,
                                         std::span<const double> bw_gbps,
                                         std::vector<double>& scratch);

// Decoding (tests and tools; the Python reader has its own).
[[nodiscard]] double decode_lat(std::uint8_t code, double p50);
[[nodiscard]] double decode_bw(std::uint8_t code, double best);

}  // namespace fabscope::io
