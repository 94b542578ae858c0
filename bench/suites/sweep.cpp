#include "suites/sweep.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fabscope::suites {

std::vector<double> sweep_two_ranks(Context& ctx, const SweepParams& p, const Measure& measure,
                                    const Report& report) {
  const int rank = ctx.comm.rank();
  const auto iters = static_cast<std::size_t>(p.iters);
  std::vector<double> all;
  if (rank <= 1) {
    const std::size_t max_size = *std::max_element(p.sizes.begin(), p.sizes.end());
    auto link = transport::connect(p.common.transport, ctx.comm, 1 - rank, max_size, p.common.options);
    std::vector<double> batch(iters, std::numeric_limits<double>::quiet_NaN());
    if (rank == 0) all.reserve(p.sizes.size() * iters);
    for (std::size_t s = 0; s < p.sizes.size(); ++s) {
      measure(*link, rank == 0, p.sizes[s], batch);
      if (rank == 0) {
        all.insert(all.end(), batch.begin(), batch.end());
        report(s, batch);
      }
    }
  }
  ctx.comm.quiet_barrier();
  return all;
}

std::string begin_run(Context& ctx, std::string_view benchmark, const Common& common, int iters,
                      int warmup, std::vector<std::pair<std::string, std::int64_t>> extra) {
  if (ctx.out == nullptr) return "";
  io::RunInfo info;
  info.benchmark = benchmark;
  info.name = common.name;
  info.transport = common.transport;
  info.label = common.label;
  info.iters = iters;
  info.warmup = warmup;
  info.int_attrs = std::move(extra);
  return ctx.out->begin_run(info);
}

std::vector<std::int64_t> to_int64(const std::vector<std::size_t>& sizes) {
  return {sizes.begin(), sizes.end()};
}

}  // namespace fabscope::suites
