#include "suites/sweep.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/clock.hpp"
#include "core/strings.hpp"

#include <fmt/format.h>

namespace fabscope::suites {
namespace {
constexpr int kTagDuration = 301;
}  // namespace

CounterProbe::CounterProbe(const Context& ctx, const Common& common, Reader read)
    : ctx_(ctx), common_(common), read_(read), before_((ctx.transport->*read)(common.transport, common.options)) {}

void CounterProbe::finish_group(const std::string& group) {
  std::string mine;
  if (!before_.empty()) {
    for (const auto& [name, after] : (ctx_.transport->*read_)(common_.transport, common_.options)) {
      const auto it = before_.find(name);
      if (it != before_.end()) mine += fmt::format("{}={}\n", name, static_cast<std::int64_t>(after - it->second));
    }
  }
  const auto all = ctx_.comm.gather_strings(mine);
  if (ctx_.out == nullptr) return;
  std::vector<std::map<std::string, std::int64_t>> per_rank(all.size());
  std::map<std::string, std::size_t> names;
  for (std::size_t r = 0; r < all.size(); ++r) {
    for (const auto line : core::split(all[r], '\n')) {
      const auto eq = line.find('=');
      const std::string name(line.substr(0, eq));
      per_rank[r][name] = std::stoll(std::string(line.substr(eq + 1)));
      names.emplace(name, 0);
    }
  }
  if (names.empty()) return;
  std::vector<std::string> name_list;
  for (auto& [n, idx] : names) {
    idx = name_list.size();
    name_list.push_back(n);
  }
  std::vector<std::int64_t> delta(all.size() * names.size(), -1);
  for (std::size_t r = 0; r < all.size(); ++r)
    for (const auto& [n, v] : per_rank[r]) delta[r * names.size() + names.at(n)] = v;
  ctx_.out->write_strings(group + "/names", name_list);
  ctx_.out->write_ints(group + "/delta", delta, {all.size(), names.size()}, "count");
}

std::vector<double> sweep_two_ranks(Context& ctx, const SweepParams& p, const std::string& run,
                                    const Measure& measure, const Report& report) {
  CounterProbe counters(ctx, p.common);
  const int rank = ctx.comm.rank();
  const auto iters = static_cast<std::size_t>(p.iters);
  std::vector<double> all;
  if (rank <= 1) {
    const std::size_t max_size = *std::max_element(p.sizes.begin(), p.sizes.end());
    // Over MPI a two-rank sweep waits in plain blocking calls: polling for a deadline costs ~25 ns
    // per message on shared memory (tests/perf), and a silent peer leaves nothing else to measure.
    // pairs keeps its deadlines (--timeout, --pair-timeout).
    transport::Options options = p.common.options;
    if (p.common.transport == transport::Kind::kMpi) options.timeout_s = 0;
    auto link = ctx.transport->connect(p.common.transport, 1 - rank, max_size, options);
    std::vector<double> batch(iters, std::numeric_limits<double>::quiet_NaN());
    if (rank == 0) all.reserve(p.sizes.size() * iters);
    for (std::size_t s = 0; s < p.sizes.size(); ++s) {
      std::size_t count = iters;
      if (p.duration_s > 0) {
        // --duration: a short timed calibration batch on both ranks, then rank 0 picks how many
        // iterations fill this size's share of the time (at most `iters`) and tells rank 1.
        constexpr std::size_t kCalibration = 8;
        std::vector<double> scratch(kCalibration);
        const std::int64_t t0 = core::now_ns();
        measure(*link, rank == 0, p.sizes[s], scratch);
        const double per_iter_s = static_cast<double>(core::now_ns() - t0) / 1e9 / static_cast<double>(kCalibration + static_cast<std::size_t>(p.warmup));
        std::uint64_t n = 0;
        if (rank == 0) {
          const double share = p.duration_s / static_cast<double>(p.sizes.size());
          n = static_cast<std::uint64_t>(std::clamp(share / std::max(per_iter_s, 1e-9), 1.0, static_cast<double>(iters)));
          ctx.comm.send(&n, sizeof n, 1, kTagDuration);
        } else {
          ctx.comm.recv(&n, sizeof n, 0, kTagDuration);
        }
        count = static_cast<std::size_t>(n);
      }
      std::fill(batch.begin(), batch.end(), std::numeric_limits<double>::quiet_NaN());
      measure(*link, rank == 0, p.sizes[s], std::span<double>(batch).first(count));
      if (rank == 0) {
        all.insert(all.end(), batch.begin(), batch.end());
        report(s, std::span<const double>(batch).first(count));
      }
    }
  }
  ctx.comm.quiet_barrier();
  counters.finish(run);
  return all;
}

std::string begin_run(Context& ctx, std::string_view benchmark, const Common& common, int iters,
                      int warmup, std::vector<std::pair<std::string, std::int64_t>> extra) {
  if (ctx.out == nullptr) return "";
  io::RunInfo info;
  info.benchmark = benchmark;
  info.name = common.name;
  info.transport = transport::kind_name(common.transport);
  info.label = common.label;
  info.iters = iters;
  info.warmup = warmup;
  info.int_attrs = std::move(extra);
  info.parameters = common.parameters;
  const std::string run = ctx.out->begin_run(info);
  // How the verbs transport connected its QPs (oob or rdmacm); see results/SCHEMA.md.
  if (common.transport == transport::Kind::kVerbs) ctx.out->set_attr(run, "cm", common.options.cm);
  return run;
}

void declare_sweep(ParamSet& set, SweepParams& p, SweepDefaults defaults) {
  set.sizes("sizes", p.sizes, "1:4M", "message sizes: LO:HI powers of two, or a list (8,64K,1M)");
  set.integer("iters", p.iters, defaults.iters, "timed iterations per size").at_least(1);
  set.integer("warmup", p.warmup, defaults.warmup, "untimed iterations per size").at_least(0);
  p.duration_s = 0;
  set.duration("duration", p.duration_s, "",
               "run for this long in all (e.g. 30s), split over the sizes, instead of --iters times per size (--iters "
               "then caps each size; default cap 100000)");
}

void resolve_sweep(const ParamSet& set, SweepParams& p, const Where& where) {
  constexpr int kDurationCap = 100000;
  if (!set.given("duration")) return;
  if (!(p.duration_s > 0)) where.fail(fmt::format("{} must be longer than 0 s (e.g. 30s)", where.name("duration")));
  if (!set.given("iters")) p.iters = kDurationCap;
}

std::vector<std::pair<std::string, std::int64_t>> duration_attrs(const SweepParams& p) {
  if (p.duration_s <= 0) return {};
  return {{"duration_ms", static_cast<std::int64_t>(p.duration_s * 1e3)}};
}

std::vector<std::int64_t> to_int64(const std::vector<std::size_t>& sizes) {
  return {sizes.begin(), sizes.end()};
}

}  // namespace fabscope::suites
