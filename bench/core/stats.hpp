// Summary statistics of per-iteration samples (definitions in results/SCHEMA.md).
#pragma once

#include <array>
#include <span>
#include <string_view>
#include <vector>

namespace fabscope::core {

struct Summary {
  double min = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0, stddev = 0;
  std::size_t count = 0;
};

// Names of the statistics in the order stat_values() returns them; these are the dataset suffixes.
inline constexpr std::array<std::string_view, 8> kStatNames = {"min", "p50",  "p90",  "p99",
                                                               "p999", "max", "mean", "stddev"};
[[nodiscard]] std::array<double, 8> stat_values(const Summary& s);

// Percentile q in [0, 100] of ascending-sorted values, linear interpolation between closest ranks
// (numpy's default method). NaN for an empty input.
[[nodiscard]] double percentile_sorted(std::span<const double> sorted, double q);

// Summary of samples; NaN samples are ignored. All fields NaN (count 0) for no finite samples.
[[nodiscard]] Summary summarize(std::span<const double> samples);

}  // namespace fabscope::core
