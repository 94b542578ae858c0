// The one clock every timed loop and every deadline uses: core::now_ns(), in nanoseconds.
//
// Where the CPU has an invariant TSC (CPUID 0x80000007 EDX bit 8: constant rate, runs in every
// C-state; Intel SDM vol. 3B 18.17.1, AMD APM vol. 3 E.4.18) now_ns() is one RDTSC scaled by a
// fixed-point multiply, well under half a steady_clock read (vDSO clock_gettime: a seqlock retry
// loop around an ordered RDTSC and the kernel's scaling); perftest reads the cycle counter for the
// same reason. Elsewhere, or when the calibration is not trustworthy, it is steady_clock
// (CLOCK_MONOTONIC). The choice is made once per process, at the first call (or clock_init()):
//   - FABSCOPE_CLOCK=steady|tsc forces one (tsc where unavailable falls back, with a warning);
//   - the TSC is calibrated against steady_clock over two ~20 ms windows whose rates must agree
//     within 0.1 %, and anchored to steady_clock's epoch, so now_ns() values and steady-derived
//     values agree within the calibration error (ppm: microseconds per second since start-up).
// Results files record the choice (root attributes `clock`, `clock_tsc_hz`; results/SCHEMA.md).
// Plain RDTSC is not ordered against earlier loads (unlike RDTSCP): a timed interval may start or
// end some tens of cycles early, far below what one ping-pong costs; perftest accepts the same.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#if defined(__x86_64__)
#include <x86intrin.h>
#define FABSCOPE_HAVE_TSC 1
#else
#define FABSCOPE_HAVE_TSC 0
#endif

namespace fabscope::core {

// CLOCK_MONOTONIC in nanoseconds.
[[nodiscard]] inline std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// TSC ticks to steady_clock nanoseconds: ns = base_ns + ((tsc - base_tsc) * mult) >> kShift.
struct TscScale {
  static constexpr int kShift = 32;
  std::uint64_t base_tsc = 0;
  std::int64_t base_ns = 0;
  std::int64_t mult = 0;  // 1e9 / hz, in units of 2^-kShift ns per tick
  double hz = 0;          // calibrated tick rate
};

// One clock: steady_clock, or the TSC with its scale. A value type, so tests can hold both.
struct ClockSource {
  bool tsc = false;
  TscScale scale{};

  [[nodiscard]] std::int64_t now_ns() const noexcept {
#if FABSCOPE_HAVE_TSC
    if (tsc) {
      // Signed: a core whose TSC lags the calibrating one by a few cycles reads before base.
      const auto ticks = static_cast<std::int64_t>(__rdtsc() - scale.base_tsc);
      __extension__ using I128 = __int128;
      return scale.base_ns +
             static_cast<std::int64_t>((static_cast<I128>(ticks) * scale.mult) >> TscScale::kShift);
    }
#endif
    return steady_ns();
  }
  [[nodiscard]] std::string_view name() const noexcept { return tsc ? "tsc" : "steady"; }
  [[nodiscard]] double tsc_hz() const noexcept { return tsc ? scale.hz : 0.0; }
};

// Whether this CPU has an invariant TSC (always false off x86-64).
[[nodiscard]] bool cpu_has_invariant_tsc() noexcept;

// Chooses a clock. requested: "" (the default: tsc where invariant and calibrated, else steady),
// "steady" or "tsc". `warning` receives one line when the choice differs from a request or the
// calibration failed (empty otherwise). Takes ~40 ms when it calibrates (it sleeps, not spins).
[[nodiscard]] ClockSource choose_clock(std::string_view requested, std::string& warning);

namespace detail {
enum : int { kClockUnset = 0, kClockReady = 1 };
inline std::atomic<int> g_clock_state{kClockUnset};
inline ClockSource g_clock{};  // written once, before g_clock_state turns kClockReady (release)
// Chooses the process clock (FABSCOPE_CLOCK), warns on stderr where needed; thread-safe, once.
[[gnu::cold, gnu::noinline]] const ClockSource& clock_init_slow() noexcept;
[[nodiscard]] inline const ClockSource& clock() noexcept {
  if (g_clock_state.load(std::memory_order_acquire) != kClockReady) [[unlikely]]
    return clock_init_slow();
  return g_clock;
}
}  // namespace detail

// Chooses and calibrates the process clock now rather than at the first now_ns().
inline void clock_init() noexcept { (void)detail::clock(); }

// Monotonic nanoseconds on the process clock; the hot path is a flag test, RDTSC, multiply, shift.
[[nodiscard]] inline std::int64_t now_ns() noexcept { return detail::clock().now_ns(); }

// "tsc" or "steady", and the calibrated TSC rate in Hz (0 for steady): recorded in results files.
[[nodiscard]] inline std::string_view clock_name() noexcept { return detail::clock().name(); }
[[nodiscard]] inline double clock_tsc_hz() noexcept { return detail::clock().tsc_hz(); }

// ISO 8601 UTC time stamp, e.g. 2026-11-28T08:00:00Z.
[[nodiscard]] std::string utc_now_iso();

}  // namespace fabscope::core
