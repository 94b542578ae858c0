// lat: ping-pong latency between ranks 0 and 1 over a sweep of message sizes.
// One sample = one timed round trip of `size` bytes each way, halved:
//   latency_ns = (t_reply_received - t_send_start) / 2      (clock on rank 0)
// Statistics per size over the timed samples (results/SCHEMA.md).
#include <fmt/format.h>

#include "core/stats.hpp"
#include "core/units.hpp"
#include "suites/benchmark.hpp"
#include "suites/sweep.hpp"

namespace fabscope::suites {
namespace {

void run_lat(Context& ctx, const SweepParams& p) {
  const std::string run = begin_run(ctx, "lat", p.common, p.iters, p.warmup, duration_attrs(p));
  if (ctx.comm.rank() == 0) {
    fmt::print(ctx.table, "# fabscope lat: one-way latency, transport {}, {} <-> {}, {} iterations, {} warm-up\n",
               transport::kind_name(p.common.transport), ctx.endpoint(0), ctx.endpoint(1), p.iters, p.warmup);
    fmt::print(ctx.table, "# {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "size",
               "p50_us", "min_us", "p90_us", "p99_us", "p99.9_us", "max_us", "mean_us", "stddev_us");
  }
  const auto samples = sweep_two_ranks(
      ctx, p, run,
      [&](transport::Link& link, bool rank0, std::size_t size, std::span<double> out) {
        link.pingpong(rank0, size, p.warmup, out);
      },
      [&](std::size_t s, std::span<const double> batch) {
        const auto st = core::summarize(batch);
        fmt::print(ctx.table, "  {:>10} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f}\n",
                   core::format_size(p.sizes[s]), st.p50 / 1e3, st.min / 1e3, st.p90 / 1e3, st.p99 / 1e3,
                   st.p999 / 1e3, st.max / 1e3, st.mean / 1e3, st.stddev / 1e3);
        std::fflush(ctx.table);
      });
  if (ctx.out == nullptr) return;
  io::SweepData data;
  data.size_bytes = to_int64(p.sizes);
  data.iters = static_cast<std::size_t>(p.iters);
  data.metrics.push_back({"latency_ns", "ns", samples, true});
  ctx.out->write_sweep(run, data);
  ctx.out->end_run(run);
}

class Lat : public BenchmarkWith<SweepParams> {
 public:
  void declare(ParamSet& set) override { declare_sweep(set, p, {.iters = 1000, .warmup = 100}); }
  void resolve(const ParamSet& set, const Where& where) override { resolve_sweep(set, p, where); }
  void run(Context& ctx) const override { run_lat(ctx, p); }
};

}  // namespace

void register_lat() {
  register_benchmark({"lat", "ping-pong latency between ranks 0 and 1 over message sizes", {.atomics = true},
                      [] { return std::make_unique<Lat>(); }});
}

}  // namespace fabscope::suites
