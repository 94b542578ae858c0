// fabscope-micro: single-process microbenchmarks (Google Benchmark) of the costs that bound what
// the harness can measure: reading the clock, summarising samples, and the host's memcpy
// bandwidth (the memory ceiling any transport on this host runs under). The verbs costs
// (ibv_reg_mr, post/poll on a loopback QP) join with the verbs transport.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/clock.hpp"
#include "core/stats.hpp"

namespace {

void BM_clock_read(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(fabscope::core::now_ns());
}
BENCHMARK(BM_clock_read);

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

}  // namespace

BENCHMARK_MAIN();
