// fabscope-micro: single-process microbenchmarks (Google Benchmark) of the costs that bound what
// the harness can measure on a host:
//   BM_clock_read        one core::now_ns() (the timed loops read it once or twice per iteration),
//                        on the process clock (core::clock_name(), FABSCOPE_CLOCK)
//   BM_now_ns_tsc        one read of the calibrated TSC clock (skipped without an invariant TSC)
//   BM_now_ns_steady     one steady_clock read, the fallback
//   BM_summarize         statistics of N samples
//   BM_memcpy            memcpy bandwidth: the memory ceiling any transport on this host runs under
//   BM_reg_mr            ibv_reg_mr + ibv_dereg_mr of a buffer, 4 KiB .. 1 GiB (BM_reg_mr_huge: on
//                        2 MiB huge pages, where the host has them)
//   BM_post_poll         ibv_post_send (8-byte inline RDMA WRITE, signaled) + ibv_poll_cq until
//                        its completion, between two QPs of one device (loopback through the NIC)
// The verbs benchmarks need an RDMA device (Soft-RoCE works); without one they are skipped with
// the reason. `--benchmark_format=json` output can be stored in a results file with
// `fabscope ... --attach micro.json`.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "verbs/verbs.hpp"

namespace {

void BM_clock_read(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(fabscope::core::now_ns());
  state.SetLabel(std::string(fabscope::core::clock_name()));
}
BENCHMARK(BM_clock_read);

void BM_now_ns_tsc(benchmark::State& state) {
  static std::string warning;
  static const fabscope::core::ClockSource clock = fabscope::core::choose_clock("tsc", warning);
  if (!clock.tsc) {
    state.SkipWithError(warning.c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(clock.now_ns());
  state.SetLabel(fmt::format("{:.0f} Hz", clock.tsc_hz()));
}
BENCHMARK(BM_now_ns_tsc);

void BM_now_ns_steady(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(fabscope::core::steady_ns());
}
BENCHMARK(BM_now_ns_steady);

void BM_summarize(benchmark::State& state) {
  std::vector<double> v(static_cast<std::size_t>(state.range(0)));
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> d(7.0, 0.3);
  for (auto& x : v) x = d(rng);
  for (auto _ : state) benchmark::DoNotOptimize(fabscope::core::summarize(v));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_summarize)->Range(1 << 10, 1 << 20);

void BM_memcpy(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<char> src(n, 'a'), dst(n);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), n);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_memcpy)->RangeMultiplier(16)->Range(4 << 10, 256 << 20);

// The device port, opened once; nullopt (with the reason) where the host has none.
struct Device {
  std::optional<fabscope::verbs::Port> port;
  std::string why;
};
Device& device() {
  static Device d = [] {
    Device out;
    try {
      out.port.emplace(fabscope::verbs::open_port({}, 0));
    } catch (const fabscope::core::Error& e) {
      out.why = e.what();
    }
    return out;
  }();
  return d;
}

struct Mapping {
  void* p = MAP_FAILED;
  std::size_t n = 0;
  ~Mapping() {
    if (p != MAP_FAILED) munmap(p, n);
  }
};

void reg_mr(benchmark::State& state, bool huge) {
  Device& d = device();
  if (!d.port) {
    state.SkipWithError(d.why.c_str());
    return;
  }
  const auto n = static_cast<std::size_t>(state.range(0));
  Mapping m;
  m.n = huge ? (n + (2u << 20) - 1) / (2u << 20) * (2u << 20) : n;
  m.p = mmap(nullptr, m.n, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | (huge ? MAP_HUGETLB : 0), -1, 0);
  if (m.p == MAP_FAILED) {
    state.SkipWithError(huge ? "no huge pages (set /proc/sys/vm/nr_hugepages)"
                             : "mmap failed (memory)");
    return;
  }
  std::memset(m.p, 1, m.n);
  fabscope::verbs::PdPtr pd(ibv_alloc_pd(d.port->ctx.get()));
  for (auto _ : state) {
    ibv_mr* mr = ibv_reg_mr(pd.get(), m.p, m.n, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (mr == nullptr) {
      state.SkipWithError("ibv_reg_mr failed (raise ulimit -l / memlock)");
      break;
    }
    ibv_dereg_mr(mr);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(m.n));
}
void BM_reg_mr(benchmark::State& state) { reg_mr(state, false); }
void BM_reg_mr_huge(benchmark::State& state) { reg_mr(state, true); }
BENCHMARK(BM_reg_mr)->RangeMultiplier(4)->Range(4 << 10, 1 << 30)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_reg_mr_huge)
    ->RangeMultiplier(4)
    ->Range(2 << 20, 1 << 30)
    ->Unit(benchmark::kMicrosecond);

void BM_post_poll(benchmark::State& state) {
  Device& d = device();
  if (!d.port) {
    state.SkipWithError(d.why.c_str());
    return;
  }
  fabscope::verbs::Endpoint a(*d.port, 4096, 16, 1, 64, true), b(*d.port, 4096, 16, 1, 64, true);
  a.connect(b.local_info(), 0);
  b.connect(a.local_info(), 0);
  const auto remote = b.local_info();
  ibv_sge sge{reinterpret_cast<std::uintptr_t>(a.data()), 8, a.lkey()};
  ibv_send_wr wr{};
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_RDMA_WRITE;
  wr.send_flags = IBV_SEND_SIGNALED | (a.inline_bytes() >= 8 ? IBV_SEND_INLINE : 0);
  wr.wr.rdma.remote_addr = remote.addr;
  wr.wr.rdma.rkey = remote.rkey;
  for (auto _ : state) {
    ibv_send_wr* bad = nullptr;
    if (ibv_post_send(a.qp(), &wr, &bad) != 0) {
      state.SkipWithError("ibv_post_send failed");
      break;
    }
    ibv_wc wc{};
    int n = 0;
    while ((n = ibv_poll_cq(a.cq(), 1, &wc)) == 0) {
    }
    if (n < 0 || wc.status != IBV_WC_SUCCESS) {
      state.SkipWithError(n < 0 ? "ibv_poll_cq failed" : ibv_wc_status_str(wc.status));
      break;
    }
  }
}
BENCHMARK(BM_post_poll)->Unit(benchmark::kMicrosecond);

// Google Benchmark checks some of its flags with BM_CHECK, which aborts (SIGABRT) instead of
// saying what is wrong: --benchmark_repetitions=-1 is one. The numeric flags known to do so are
// read here first; a bad one is one line on stderr and exit 2 (usage), like every fabscope tool.
// Returns the message, or "" when every flag is fine.
std::string bad_benchmark_flag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto value = [&](std::string_view flag, std::string_view& v) {
      if (arg.substr(0, flag.size()) != flag || arg.size() == flag.size() ||
          arg[flag.size()] != '=') {
        return false;
      }
      v = arg.substr(flag.size() + 1);
      return true;
    };
    std::string_view v;
    if (value("--benchmark_repetitions", v)) {
      int n = 0;
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (ec != std::errc{} || p != v.data() + v.size() || n < 1)
        return fmt::format("{}: give a positive integer", arg);
    } else if (value("--benchmark_min_time", v) || value("--benchmark_min_warmup_time", v)) {
      double t = 0;
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), t);
      if (ec != std::errc{} || p != v.data() + v.size() || !std::isfinite(t) || t < 0)
        return fmt::format("{}: give a non-negative number of seconds, e.g. 0.5", arg);
    }
  }
  return {};
}

}  // namespace

// BENCHMARK_MAIN(), with the flags checked first.
int main(int argc, char** argv) {
  if (const std::string bad = bad_benchmark_flag(argc, argv); !bad.empty()) {
    std::fprintf(stderr, "fabscope-micro: %s\n", bad.c_str());
    return static_cast<int>(fabscope::core::ExitCode::kUsage);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
