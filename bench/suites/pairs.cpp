// pairs: the node-by-node matrix. Every unordered pair of ranks is measured once, in the rounds of
// the circle schedule (topology/schedule.hpp); all pairs of a round run at the same time, ranks
// that sit a round out wait without spinning. Per pair, the lower rank initiates:
//   latency_ns  one-way ping-pong latency of lat_size bytes, lat_iters samples (clock: initiator)
//   bw_gbps     window bandwidth of bw_size bytes, first initiator -> peer (fwd, clock: initiator),
//               then peer -> initiator (rev, clock: peer); bw_iters windows each; formula as in bw.
// After every round rank 0 gathers the round's samples and appends them to the file, so a killed
// run leaves every completed round on disk.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/stats.hpp"
#include "core/units.hpp"
#include "io/schema.hpp"
#include "suites/sweep.hpp"
#include "topology/plan_file.hpp"
#include "topology/schedule.hpp"

namespace fabscope::suites {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Per-rank record gathered after each round:
//   [partner, measure_seconds, status, lat samples, bw samples]
// The initiator's bw samples are the fwd direction, the peer's the rev direction.
struct Layout {
  std::size_t lat, bw;
  static constexpr std::size_t kHead = 3;
  [[nodiscard]] std::size_t size() const { return kHead + lat + bw; }
};

void print_summary(const Context& ctx, const std::vector<io::PairRecord>& all) {
  std::vector<double> lat, bw;
  const io::PairRecord* worst = nullptr;
  double worst_bw = std::numeric_limits<double>::infinity();
  std::size_t failed = 0;
  for (const auto& r : all) {
    if (r.status != static_cast<std::int8_t>(io::schema::PairStatus::kOk)) {
      ++failed;
      continue;
    }
    lat.push_back(core::summarize(r.latency_ns).p50);
    for (const auto* dir : {&r.bw_gbps_fwd, &r.bw_gbps_rev}) {
      const double b = core::summarize(*dir).p50;
      bw.push_back(b);
      if (b < worst_bw) {
        worst_bw = b;
        worst = &r;
      }
    }
  }
  const auto l = core::summarize(lat);
  const auto b = core::summarize(bw);
  if (failed > 0) fmt::print(ctx.table, "# pairs: {} pair(s) FAILED or timed out (see the file's errors/ datasets)\n", failed);
  fmt::print(ctx.table, "# pairs summary: {} pairs; latency p50 across pairs min {:.2f} / median {:.2f} / max {:.2f} us; "
             "bandwidth p50 min {:.2f} / median {:.2f} / max {:.2f} Gb/s\n",
             all.size(), l.min / 1e3, l.p50 / 1e3, l.max / 1e3, b.min, b.p50, b.max);
  if (worst != nullptr) {
    fmt::print(ctx.table, "# lowest bandwidth: {} <-> {} ({:.2f} Gb/s)\n", ctx.hostnames[static_cast<std::size_t>(worst->a)],
               ctx.hostnames[static_cast<std::size_t>(worst->b)], worst_bw);
  }
}

// Partners of every rank in one round, from the plan on rank 0, broadcast to all ("" = circle).
std::vector<std::int64_t> plan_round(const Context& ctx, const topology::Plan* plan, std::int64_t round, int n) {
  std::string text;
  if (ctx.comm.rank() == 0) {
    std::vector<topology::Pair> pairs;
    plan->round(round, pairs);
    for (const auto& [a, b] : pairs) text += fmt::format("{},{};", a, b);
  }
  text = ctx.comm.broadcast_string(text, 0);
  std::vector<std::int64_t> partner(static_cast<std::size_t>(n), -1);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto comma = text.find(',', pos), semi = text.find(';', pos);
    const auto a = std::stoll(text.substr(pos, comma - pos)), b = std::stoll(text.substr(comma + 1, semi - comma - 1));
    partner[static_cast<std::size_t>(a)] = b;
    partner[static_cast<std::size_t>(b)] = a;
    pos = semi + 1;
  }
  return partner;
}

}  // namespace

std::unique_ptr<topology::Plan> make_pairs_plan(const Context& ctx, const PairsParams& p) {
  if (p.plan_file.empty() && p.plan == "all-pairs") return nullptr;
  if (ctx.endpoints == nullptr) {
    throw core::UsageError(fmt::format("pairs {}: needs the fabric's topology and every rank's place in it; pass "
                                       "--topology, --ibnetdiscover, --ibnd-cache, --live, --hostname-pattern "
                                       "or --generate (with --rank-as-host on one machine)",
                                       p.plan_file.empty() ? "--plan " + p.plan : "--plan-file " + p.plan_file));
  }
  if (!p.plan_file.empty()) return topology::plan_from_file(topology::load_plan_file(p.plan_file), *ctx.endpoints);
  return topology::make_plan(p.plan, *ctx.endpoints, p.plan_options);
}

void run_pairs(Context& ctx, const PairsParams& p) {
  const int n = ctx.comm.size();
  const int me = ctx.comm.rank();
  const std::unique_ptr<topology::Plan> plan = me == 0 ? make_pairs_plan(ctx, p) : nullptr;
  const bool circle = ctx.comm.broadcast_string(me == 0 && plan ? "plan" : "circle", 0) == "circle";
  const std::int64_t rounds = circle ? topology::circle_rounds(n)
                                     : std::stoll(ctx.comm.broadcast_string(me == 0 ? std::to_string(plan->rounds()) : "", 0));
  const std::string schedule = circle ? "circle" : (p.plan_file.empty() ? p.plan : "plan-file");
  const int bw_warmup = std::max(1, p.warmup / 10);
  const Layout layout{static_cast<std::size_t>(p.lat_iters), static_cast<std::size_t>(p.bw_iters)};
  const std::string run = begin_run(
      ctx, "pairs", p.common, p.lat_iters, p.warmup,
      {{"lat_size_bytes", static_cast<std::int64_t>(p.lat_size)},
       {"bw_size_bytes", static_cast<std::int64_t>(p.bw_size)},
       {"lat_iters", p.lat_iters},
       {"bw_windows", p.bw_iters},
       {"window", transport::kWindow}});
  if (ctx.out != nullptr) {
    ctx.out->init_pairs(run, {n, p.lat_iters, p.bw_iters, rounds});
    ctx.out->set_attr(run, "schedule", schedule);
    fmt::print(ctx.table, "# fabscope pairs: {} ranks, {} rounds of up to {} pairs at once ({}), transport {}; "
               "latency {} B x {}, bandwidth {} x {} windows of {} each way\n",
               n, rounds, n / 2, plan ? plan->description() : "circle schedule, every pair once", p.common.transport, p.lat_size, p.lat_iters,
               core::format_size(p.bw_size), p.bw_iters, transport::kWindow);
    std::fflush(ctx.table);
  }
  CounterProbe counters(ctx, p.common);
  std::vector<double> mine(layout.size());
  std::vector<double> all(me == 0 ? layout.size() * static_cast<std::size_t>(n) : 0);
  std::vector<io::PairRecord> done;
  const std::int64_t t_start = core::now_ns();
  const std::size_t max_size = std::max(p.lat_size, p.bw_size);
  for (std::int64_t round = 0; round < rounds; ++round) {
    // Rounds do not overlap: a fast pair must not start the next round while a slow pair of this
    // round is still measuring (its peer would be waiting, and the round's pairs would no longer
    // load the fabric together).
    ctx.comm.quiet_barrier();
    const std::int64_t partner = circle ? topology::circle_partner(n, round, me)
                                        : plan_round(ctx, plan.get(), round, n)[static_cast<std::size_t>(me)];
    std::fill(mine.begin(), mine.end(), kNaN);
    mine[0] = static_cast<double>(partner);
    std::string error;
    mine[2] = static_cast<double>(io::schema::PairStatus::kOk);
    if (partner >= 0) {
      const std::int64_t t0 = core::now_ns();
      const bool initiator = me < partner;
      std::span<double> lat(mine.data() + Layout::kHead, layout.lat);
      std::span<double> bw(mine.data() + Layout::kHead + layout.lat, layout.bw);
      // A failing pair (completion error, silent peer) is a finding: record it, keep going.
      try {
        auto link = transport::connect(p.common.transport, ctx.comm, static_cast<int>(partner), max_size, p.common.options);
        std::vector<double> window_ns(layout.bw);
        link->pingpong(initiator, p.lat_size, p.warmup, lat);
        // Each rank times the windows it sends (fwd: initiator, rev: peer); the receiver's span is
        // left untouched.
        link->stream(initiator, p.bw_size, bw_warmup, window_ns);
        link->stream(!initiator, p.bw_size, bw_warmup, window_ns);
        const double bits = transport::kWindow * static_cast<double>(p.bw_size) * 8.0;
        for (std::size_t i = 0; i < layout.bw; ++i) bw[i] = bits / window_ns[i];
      } catch (const core::Error& e) {
        const bool timed_out = dynamic_cast<const core::Timeout*>(&e) != nullptr;
        mine[2] = static_cast<double>(timed_out ? io::schema::PairStatus::kTimeout : io::schema::PairStatus::kFailed);
        std::fill(lat.begin(), lat.end(), kNaN);
        std::fill(bw.begin(), bw.end(), kNaN);
        error = fmt::format("rank {} ({}) with rank {} ({}): {}", me, ctx.hostnames[static_cast<std::size_t>(me)], partner,
                            ctx.hostnames[static_cast<std::size_t>(partner)], e.what());
        core::log::error("pairs round {}: {}", round + 1, error);
      }
      mine[1] = static_cast<double>(core::now_ns() - t0) / 1e9;
    }
    ctx.comm.gather(mine, all);
    const auto errors = ctx.comm.gather_strings(error);
    if (me != 0) continue;
    std::vector<io::PairRecord> records;
    double measure_s = 0;
    for (int r = 0; r < n; ++r) {
      const double* rec = all.data() + static_cast<std::size_t>(r) * layout.size();
      const auto q = static_cast<int>(rec[0]);
      if (q < 0) continue;
      measure_s = std::max(measure_s, rec[1]);
      if (q < r) continue;
      const double* peer = all.data() + static_cast<std::size_t>(q) * layout.size();
      io::PairRecord pr;
      pr.a = r;
      pr.b = q;
      pr.round = static_cast<int>(round);
      // The worse of the two sides' verdicts (failed > timeout > ok in the enum's order).
      pr.status = static_cast<std::int8_t>(std::max(rec[2], peer[2]));
      pr.latency_ns.assign(rec + Layout::kHead, rec + Layout::kHead + layout.lat);
      pr.bw_gbps_fwd.assign(rec + Layout::kHead + layout.lat, rec + layout.size());
      pr.bw_gbps_rev.assign(peer + Layout::kHead + layout.lat, peer + layout.size());
      for (const int side : {r, q}) {
        const auto& msg = errors[static_cast<std::size_t>(side)];
        if (!msg.empty()) pr.error += (pr.error.empty() ? "" : " | ") + msg;
      }
      records.push_back(std::move(pr));
    }
    ctx.out->append_pairs(run, records, {round, round + 1, measure_s});
    done.insert(done.end(), records.begin(), records.end());
    if (!ctx.quiet) {
      const double elapsed = static_cast<double>(core::now_ns() - t_start) / 1e9;
      const double eta = elapsed / static_cast<double>(round + 1) * static_cast<double>(rounds - round - 1);
      fmt::print(ctx.table, "pairs: round {} of {} done, {} pairs measured, elapsed {}, ETA {}\n", round + 1,
                 rounds, done.size(), core::format_duration(elapsed), core::format_duration(eta));
      std::fflush(ctx.table);
    }
  }
  ctx.comm.quiet_barrier();
  counters.finish(run);
  if (ctx.out == nullptr) return;
  print_summary(ctx, done);
  ctx.out->end_run(run);
}

}  // namespace fabscope::suites
