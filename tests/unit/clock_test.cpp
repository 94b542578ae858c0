#include "core/clock.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

using namespace fabscope::core;

namespace {

// The process clock (FABSCOPE_CLOCK or the default), a forced steady one and, where the CPU has an
// invariant TSC that calibrates here, a forced TSC one.
struct Named {
  std::string what;
  ClockSource clock;
};

std::vector<Named> clocks_to_test() {
  std::vector<Named> out;
  out.push_back({"process", detail::clock()});
  std::string warning;
  out.push_back({"steady", choose_clock("steady", warning)});
  const ClockSource tsc = choose_clock("tsc", warning);
  if (tsc.tsc) out.push_back({"tsc", tsc});
  return out;
}

// A steady_clock time and `clock`'s time at the same instant: the read of `clock` is bracketed by
// two steady reads, and the tightest bracket of a few kept (a preemption inside one is skipped).
std::pair<std::int64_t, std::int64_t> paired(const ClockSource& clock) {
  std::int64_t best_width = INT64_MAX, steady = 0, other = 0;
  for (int i = 0; i < 64; ++i) {
    const std::int64_t a = steady_ns();
    const std::int64_t t = clock.now_ns();
    const std::int64_t b = steady_ns();
    if (b - a < best_width) {
      best_width = b - a;
      steady = a + (b - a) / 2;
      other = t;
    }
  }
  return {steady, other};
}

}  // namespace

TEST(Clock, MonotonicOverAMillionReads) {
  for (const auto& [what, clock] : clocks_to_test()) {
    std::int64_t prev = clock.now_ns(), backwards = 0;
    for (int i = 0; i < 1'000'000; ++i) {
      const std::int64_t t = clock.now_ns();
      if (t < prev) ++backwards;
      prev = t;
    }
    EXPECT_EQ(backwards, 0) << what;
  }
  // The inline process clock as timed loops call it.
  std::int64_t prev = now_ns(), backwards = 0;
  for (int i = 0; i < 1'000'000; ++i) {
    const std::int64_t t = now_ns();
    if (t < prev) ++backwards;
    prev = t;
  }
  EXPECT_EQ(backwards, 0);
}

TEST(Clock, AgreesWithSteadyClockOverA50msSleepWithinHalfAPercent) {
  for (const auto& [what, clock] : clocks_to_test()) {
    const auto [s0, c0] = paired(clock);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const auto [s1, c1] = paired(clock);
    const double steady_span = static_cast<double>(s1 - s0), span = static_cast<double>(c1 - c0);
    EXPECT_GE(steady_span, 50e6) << what;
    EXPECT_NEAR(span / steady_span, 1.0, 0.005)
        << what << ": " << span << " ns vs steady " << steady_span << " ns";
  }
}

TEST(Clock, AnchoredToSteadyClockEpoch) {
  // Deadlines built from now_ns() may meet values derived from steady_clock: same epoch.
  for (const auto& [what, clock] : clocks_to_test()) {
    const auto [s, c] = paired(clock);
    EXPECT_NEAR(static_cast<double>(c - s), 0.0, 1e6) << what;  // 1 ms: calibration error x uptime
  }
}

TEST(Clock, SteadyRequestIsHonoured) {
  std::string warning = "stale";
  const ClockSource c = choose_clock("steady", warning);
  EXPECT_FALSE(c.tsc);
  EXPECT_EQ(c.name(), "steady");
  EXPECT_EQ(c.tsc_hz(), 0.0);
  EXPECT_TRUE(warning.empty()) << warning;
}

TEST(Clock, TscRequestCalibratesOrFallsBackWithAWarning) {
  std::string warning;
  const ClockSource c = choose_clock("tsc", warning);
  if (!cpu_has_invariant_tsc()) {
    EXPECT_FALSE(c.tsc);
    EXPECT_NE(warning.find("no invariant TSC"), std::string::npos) << warning;
    GTEST_SKIP() << "no invariant TSC on this CPU: " << warning;
  }
  if (!c.tsc) {
    EXPECT_NE(warning.find("steady_clock"), std::string::npos) << warning;
    GTEST_SKIP() << "TSC calibration failed here: " << warning;
  }
  EXPECT_EQ(c.name(), "tsc");
  EXPECT_GT(c.tsc_hz(), 1e8);  // 100 MHz .. 10 GHz: any x86 TSC
  EXPECT_LT(c.tsc_hz(), 1e10);
  EXPECT_TRUE(warning.empty()) << warning;
}

TEST(Clock, UnknownRequestWarnsAndUsesTheDefault) {
  std::string warning;
  const ClockSource c = choose_clock("hpet", warning);
  EXPECT_NE(warning.find("FABSCOPE_CLOCK=hpet"), std::string::npos) << warning;
  if (!cpu_has_invariant_tsc()) {
    EXPECT_FALSE(c.tsc);
  }
}

TEST(Clock, ProcessClockFollowsTheEnvironment) {
  // The process clock was chosen from FABSCOPE_CLOCK (ctest runs this binary with it unset, and
  // tests/perf/lat_clock.sh checks both values through fabscope's results file).
  const char* env = std::getenv("FABSCOPE_CLOCK");
  const std::string_view want = env != nullptr ? env : "";
  if (want == "steady" || (want.empty() && !cpu_has_invariant_tsc())) {
    EXPECT_EQ(clock_name(), "steady");
  }
  EXPECT_EQ(clock_name() == "tsc", clock_tsc_hz() > 0.0);
}
