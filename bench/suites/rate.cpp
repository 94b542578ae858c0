// rate: message rate between ranks 0 and 1 against queue pairs and post list, the sweep of
// perftest's `ib_write_bw -q N -l M` (how many QPs and chained work requests a NIC needs to reach
// its message rate). For every (qps, post_list) point rank 0 and rank 1 connect anew and stream
// windows of W = 64 messages of each size, rank 0 -> rank 1, as bw does (windows spread over the
// QPs). One sample = one window (clock on rank 0):
//   msg_rate_mpps = W / window_ns * 1e3                (million messages per second)
//   bw_gbps       = W * size * 8 / window_ns           (Gb/s)
// Over MPI there are no queue pairs or post lists: the sweep is the one point qps = 1, post_list
// = 1.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <limits>

#include "core/stats.hpp"
#include "core/units.hpp"
#include "suites/benchmark.hpp"
#include "suites/sweep.hpp"

namespace fabscope::suites {
namespace {

struct RateParams {
  Common common;
  std::vector<std::size_t> sizes;
  std::vector<std::string> qp_counts, post_lists;  // as given; resolve() turns them into numbers
  std::vector<int> qps, lists;
  int iters = 0;
  int warmup = 0;
};

void run_rate(Context& ctx, const RateParams& p) {
  const int rank = ctx.comm.rank();
  const auto iters = static_cast<std::size_t>(p.iters);
  const std::size_t nq = p.qps.size(), nl = p.lists.size(), ns = p.sizes.size();
  const std::string run =
      begin_run(ctx, "rate", p.common, p.iters, p.warmup, {{"window", transport::kWindow}});
  if (rank == 0) {
    fmt::print(ctx.table,
               "# fabscope rate: message rate, transport {}, {} -> {}, window "
               "{}, {} windows, "
               "{} warm-up\n",
               transport::kind_name(p.common.transport), ctx.endpoint(0), ctx.endpoint(1), transport::kWindow, p.iters,
               p.warmup);
    fmt::print(ctx.table, "# {:>5} {:>9} {:>10} {:>12} {:>12} {:>12}\n", "qps", "post_list", "size",
               "Mpps_p50", "Mpps_max", "Gb/s_p50");
  }
  CounterProbe counters(ctx, p.common);
  std::vector<double> rate(nq * nl * ns * iters, std::numeric_limits<double>::quiet_NaN());
  std::vector<double> bw(rate.size(), rate.front());
  if (rank <= 1) {
    const std::size_t max_size = *std::max_element(p.sizes.begin(), p.sizes.end());
    std::vector<double> window_ns(iters);
    for (std::size_t q = 0; q < nq; ++q) {
      for (std::size_t l = 0; l < nl; ++l) {
        transport::Options o = p.common.options;
        o.qps = p.qps[q];
        o.post_list = p.lists[l];
        if (p.common.transport == transport::Kind::kMpi) o.timeout_s = 0;  // plain blocking calls, as the sweeps
        auto link = ctx.transport->connect(p.common.transport, 1 - rank, max_size, o);
        for (std::size_t s = 0; s < ns; ++s) {
          link->stream(rank == 0, p.sizes[s], p.warmup, window_ns);
          if (rank != 0) continue;
          const std::size_t base = ((q * nl + l) * ns + s) * iters;
          for (std::size_t i = 0; i < iters; ++i) {
            rate[base + i] = transport::kWindow / window_ns[i] * 1e3;
            bw[base + i] =
                transport::kWindow * static_cast<double>(p.sizes[s]) * 8.0 / window_ns[i];
          }
          const auto st = core::summarize(std::span<const double>(rate).subspan(base, iters));
          const auto sb = core::summarize(std::span<const double>(bw).subspan(base, iters));
          fmt::print(ctx.table, "  {:>5} {:>9} {:>10} {:>12.4f} {:>12.4f} {:>12.3f}\n", p.qps[q],
                     p.lists[l], core::format_size(p.sizes[s]), st.p50, st.max, sb.p50);
          std::fflush(ctx.table);
        }
      }
    }
  }
  ctx.comm.quiet_barrier();
  counters.finish(run);
  if (ctx.out == nullptr) return;
  const std::vector<std::uint64_t> point{nq, nl, ns};
  const std::vector<std::uint64_t> all{nq, nl, ns, iters};
  ctx.out->write_ints(run + "/qps", std::vector<std::int64_t>(p.qps.begin(), p.qps.end()), {nq},
                      "");
  ctx.out->write_ints(run + "/post_list", std::vector<std::int64_t>(p.lists.begin(), p.lists.end()),
                      {nl}, "");
  ctx.out->write_ints(run + "/size_bytes", to_int64(p.sizes), {ns}, "bytes");
  ctx.out->write_doubles(run + "/samples/msg_rate_mpps", rate, all, "Mpps", true);
  ctx.out->write_doubles(run + "/samples/bw_gbps", bw, all, "Gb/s", true);
  for (const auto& [metric, units, values] :
       {std::tuple{"msg_rate_mpps", "Mpps", &rate}, std::tuple{"bw_gbps", "Gb/s", &bw}}) {
    std::array<std::vector<double>, core::kStatNames.size()> stats;
    for (std::size_t k = 0; k < nq * nl * ns; ++k) {
      const auto v = core::stat_values(
          core::summarize(std::span<const double>(*values).subspan(k * iters, iters)));
      for (std::size_t j = 0; j < stats.size(); ++j) stats[j].push_back(v[j]);
    }
    for (std::size_t j = 0; j < stats.size(); ++j) {
      ctx.out->write_doubles(fmt::format("{}/summary/{}_{}", run, metric, core::kStatNames[j]),
                             stats[j], point, units);
    }
  }
  ctx.out->end_run(run);
}

class Rate : public BenchmarkWith<RateParams> {
 public:
  void declare(ParamSet& set) override {
    set.sizes("sizes", p.sizes, "8", "message sizes: LO:HI powers of two, or a list (8,64K,1M)");
    set.list("qp_counts", p.qp_counts, "1,2,4,8",
             "verbs: queue pairs per connection to sweep (mpi: 1)");
    set.list("post_lists", p.post_lists, "1,4,16",
             "verbs: work requests per ibv_post_send call to sweep, 1..64 (mpi: 1)");
    set.integer("iters", p.iters, 20, "timed windows per point and size").at_least(1);
    set.integer("warmup", p.warmup, 2, "untimed windows per point and size").at_least(0);
  }
  void resolve(const ParamSet& set, const Where& where) override {
    const bool mpi = p.common.transport == transport::Kind::kMpi;
    for (const auto& [field, text, out, hi] :
         {std::tuple{"qp_counts", &p.qp_counts, &p.qps, 1024},
          std::tuple{"post_lists", &p.post_lists, &p.lists, 64}}) {
      if (mpi && !set.given(field)) *text = {"1"};  // the MPI point
      out->clear();
      for (const auto& t : *text) {
        const int v = parse_int(t, where.name(field));
        if (v < 1 || v > hi)
          where.fail(fmt::format("{} {}: give counts from 1 to {}", where.name(field), v, hi));
        out->push_back(v);
      }
      if (out->empty()) where.fail(fmt::format("{}: give at least one count", where.name(field)));
      if (mpi && (out->size() != 1 || out->front() != 1)) {
        where.fail(
            fmt::format("{} {}: queue pairs and post lists exist over verbs only; over mpi rate "
                        "measures the one "
                        "point 1 (drop the option or use --transport verbs)",
                        where.name(field), fmt::join(*out, ",")));
      }
    }
  }
  void run(Context& ctx) const override { run_rate(ctx, p); }
};

}  // namespace

void register_rate() {
  register_benchmark(
      {"rate",
       "message rate vs queue pairs and post list between ranks 0 and 1 (ib_write_bw -q N -l M)",
       {},
       [] { return std::make_unique<Rate>(); }});
}

}  // namespace fabscope::suites
