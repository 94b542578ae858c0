// congestion: what other traffic does to a job's communication (GPCNeT). The ranks split into
// victims (a seeded share, placed at random or by leaf) and aggressors. Victims measure three
// things, first in isolation (aggressors idle, waiting without spinning), then once per pattern
// while every aggressor runs that pattern for the whole measurement:
//   latency_ns    lat_size-byte ping-pong, victim k -> its ring partner victims[(k+1) % V] (a
//                 random ring), every victim at once (it also answers its predecessor); one
//                 sample = round trip / 2
//   bw_gbps       windows of 64 x bw_size from victim k to its partner, every victim at once;
//                 one sample = window bits / window time
//   allreduce_ns  an 8-byte (one double) MPI allreduce over the victims only; one sample = the
//                 slowest victim's time of one iteration
// Aggressor patterns (transport/multi.hpp windows of aggressor_size messages, back to back):
// incast (all to one), alltoall, flood (each to one other, a seeded derangement).
// Impact factors (GPCNeT's definition; > 1 = worse under load, for every metric):
//   impact_latency_pXX[q, k] = pXX(latency loaded) / pXX(latency isolated), XX = 50, 99
//   impact_bw_p50[q, k]      = p50(bw isolated) / p50(bw loaded)
//   impact_allreduce_pXX[q]  = pXX(allreduce loaded) / pXX(allreduce isolated)
//   aggressor_gbps[q, r]     = bits rank r's completed windows carried / time from its first
//                              window's start to its last one's end (0: the incast target)
// Stop protocol of a loaded phase (no deadlock, nobody waits on a rank that waits on it):
//   1. aggressors connect, start their first windows, enter background barrier `go`, and keep
//      their windows going; victims enter `go` and wait quietly. go completes: load is running.
//   2. victims measure, then enter barrier `stop` (aggressors entered it right after go and
//      poll it between windows, still serving incoming windows).
//   3. stop completes: aggressors start no new window, finish the ones in flight (serving incoming
//      ones meanwhile), then enter `drained` and keep serving until it completes; once it has,
//      no aggressor has a window in flight, so posted receives can be cancelled.
// Deadlines (--timeout T): every operation of a victim and every window of an aggressor; `go`
// within T for aggressors (they are all running by then); `stop` within T for victims once they
// have entered it (aggressors poll it all along); `drained` within 2 T. A rank that fails or
// misses one ends the job (exit 1), keeping the phases already written (phases_done).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/stats.hpp"
#include "core/strings.hpp"
#include "core/units.hpp"
#include "io/rows.hpp"
#include "suites/benchmark.hpp"
#include "suites/load.hpp"
#include "suites/sweep.hpp"
#include "transport/multi.hpp"

namespace fabscope::suites {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kSpinsBeforeYield = 64;
constexpr std::int64_t kIdleBeforeSleepNs = 1'000'000;  // an aggressor idle this long polls every
constexpr int kIdleSleepUs = 100;  // kIdleSleepUs (a window takes longer anyway)

enum Role : std::int64_t { kIdle = 0, kVictim = 1, kAggressor = 2 };

// Leaf of every rank (-1 unknown), from the topology on rank 0, on every rank.
std::vector<int> leaves_of_ranks(const Context& ctx) {
  std::string text;
  if (ctx.comm.rank() == 0 && ctx.endpoints != nullptr) {
    for (int r = 0; r < ctx.comm.size(); ++r)
      text += fmt::format("{},", ctx.endpoints->leaf(static_cast<topology::Index>(r)));
  }
  text = ctx.comm.broadcast_string(text, 0);
  std::vector<int> out;
  for (const auto piece : core::split(text, ',')) out.push_back(std::stoi(std::string(piece)));
  return out;
}

double ratio(double num, double den) {
  return num / den;
}  // NaN propagates; x / 0 = inf is a finding

// A background barrier that must complete within `limit_s` of now (0: no limit): a rank that
// does not arrive ends the job with a timeout instead of leaving everyone waiting.
class Arrival {
 public:
  Arrival(const Context& ctx, double limit_s, const char* what)
      : barrier_(ctx.comm.ibarrier()),
        deadline_(limit_s > 0 ? core::now_ns() + static_cast<std::int64_t>(limit_s * 1e9) : 0),
        limit_s_(limit_s),
        what_(what) {}
  // Polls once; throws core::Timeout when the deadline passed (the clock is read every 256 polls).
  bool test() {
    if (barrier_.test()) return true;
    if (deadline_ != 0 && ++polls_ % 256 == 0 && core::now_ns() > deadline_) {
      throw core::Timeout(fmt::format(
          "congestion: not every rank reached {} within {:.0f} s (--timeout); a rank is "
          "stuck or gone",
          what_, limit_s_));
    }
    return false;
  }
  void wait_quietly() {
    while (!test()) {
      polls_ = 255;  // read the clock every time: each poll sleeps
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  runtime::PendingBarrier barrier_;
  std::int64_t deadline_;
  double limit_s_;
  const char* what_;
  int polls_ = 0;
};

// One loaded phase of an aggressor: runs the pattern until the victims are done (see the top).
double aggress(const Context& ctx, transport::Flows& flows, double timeout_s) {
  int idle = 0;
  std::int64_t idle_since = 0;
  auto pump = [&](bool start_new) {
    if (flows.progress(start_new)) {
      idle = 0;
      idle_since = 0;
    } else if (++idle >= kSpinsBeforeYield) {
      // Nothing moved for a while: the windows are long (a slow or congested path), so polling
      // less often costs no load, and it leaves the CPU to victims sharing the host's cores.
      const std::int64_t now = core::now_ns();
      if (idle_since == 0) idle_since = now;
      if (now - idle_since > kIdleBeforeSleepNs) {
        std::this_thread::sleep_for(std::chrono::microseconds(kIdleSleepUs));
      } else {
        std::this_thread::yield();  // oversubscribed ranks: let the one that can progress run
      }
    }
  };
  pump(true);
  Arrival go(ctx, timeout_s, "the start of the load");
  while (!go.test()) pump(true);
  Arrival stop(ctx, 0,
               "");  // as long as the victims measure (each of their operations has --timeout)
  while (!stop.test()) pump(true);
  while (!flows.idle()) pump(false);
  Arrival drained(ctx, 2 * timeout_s, "the end of the load");
  while (!drained.test()) pump(false);
  flows.close();
  return flows.busy_ns() > 0 ? flows.bits_sent() / static_cast<double>(flows.busy_ns()) : 0.0;
}

struct VictimFlows {
  std::unique_ptr<transport::Flows> lat, bw;
  std::optional<runtime::Comm> comm;  // the victims, ordered by ring position
};

// The victim's three measurements into `rec` ([lat iters | bw bw_iters | allreduce iters]).
void measure(const CongestionParams& p, VictimFlows& v, std::span<double> rec) {
  const auto iters = static_cast<std::size_t>(p.iters);
  const auto bw_iters = static_cast<std::size_t>(p.bw_iters);
  v.comm->quiet_barrier();
  v.lat->ring_pingpong(p.warmup, rec.subspan(0, iters));
  v.comm->quiet_barrier();
  std::vector<double> window_ns(bw_iters);
  v.bw->run(std::max(1, p.warmup / 10), p.bw_iters, window_ns);
  const double bits = transport::kWindow * static_cast<double>(p.bw_size) * 8.0;
  for (std::size_t i = 0; i < bw_iters; ++i) rec[iters + i] = bits / window_ns[i];
  v.comm->quiet_barrier();
  const runtime::Deadline d{0, static_cast<std::int64_t>(p.common.options.timeout_s * 1e9)};
  double in = 1.0, out = 0.0;
  for (int i = 0; i < p.warmup + p.iters; ++i) {
    const std::int64_t t0 = core::now_ns();
    v.comm->allreduce_sum(&in, &out, 1, d);
    const std::int64_t t1 = core::now_ns();
    if (i >= p.warmup)
      rec[iters + bw_iters + static_cast<std::size_t>(i - p.warmup)] = static_cast<double>(t1 - t0);
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

void run_congestion(Context& ctx, const CongestionParams& p) {
  const int n = ctx.comm.size();
  const int me = ctx.comm.rank();
  const auto un = static_cast<std::size_t>(n);
  const auto iters = static_cast<std::size_t>(p.iters);
  const auto bw_iters = static_cast<std::size_t>(p.bw_iters);
  const std::vector<int> victims =
      load::choose_victims(n, p.victim_fraction, p.placement, p.seed,
                           p.placement == "random" ? std::vector<int>{} : leaves_of_ranks(ctx));
  const auto nv = victims.size();
  std::vector<std::int64_t> role(un, kAggressor);
  for (const int v : victims) role[static_cast<std::size_t>(v)] = kVictim;
  std::vector<int> aggressors;
  for (int r = 0; r < n; ++r)
    if (role[static_cast<std::size_t>(r)] == kAggressor) aggressors.push_back(r);
  const auto pos = std::find(victims.begin(), victims.end(), me);
  const int k = pos == victims.end() ? -1 : static_cast<int>(pos - victims.begin());
  const std::size_t nq = p.patterns.size();
  const double timeout_s = p.common.options.timeout_s;
  std::vector<std::string> phases{"isolated"};
  phases.insert(phases.end(), p.patterns.begin(), p.patterns.end());

  const std::string run =
      begin_run(ctx, "congestion", p.common, p.iters, p.warmup,
                {{"seed", static_cast<std::int64_t>(p.seed)},
                 {"aggressor_size_bytes", static_cast<std::int64_t>(p.aggressor_size)},
                 {"lat_size_bytes", static_cast<std::int64_t>(p.lat_size)},
                 {"bw_size_bytes", static_cast<std::int64_t>(p.bw_size)},
                 {"bw_iters", p.bw_iters},
                 {"window", transport::kWindow},
                 {"incast_target", load::incast_target(aggressors, p.seed)},
                 {"phases_total", static_cast<std::int64_t>(phases.size())},
                 {"phases_done", 0}});
  if (ctx.out != nullptr) {
    ctx.out->set_attr(run, "placement", p.placement);
    ctx.out->set_attr(run, "patterns", join(p.patterns));
    io::set_attr_double(*ctx.out, run, "victim_fraction", p.victim_fraction);
    ctx.out->write_ints(run + "/role", role, {un}, "-");
    ctx.out->write_ints(run + "/victims", std::vector<std::int64_t>(victims.begin(), victims.end()),
                        {nv}, "-");
    ctx.out->write_strings(run + "/phases", phases);
    const std::size_t np = phases.size();
    ctx.out->write_doubles(run + "/latency_ns", std::vector<double>(np * nv * iters, kNaN),
                           {np, nv, iters}, "ns", true);
    ctx.out->write_doubles(run + "/bw_gbps", std::vector<double>(np * nv * bw_iters, kNaN),
                           {np, nv, bw_iters}, "Gb/s", true);
    ctx.out->write_doubles(run + "/allreduce_ns", std::vector<double>(np * iters, kNaN),
                           {np, iters}, "ns", true);
    for (const char* name : {"impact_latency_p50", "impact_latency_p99", "impact_bw_p50"}) {
      ctx.out->write_doubles(run + "/" + name, std::vector<double>(nq * nv, kNaN), {nq, nv}, "-");
    }
    for (const char* name : {"impact_allreduce_p50", "impact_allreduce_p99"}) {
      ctx.out->write_doubles(run + "/" + name, std::vector<double>(nq, kNaN), {nq}, "-");
    }
    ctx.out->write_doubles(run + "/aggressor_gbps", std::vector<double>(nq * un, kNaN), {nq, un},
                           "Gb/s");
    fmt::print(ctx.table,
               "# fabscope congestion: {} ranks, {} victims ({} placement, seed {}), {} aggressors "
               "running {} with {} "
               "messages; victims: {} B ping-pong x {}, {} x {} bandwidth windows, 8 B allreduce x "
               "{}; transport {}\n",
               n, nv, p.placement, p.seed, aggressors.size(), join(p.patterns),
               core::format_size(p.aggressor_size), p.lat_size, p.iters, p.bw_iters,
               core::format_size(p.bw_size), p.iters, transport::kind_name(p.common.transport));
    std::fflush(ctx.table);
  }

  // Victims keep their connections for every phase.
  VictimFlows vf;
  vf.comm = ctx.comm.split(k >= 0 ? 0 : -1, k);
  if (k >= 0) {
    const int next = victims[static_cast<std::size_t>(k + 1) % nv];
    const int prev = victims[(static_cast<std::size_t>(k) + nv - 1) % nv];
    vf.lat = ctx.transport->connect_flows(p.common.transport, {{next}, {prev}, p.lat_size},
                                      p.common.options);
    vf.bw = ctx.transport->connect_flows(p.common.transport, {{next}, {prev}, p.bw_size},
                                     p.common.options);
  }

  const std::size_t rec_size = iters + bw_iters + iters + 1;
  std::vector<double> mine(rec_size), all(me == 0 ? rec_size * un : 0);
  std::vector<core::Summary> iso_lat(nv), iso_bw(nv);
  core::Summary iso_ar;
  for (std::size_t ph = 0; ph < phases.size(); ++ph) {
    const bool loaded = ph > 0;
    std::fill(mine.begin(), mine.end(), kNaN);
    ctx.comm.quiet_barrier();
    std::unique_ptr<transport::Flows> load;
    if (loaded && role[static_cast<std::size_t>(me)] == kAggressor) {
      const auto f = load::aggressor_flows(phases[ph], aggressors, me, p.seed);
      load = ctx.transport->connect_flows(p.common.transport, {f.to, f.from, p.aggressor_size},
                                          p.common.options);
    }
    std::optional<CounterProbe> counters;
    if (loaded) counters.emplace(ctx, p.common, &transport::Transport::load_counters);
    if (me == p.test_stall_rank && static_cast<int>(ph) == p.test_stall_phase) {
      // Test hook: this rank goes silent for long; its peers' --timeout must end the job first.
      std::this_thread::sleep_for(std::chrono::duration<double>(20 * timeout_s));
      throw core::Error(core::ExitCode::kFailure,
                        "test hook (--test-stall): this rank stayed silent");
    }
    if (!loaded) {
      if (k >= 0) measure(p, vf, mine);
    } else if (load) {
      mine[rec_size - 1] = aggress(ctx, *load, timeout_s);
    } else {
      // The aggressors bound the start (they time out when one of them does not arrive); once the
      // victims are done, every aggressor is polling `stop`, so it completes at once.
      Arrival go(ctx, 0, "the start of the load");
      go.wait_quietly();
      if (k >= 0) measure(p, vf, mine);
      Arrival stop(ctx, timeout_s, "the end of the victims' measurement");
      stop.wait_quietly();
      Arrival drained(ctx, 2 * timeout_s, "the end of the load");
      drained.wait_quietly();
    }
    load.reset();
    if (counters) counters->finish_group(run + "/counters/" + phases[ph]);
    ctx.comm.gather(mine, all);
    if (me != 0) continue;

    // Victims' samples in ring order; the allreduce sample is the slowest victim's.
    std::vector<double> lat(nv * iters), bw(nv * bw_iters), ar(iters, kNaN);
    for (std::size_t v = 0; v < nv; ++v) {
      const double* rec = all.data() + static_cast<std::size_t>(victims[v]) * rec_size;
      std::copy(rec, rec + iters, lat.begin() + static_cast<std::ptrdiff_t>(v * iters));
      std::copy(rec + iters, rec + iters + bw_iters,
                bw.begin() + static_cast<std::ptrdiff_t>(v * bw_iters));
      for (std::size_t i = 0; i < iters; ++i)
        ar[i] = v == 0 ? rec[iters + bw_iters + i] : std::max(ar[i], rec[iters + bw_iters + i]);
    }
    const auto row = static_cast<std::uint64_t>(ph);
    io::write_rows(*ctx.out, run + "/latency_ns", lat, row);
    io::write_rows(*ctx.out, run + "/bw_gbps", bw, row);
    io::write_rows(*ctx.out, run + "/allreduce_ns", ar, row);
    std::vector<core::Summary> s_lat(nv), s_bw(nv);
    for (std::size_t v = 0; v < nv; ++v) {
      s_lat[v] = core::summarize(std::span<const double>(lat).subspan(v * iters, iters));
      s_bw[v] = core::summarize(std::span<const double>(bw).subspan(v * bw_iters, bw_iters));
    }
    const core::Summary s_ar = core::summarize(ar);
    std::vector<double> f_lat50(nv), f_lat99(nv), f_bw(nv);
    if (!loaded) {
      iso_lat = s_lat;
      iso_bw = s_bw;
      iso_ar = s_ar;
    } else {
      for (std::size_t v = 0; v < nv; ++v) {
        f_lat50[v] = ratio(s_lat[v].p50, iso_lat[v].p50);
        f_lat99[v] = ratio(s_lat[v].p99, iso_lat[v].p99);
        f_bw[v] = ratio(iso_bw[v].p50, s_bw[v].p50);
      }
      const double ar50 = ratio(s_ar.p50, iso_ar.p50), ar99 = ratio(s_ar.p99, iso_ar.p99);
      std::vector<double> agg(un, kNaN);
      for (const int a : aggressors)
        agg[static_cast<std::size_t>(a)] =
            all[static_cast<std::size_t>(a) * rec_size + rec_size - 1];
      const auto q = row - 1;
      io::write_rows(*ctx.out, run + "/impact_latency_p50", f_lat50, q);
      io::write_rows(*ctx.out, run + "/impact_latency_p99", f_lat99, q);
      io::write_rows(*ctx.out, run + "/impact_bw_p50", f_bw, q);
      io::write_rows(*ctx.out, run + "/impact_allreduce_p50", std::span<const double>(&ar50, 1), q);
      io::write_rows(*ctx.out, run + "/impact_allreduce_p99", std::span<const double>(&ar99, 1), q);
      io::write_rows(*ctx.out, run + "/aggressor_gbps", agg, q);
    }
    ctx.out->set_attr(run, "phases_done", static_cast<std::int64_t>(ph + 1));
    // The phase's line is a result, printed even with --quiet.
    std::vector<double> lat50(nv), bw50(nv);
    for (std::size_t v = 0; v < nv; ++v) {
      lat50[v] = s_lat[v].p50;
      bw50[v] = s_bw[v].p50;
    }
    const auto l = core::summarize(lat50), b = core::summarize(bw50);
    std::string impact;
    if (loaded) {
      const auto fl = core::summarize(f_lat50), fl99 = core::summarize(f_lat99),
                 fb = core::summarize(f_bw);
      impact = fmt::format(
          "; impact latency p50 median {:.2f} (max {:.2f}), p99 median {:.2f}, bw median {:.2f} "
          "(max {:.2f}), "
          "allreduce p50 {:.2f}",
          fl.p50, fl.max, fl99.p50, fb.p50, fb.max, ratio(s_ar.p50, iso_ar.p50));
    }
    fmt::print(ctx.table,
               "congestion: {:<9} victims latency p50 median {:.2f} us, bw p50 median {:.2f} Gb/s, "
               "allreduce p50 "
               "{:.2f} us{}\n",
               phases[ph], l.p50 / 1e3, b.p50, s_ar.p50 / 1e3, impact);
    std::fflush(ctx.table);
  }
  vf = {};
  ctx.comm.quiet_barrier();
  if (ctx.out != nullptr) ctx.out->end_run(run);
}

class Congestion : public BenchmarkWith<CongestionParams> {
 public:
  void declare(ParamSet& set) override {
    set.number("victims", p.victim_fraction, 0.2, "victims' share of the ranks (at least 2 victims and 2 aggressors)")
        .check = [this](const Where& where) {
      if (!(p.victim_fraction > 0 && p.victim_fraction < 1)) {
        where.fail(fmt::format("{} {}: give the victims' share of the ranks, between 0 and 1 (e.g. 0.2)",
                               where.name("victims"), p.victim_fraction));
      }
    };
    set.text("placement", p.placement, "random",
             "random, leaf (victims fill whole leaves) or spread (over leaves); leaf and spread need a topology")
        .choices({"random", "leaf", "spread"}, "placement");
    set.seed("seed", p.seed, 1, "seed of the random choices");
    auto& patterns = set.list("patterns", p.patterns, "incast,alltoall,flood", "aggressor patterns in order: incast, "
                                                                                "alltoall, flood");
    patterns.choices(load::pattern_names(), "pattern").unique();
    patterns.check = [this, check = patterns.check](const Where& where) {
      if (p.patterns.empty()) where.fail(fmt::format("{}: no aggressor patterns given", where.name("patterns")));
      check(where);
    };
    set.size("aggressor_size", p.aggressor_size, "1M", "aggressors' message size").at_least(1);
    set.size("lat_size", p.lat_size, "8", "victims' ping-pong size").at_least(1);
    set.size("bw_size", p.bw_size, "1M", "victims' bandwidth message size").at_least(1);
    set.integer("iters", p.iters, 1000, "victims' ping-pongs and allreduces per phase").at_least(1);
    set.integer("bw_iters", p.bw_iters, 20, "victims' bandwidth windows per phase").at_least(1);
    set.integer("warmup", p.warmup, 10, "untimed ping-pongs and allreduces per phase").at_least(0);
    load::declare_test_stall(set, p.test_stall_rank, p.test_stall_phase, "PHASE");
  }
  void validate(const Where& where) const override { load::validate_flows_transport(p.common, "congestion", where); }
  void preflight(const runtime::Comm& comm, const Context& ctx) const override {
    constexpr int kMinCongestion = 4;  // a ring of 2 victims and a pattern of 2 aggressors
    if (comm.size() < kMinCongestion) {
      throw core::UsageError(fmt::format("congestion needs at least {} ranks (2 victims and 2 aggressors; got {}); launch "
                                         "with e.g. 'mpirun -np {} fabscope congestion ...'",
                                         kMinCongestion, comm.size(), kMinCongestion));
    }
    if (p.placement != "random" && comm.rank() == 0 && ctx.endpoints == nullptr) {
      throw core::UsageError(fmt::format("congestion --placement {}: needs the fabric's topology and every rank's place in "
                                         "it; pass --topology, --ibnetdiscover, --ibnd-cache, --live, --hostname-pattern or "
                                         "--generate (with --rank-as-host on one machine), or use --placement random",
                                         p.placement));
    }
  }
  void run(Context& ctx) const override { run_congestion(ctx, p); }
};

}  // namespace

void register_congestion() {
  register_benchmark({"congestion",
                      "victims' latency, bandwidth and allreduce alone and under aggressor traffic (GPCNeT): impact "
                      "factors",
                      {},
                      [] { return std::make_unique<Congestion>(); }});
}

}  // namespace fabscope::suites
