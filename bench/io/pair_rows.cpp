#include "io/pair_rows.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "core/stats.hpp"

namespace fabscope::io {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::uint8_t clamp_code(double v) {
  if (!std::isfinite(v)) return v > 0 ? 255 : 1;
  return static_cast<std::uint8_t>(std::clamp(std::lround(v), 1L, 255L));
}

// Finite values of x into scratch, sorted ascending.
std::span<const double> sorted_finite(std::span<const double> x, std::vector<double>& scratch) {
  scratch.clear();
  for (const double v : x)
    if (std::isfinite(v)) scratch.push_back(v);
  std::sort(scratch.begin(), scratch.end());
  return scratch;
}

}  // namespace

std::string_view keep_samples_name(KeepSamples k) {
  switch (k) {
    case KeepSamples::kNone:
      return "none";
    case KeepSamples::kSuspect:
      return "suspect";
    case KeepSamples::kAll:
      return "all";
  }
  return "suspect";
}

std::optional<KeepSamples> parse_keep_samples(std::string_view text) {
  for (const auto k : {KeepSamples::kAll, KeepSamples::kSuspect, KeepSamples::kNone})
    if (text == keep_samples_name(k)) return k;
  return std::nullopt;
}

double decode_lat(std::uint8_t code, double p50) {
  if (code == 0) return kNaN;
  return p50 * std::exp2((static_cast<double>(code) - 128.0) / kLatCodesPerOctave);
}

double decode_bw(std::uint8_t code, double best) {
  if (code == 0) return kNaN;
  return best * static_cast<double>(code) / 255.0;
}

SideSummary summarize_side(std::span<const double> latency_ns, std::span<const double> bw_gbps,
                           std::vector<double>& scratch) {
  SideSummary s;
  s.lat_min = s.lat_p50 = s.lat_p99 = s.bw_p50 = s.bw_best = kNaN;
  auto lat = sorted_finite(latency_ns, scratch);
  if (!lat.empty()) {
    s.lat_min = lat.front();
    s.lat_p50 = core::percentile_sorted(lat, 50);
    s.lat_p99 = core::percentile_sorted(lat, 99);
    for (std::size_t k = 0; k < kLatQuantiles; ++k) {
      const double q = core::percentile_sorted(lat, 10.0 * static_cast<double>(k));
      s.lat_q[k] = s.lat_p50 > 0 && q > 0
                       ? clamp_code(std::round(kLatCodesPerOctave * std::log2(q / s.lat_p50)) + 128)
                       : 1;
    }
  }
  const std::size_t codes = bw_codes(bw_gbps.size());
  auto bw = sorted_finite(bw_gbps, scratch);
  if (!bw.empty()) {
    s.bw_p50 = core::percentile_sorted(bw, 50);
    s.bw_best = bw.back();
    const std::size_t n = bw.size();
    for (const double w : bw)
      if (w < kSuspectStallFraction * s.bw_best) ++s.stalled;
    // Best first; with more windows than codes, evenly spaced order statistics.
    const std::size_t used = std::min(n, codes);
    for (std::size_t k = 0; k < used; ++k) {
      double w = 0;
      if (n <= codes) {
        w = bw[n - 1 - k];
      } else {
        const double pos =
            static_cast<double>(k) * static_cast<double>(n - 1) / static_cast<double>(codes - 1);
        w = core::percentile_sorted(bw, 100.0 - 100.0 * pos / static_cast<double>(n - 1));
      }
      s.bw_q[k] = s.bw_best > 0 ? clamp_code(255.0 * w / s.bw_best) : 1;
    }
  }
  return s;
}

void SideSummary::pack(std::span<double> out) const {
  std::size_t i = 0;
  for (const double v : {lat_min, lat_p50, lat_p99, bw_p50, bw_best, static_cast<double>(stalled)})
    out[i++] = v;
  for (const auto c : lat_q) out[i++] = c;
  for (const auto c : bw_q) out[i++] = c;
}

SideSummary SideSummary::unpack(std::span<const double> in) {
  SideSummary s;
  s.lat_min = in[0];
  s.lat_p50 = in[1];
  s.lat_p99 = in[2];
  s.bw_p50 = in[3];
  s.bw_best = in[4];
  s.stalled = static_cast<std::uint8_t>(in[5]);
  std::size_t i = 6;
  for (auto& c : s.lat_q) c = static_cast<std::uint8_t>(in[i++]);
  for (auto& c : s.bw_q) c = static_cast<std::uint8_t>(in[i++]);
  return s;
}

PairsSummary::PairsSummary() : lat_min(kNaN), lat_max(kNaN), bw_min(kNaN), bw_max(kNaN) {}

std::size_t PairsSummary::bin(double value, double lo) {
  if (!(value > lo)) return 0;
  const double k = std::floor(std::log2(value / lo) * kBinsPerOctave);
  return k >= static_cast<double>(kBins - 1) ? kBins - 1 : static_cast<std::size_t>(k);
}

void PairsSummary::add(std::int8_t status, double lat_p50, double bw_fwd, double bw_rev) {
  ++rows;
  if (status >= 0 && static_cast<std::size_t>(status) < kStatuses)
    ++status_rows[static_cast<std::size_t>(status)];
  if (status != static_cast<std::int8_t>(1)) return;  // schema::PairStatus::kOk
  const auto extremes = [](double v, double& lo, double& hi) {
    lo = std::isnan(lo) ? v : std::min(lo, v);
    hi = std::isnan(hi) ? v : std::max(hi, v);
  };
  if (std::isfinite(lat_p50) && lat_p50 > 0) {
    ++lat_hist[bin(lat_p50, kLatLowNs)];
    extremes(lat_p50, lat_min, lat_max);
  }
  for (const double bw : {bw_fwd, bw_rev}) {
    if (!std::isfinite(bw) || bw <= 0) continue;
    ++bw_hist[bin(bw, kBwLowGbps)];
    extremes(bw, bw_min, bw_max);
  }
}

double PairsSummary::median(const std::vector<std::int64_t>& hist, double lo, double min,
                            double max) {
  std::int64_t total = 0;
  for (const auto c : hist) total += c;
  if (total == 0) return kNaN;
  const double half = static_cast<double>(total) / 2.0;
  double below = 0;
  for (std::size_t k = 0; k < hist.size(); ++k) {
    const auto c = static_cast<double>(hist[k]);
    if (c > 0 && below + c >= half) {
      const double frac = (half - below) / c;
      const double v =
          lo * std::exp2((static_cast<double>(k) + frac) / static_cast<double>(kBinsPerOctave));
      return std::clamp(v, min, max);
    }
    below += c;
  }
  return max;
}

}  // namespace fabscope::io

