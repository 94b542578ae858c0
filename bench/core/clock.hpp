// The one clock every timed loop uses: CLOCK_MONOTONIC through steady_clock, in nanoseconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace fabscope::core {

[[nodiscard]] inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ISO 8601 UTC time stamp, e.g. 2026-11-28T08:00:00Z.
[[nodiscard]] std::string utc_now_iso();

}  // namespace fabscope::core
