// Parsing and printing of sizes and durations as users type them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace fabscope::core {

// "64", "4K", "1M", "2G" (binary: K = 1024). Throws UsageError naming `what` on bad input.
[[nodiscard]] std::size_t parse_size(std::string_view text, std::string_view what);

// A size list: "LO:HI" (every power of two from LO to HI, both powers of two), or a comma list of
// sizes ("8,64K,1M"), or one size. Ascending, no duplicates. Throws UsageError naming `what`.
[[nodiscard]] std::vector<std::size_t> parse_sizes(std::string_view text, std::string_view what);

// "1.5s", "30m", "2h", "7d", "500ms", "90" (seconds), at most 30 days. Returns seconds. Throws
// UsageError naming `what`.
[[nodiscard]] double parse_duration_s(std::string_view text, std::string_view what);

// 4096 -> "4K", 1048576 -> "1M", 1000 -> "1000".
[[nodiscard]] std::string format_size(std::size_t bytes);

// 12.3 -> "12.3 s", 125 -> "2m05s", 7300 -> "2h01m".
[[nodiscard]] std::string format_duration(double seconds);

}  // namespace fabscope::core
