// bw / bibw: windowed streaming between ranks 0 and 1 over a sweep of message sizes.
// One sample = one window of W = 64 messages of `size` bytes (clock on rank 0):
//   bw:   rank 0 posts W sends, rank 1 W receives and then a 4-byte ack; the window ends on the
//   ack. bibw: both ranks post W sends and W receives at once; the window ends when all completed.
//   bw_gbps       = directions * W * size * 8 / window_ns         (Gb/s; GB/s = Gb/s / 8)
//   msg_rate_mpps = directions * W / window_ns * 1e3               (million messages per second)
//   bw_gbps_overall = sum of bytes * 8 / sum of window_ns over the timed windows
#include <fmt/format.h>

#include <cmath>
#include <numeric>

#include "core/stats.hpp"
#include "core/units.hpp"
#include "suites/benchmark.hpp"
#include "suites/sweep.hpp"

namespace fabscope::suites {
namespace {

void run_bw(Context& ctx, const SweepParams& p, bool bidirectional) {
  const std::string_view name = bidirectional ? "bibw" : "bw";
  const double directions = bidirectional ? 2.0 : 1.0;
  auto extra = duration_attrs(p);
  extra.emplace_back("window", transport::kWindow);
  const std::string run = begin_run(ctx, name, p.common, p.iters, p.warmup, extra);
  if (ctx.comm.rank() == 0) {
    fmt::print(ctx.table,
               "# fabscope {}: {} bandwidth, transport {}, {} {} {}, window {}, "
               "{} windows, {} warm-up\n",
               name, bidirectional ? "bidirectional" : "unidirectional", transport::kind_name(p.common.transport),
               ctx.endpoint(0), bidirectional ? "<->" : "->", ctx.endpoint(1), transport::kWindow,
               p.iters, p.warmup);
    fmt::print(ctx.table, "# {:>10} {:>12} {:>12} {:>12} {:>12} {:>14} {:>12}\n", "size",
               "GB/s_p50", "Gb/s_p50", "Gb/s_min", "Gb/s_max", "GB/s_overall", "Mpps_p50");
  }
  const auto window_ns = sweep_two_ranks(
      ctx, p, run,
      [&](transport::Link& link, bool rank0, std::size_t size, std::span<double> out) {
        if (bidirectional)
          link.bistream(size, p.warmup, out);
        else
          link.stream(rank0, size, p.warmup, out);
      },
      [&](std::size_t s, std::span<const double> batch) {
        const double bits = directions * transport::kWindow * static_cast<double>(p.sizes[s]) * 8.0;
        std::vector<double> bw(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) bw[i] = bits / batch[i];
        const auto st = core::summarize(bw);
        const double overall =
            bits * static_cast<double>(batch.size()) /
            std::accumulate(batch.begin(), batch.end(), 0.0);  // batch: the timed windows only
        // From the windows, not from Gb/s / size: 0-byte messages have a rate too.
        std::vector<double> rate(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i)
          rate[i] = directions * transport::kWindow / batch[i] * 1e3;
        const double mpps = core::summarize(rate).p50;
        fmt::print(
            ctx.table, "  {:>10} {:>12.3f} {:>12.3f} {:>12.3f} {:>12.3f} {:>14.3f} {:>12.4f}\n",
            core::format_size(p.sizes[s]), st.p50 / 8, st.p50, st.min, st.max, overall / 8, mpps);
        std::fflush(ctx.table);
      });
  if (ctx.out == nullptr) return;
  const auto iters = static_cast<std::size_t>(p.iters);
  io::SweepData data;
  data.size_bytes = to_int64(p.sizes);
  data.iters = iters;
  std::vector<double> bw(window_ns.size()), rate(window_ns.size()), overall(p.sizes.size());
  for (std::size_t s = 0; s < p.sizes.size(); ++s) {
    const double bits = directions * transport::kWindow * static_cast<double>(p.sizes[s]) * 8.0;
    double total_ns = 0;
    std::size_t windows = 0;
    for (std::size_t i = s * iters; i < (s + 1) * iters; ++i) {
      bw[i] = bits / window_ns[i];  // NaN stays NaN (slots --duration did not use)
      rate[i] = directions * transport::kWindow / window_ns[i] * 1e3;
      if (std::isfinite(window_ns[i])) {
        total_ns += window_ns[i];
        ++windows;
      }
    }
    overall[s] = bits * static_cast<double>(windows) / total_ns;
  }
  data.metrics.push_back({"bw_gbps", "Gb/s", std::move(bw), true});
  data.metrics.push_back({"msg_rate_mpps", "Mpps", std::move(rate), false});
  data.columns.push_back({"bw_gbps_overall", "Gb/s", std::move(overall)});
  ctx.out->write_sweep(run, data);
  ctx.out->end_run(run);
}

template <bool kBidirectional>
class Bw : public BenchmarkWith<SweepParams> {
 public:
  void declare(ParamSet& set) override { declare_sweep(set, p, {.iters = 20, .warmup = 2}); }
  void resolve(const ParamSet& set, const Where& where) override { resolve_sweep(set, p, where); }
  void run(Context& ctx) const override { run_bw(ctx, p, kBidirectional); }
};

}  // namespace

void register_bw() {
  register_benchmark({"bw", "unidirectional windowed bandwidth, rank 0 -> rank 1", {}, [] {
                        return std::make_unique<Bw<false>>();
                      }});
  register_benchmark({"bibw", "bidirectional windowed bandwidth between ranks 0 and 1", {}, [] {
                        return std::make_unique<Bw<true>>();
                      }});
}

}  // namespace fabscope::suites
