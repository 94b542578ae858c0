#include "core/units.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.hpp"

namespace fabscope::core {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_pow2(std::size_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

std::size_t parse_size(std::string_view text, std::string_view what) {
  const std::string_view t = trim(text);
  std::size_t value = 0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  std::string_view rest(ptr, static_cast<std::size_t>(t.data() + t.size() - ptr));
  std::size_t mult = 1;
  if (rest == "K" || rest == "k" || rest == "KiB") mult = 1ULL << 10;
  else if (rest == "M" || rest == "MiB") mult = 1ULL << 20;
  else if (rest == "G" || rest == "GiB") mult = 1ULL << 30;
  else if (!rest.empty() && rest != "B") mult = 0;
  if (ec != std::errc{} || mult == 0 || t.empty()) {
    throw UsageError(fmt::format("{}: '{}' is not a size; use a number with an optional K, M or G "
                                 "suffix (binary), e.g. 64K",
                                 what, text));
  }
  if (value > (std::size_t{1} << 40) / mult) {
    throw UsageError(fmt::format("{}: '{}' is too large (the limit is 1T)", what, text));
  }
  return value * mult;
}

std::vector<std::size_t> parse_sizes(std::string_view text, std::string_view what) {
  std::vector<std::size_t> sizes;
  const std::string_view t = trim(text);
  if (t.empty()) throw UsageError(fmt::format("{}: empty size list; e.g. 1:4M or 8,64K", what));
  if (const auto colon = t.find(':'); colon != std::string_view::npos) {
    const std::size_t lo = parse_size(t.substr(0, colon), what);
    const std::size_t hi = parse_size(t.substr(colon + 1), what);
    if (!is_pow2(lo) || !is_pow2(hi) || lo > hi) {
      throw UsageError(fmt::format("{}: '{}' must be LO:HI with LO <= HI, both powers of two "
                                   "(e.g. 1:4M)",
                                   what, text));
    }
    for (std::size_t s = lo; s <= hi; s *= 2) sizes.push_back(s);
    return sizes;
  }
  std::size_t start = 0;
  while (start <= t.size()) {
    const auto comma = t.find(',', start);
    const auto piece = t.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                       : comma - start);
    sizes.push_back(parse_size(piece, what));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  return sizes;
}

double parse_duration_s(std::string_view text, std::string_view what) {
  const std::string_view t = trim(text);
  double value = 0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  const std::string_view unit(ptr, static_cast<std::size_t>(t.data() + t.size() - ptr));
  double mult = -1;
  if (unit.empty() || unit == "s") mult = 1;
  else if (unit == "ms") mult = 1e-3;
  else if (unit == "m" || unit == "min") mult = 60;
  else if (unit == "h") mult = 3600;
  else if (unit == "d") mult = 86400;
  if (ec != std::errc{} || mult < 0 || !(value >= 0) || !std::isfinite(value)) {
    throw UsageError(fmt::format("{}: '{}' is not a duration; use e.g. 90s, 30m, 2h or 500ms",
                                 what, text));
  }
  // Beyond this no deadline or budget is meant, and nanosecond clocks (int64) would overflow.
  constexpr double kMaxDurationS = 30 * 86400.0;
  if (value * mult > kMaxDurationS) {
    throw UsageError(fmt::format("{}: '{}' is out of range; give at most 30 days (e.g. 30s, 2h, 7d)", what, text));
  }
  return value * mult;
}

std::string format_size(std::size_t bytes) {
  if (bytes >= (1ULL << 30) && bytes % (1ULL << 30) == 0) return fmt::format("{}G", bytes >> 30);
  if (bytes >= (1ULL << 20) && bytes % (1ULL << 20) == 0) return fmt::format("{}M", bytes >> 20);
  if (bytes >= (1ULL << 10) && bytes % (1ULL << 10) == 0) return fmt::format("{}K", bytes >> 10);
  return fmt::format("{}", bytes);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto total = static_cast<long long>(std::llround(seconds));
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
}

}  // namespace fabscope::core
