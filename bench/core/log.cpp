#include "core/log.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "core/clock.hpp"

#if FABSCOPE_HAVE_TSC
#include <cpuid.h>
#endif

namespace fabscope::core {
namespace log {
namespace {
std::string g_prefix;
}

void set_identity(int rank, std::string host) {
  g_prefix = fmt::format("[rank {} {}] ", rank, host);
}

std::string prefix() { return g_prefix; }

void write(std::string_view level, std::string_view message) {
  fmt::print(stderr, "fabscope: {}{}: {}\n", g_prefix, level, message);
  std::fflush(stderr);
}

}  // namespace log

// clock.hpp: the process clock. (It lives here, beside utc_now_iso, to keep core's file list.)
namespace {

#if FABSCOPE_HAVE_TSC
struct Stamp {
  std::uint64_t tsc;
  std::int64_t ns;
};

// A steady_clock read paired with the TSC at the same instant: the read is bracketed by two RDTSCs
// and the tightest of a few brackets kept, so a preemption inside one cannot skew the pairing.
Stamp paired_stamp() noexcept {
  Stamp best{0, 0};
  std::uint64_t best_width = ~std::uint64_t{0};
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t a = __rdtsc();
    const std::int64_t ns = steady_ns();
    const std::uint64_t b = __rdtsc();
    if (b - a < best_width) {
      best_width = b - a;
      best = {a + (b - a) / 2, ns};
    }
  }
  return best;
}

double rate_hz(const Stamp& a, const Stamp& b) noexcept {
  return b.ns > a.ns ? static_cast<double>(b.tsc - a.tsc) * 1e9 / static_cast<double>(b.ns - a.ns)
                     : 0.0;
}

// Two ~20 ms windows (sleeping: an idle rank must not take a core from its neighbour); their rates
// must agree within 0.1 %, else the TSC is not trusted (a hypervisor that scales or steps it).
bool calibrate_tsc(TscScale& out, std::string& warning) {
  constexpr auto kWindow = std::chrono::milliseconds(20);
  constexpr double kAgree = 1e-3;
  const Stamp s0 = paired_stamp();
  std::this_thread::sleep_for(kWindow);
  const Stamp s1 = paired_stamp();
  std::this_thread::sleep_for(kWindow);
  const Stamp s2 = paired_stamp();
  const double hz1 = rate_hz(s0, s1), hz2 = rate_hz(s1, s2), hz = rate_hz(s0, s2);
  if (!(hz1 > 1e6 && hz2 > 1e6 && hz > 1e6)) {
    warning = fmt::format(
        "clock: TSC calibration gave no usable rate ({:.0f}, {:.0f} Hz); using steady_clock", hz1,
        hz2);
    return false;
  }
  if (std::abs(hz1 - hz2) > kAgree * hz) {
    warning = fmt::format(
        "clock: TSC calibration windows disagree ({:.0f} vs {:.0f} Hz, more than 0.1 %); using "
        "steady_clock",
        hz1, hz2);
    return false;
  }
  out.base_tsc = s2.tsc;
  out.base_ns = s2.ns;
  out.hz = hz;
  out.mult = std::llround(1e9 * static_cast<double>(std::int64_t{1} << TscScale::kShift) / hz);
  return true;
}
#endif

}  // namespace

bool cpu_has_invariant_tsc() noexcept {
#if FABSCOPE_HAVE_TSC
  // CPUID 8000_0007h EDX[8] "TscInvariant" (AMD APM vol. 3 E.4.18; Intel SDM vol. 2A CPUID).
  if (static_cast<unsigned>(__get_cpuid_max(0x80000000U, nullptr)) < 0x80000007U) return false;
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000007U, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & (1U << 8)) != 0;
#else
  return false;
#endif
}

ClockSource choose_clock(std::string_view requested, std::string& warning) {
  warning.clear();
  ClockSource c;
  if (requested == "steady") return c;
  if (!requested.empty() && requested != "tsc") {
    warning =
        fmt::format("FABSCOPE_CLOCK={}: expected steady or tsc; using the default", requested);
  }
  const bool forced = requested == "tsc";
  if (!cpu_has_invariant_tsc()) {
    if (forced)
      warning = "clock: tsc requested but this CPU has no invariant TSC; using steady_clock";
    return c;
  }
#if FABSCOPE_HAVE_TSC
  std::string why;
  if (calibrate_tsc(c.scale, why)) {
    c.tsc = true;
  } else {
    warning = why;
  }
#endif
  return c;
}

namespace detail {
const ClockSource& clock_init_slow() noexcept {
  // A function-local static: the first caller chooses, concurrent first callers wait for it.
  static const bool kChosen = [] {
    std::string warning;
    // The one environment read below apps/: the clock is process-wide and needed before (and
    // without) any command line, by every binary that links core.
    const char* env = std::getenv("FABSCOPE_CLOCK");
    g_clock = choose_clock(env != nullptr ? env : "", warning);
    if (!warning.empty()) log::warn("{}", warning);
    g_clock_state.store(kClockReady, std::memory_order_release);
    return true;
  }();
  (void)kChosen;
  return g_clock;
}
}  // namespace detail

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace fabscope::core
