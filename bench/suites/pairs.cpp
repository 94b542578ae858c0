// pairs: the node-by-node matrix. Every unordered pair of ranks is measured once, in the rounds of
// the circle schedule (topology/schedule.hpp); all pairs of a round run at the same time, ranks
// that sit a round out wait without spinning. Per pair, the lower rank initiates:
//   latency_ns  one-way ping-pong latency of lat_size bytes, lat_iters samples (clock: initiator)
//   bw_gbps     window bandwidth of bw_size bytes, first initiator -> peer (fwd, clock: initiator),
//               then peer -> initiator (rev, clock: peer); bw_iters windows each; formula as in bw.
// After every round each rank summarizes its own samples (io::SideSummary), rank 0 gathers the
// round and appends one row per pair to the file (raw samples only of the pairs --keep-samples
// keeps), so a killed run leaves every completed round on disk, and `--resume` continues from the
// first missing round. --repeat K runs the whole schedule K times (odd repeats in reverse round
// order), so a pair's K measurements are spread over the run; each is a row, and the dense views
// written at the end for small fabrics hold each pair's best repeat.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <thread>
#include <unordered_map>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/stats.hpp"
#include "core/units.hpp"
#include "io/schema.hpp"
#include "suites/benchmark.hpp"
#include "suites/pairs_round.hpp"
#include "suites/sweep.hpp"
#include "topology/plan_file.hpp"
#include "topology/schedule.hpp"

namespace fabscope::suites {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kTagPayload = 401;  // raw samples / error text to rank 0 (phase 2 of a round; links use 1000+)

// How long a rank waits for the others between pairs (transport::Options::round_timeout_s): every
// pair ends within its own deadline, so only a rank the harness cannot reach (its link down for
// good, when MPI shares the fabric; a stuck process) is later. Rank 0 gives up first and says why
// (main() then ends the job); the others wait 15 s more.
double round_limit_s(const Context& ctx, const transport::Options& o) {
  const double limit = o.round_timeout_s >= 0 ? o.round_timeout_s
                       : o.pair_timeout_s > 0 ? o.pair_timeout_s + 2 * o.timeout_s + 30
                                              : 0;
  return limit > 0 && ctx.comm.rank() != 0 ? limit + 15 : limit;
}

// What rank 0 prints at the end, accumulated round by round in O(1) memory: latency and bandwidth
// p50 of each pair into log-spaced buckets (1.1 % wide), so the medians across pairs are within
// 1.1 %; minimum, maximum and the lowest-bandwidth pair exactly.
class RunSummary {
 public:
  void add(const io::PairRecord& r) {
    ++pairs_;
    if (r.status != static_cast<std::int8_t>(io::schema::PairStatus::kOk)) {
      ++failed_;
      return;
    }
    lat_.add(r.fwd->lat_p50);
    for (const double b : {r.fwd->bw_p50, r.rev->bw_p50}) {
      bw_.add(b);
      if (b < worst_bw_) {
        worst_bw_ = b;
        worst_a_ = r.a;
        worst_b_ = r.b;
      }
    }
  }
  [[nodiscard]] std::uint64_t pairs() const { return pairs_; }
  [[nodiscard]] std::uint64_t failed() const { return failed_; }
  void print(const Context& ctx) const {
    if (failed_ > 0)
      fmt::print(ctx.table,
                 "# pairs: {} pair(s) FAILED or timed out (see the file's errors/ datasets)\n",
                 failed_);
    fmt::print(
        ctx.table,
        "# pairs summary: {} pair measurements; latency p50 across pairs min {:.2f} / median "
        "{:.2f} / max {:.2f} us; "
        "bandwidth p50 min {:.2f} / median {:.2f} / max {:.2f} Gb/s\n",
        pairs_, lat_.min / 1e3, lat_.median() / 1e3, lat_.max / 1e3, bw_.min, bw_.median(),
        bw_.max);
    if (worst_a_ >= 0) {
      fmt::print(ctx.table, "# lowest bandwidth: {} <-> {} ({:.2f} Gb/s)\n",
                 ctx.endpoint(worst_a_), ctx.endpoint(worst_b_), worst_bw_);
    }
  }

 private:
  struct LogHistogram {
    static constexpr int kPerOctave = 64, kLow = -40, kHigh = 64;  // 2^-40 .. 2^64
    std::vector<std::uint64_t> counts =
        std::vector<std::uint64_t>(static_cast<std::size_t>((kHigh - kLow) * kPerOctave), 0);
    std::uint64_t n = 0;
    double min = kNaN, max = kNaN;
    void add(double x) {
      if (!(x > 0) || !std::isfinite(x)) return;
      const int b = std::clamp(static_cast<int>(std::floor((std::log2(x) - kLow) * kPerOctave)), 0,
                               static_cast<int>(counts.size()) - 1);
      ++counts[static_cast<std::size_t>(b)];
      min = n == 0 ? x : std::min(min, x);
      max = n == 0 ? x : std::max(max, x);
      ++n;
    }
    [[nodiscard]] double median() const {
      if (n == 0) return kNaN;
      std::uint64_t seen = 0;
      for (std::size_t b = 0; b < counts.size(); ++b) {
        seen += counts[b];
        if (2 * seen >= n) {
          const double mid = std::exp2((static_cast<double>(b) + 0.5) / kPerOctave + kLow);
          return std::clamp(mid, min, max);
        }
      }
      return max;
    }
  };
  std::uint64_t pairs_ = 0, failed_ = 0;
  LogHistogram lat_, bw_;
  double worst_bw_ = std::numeric_limits<double>::infinity();
  int worst_a_ = -1, worst_b_ = -1;
};

// Partners of every rank in one round, from the plan on rank 0, broadcast to all ("" = circle).
std::vector<std::int64_t> plan_round(const Context& ctx, const topology::Plan* plan,
                                     std::int64_t round, int n) {
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
    const auto a = std::stoll(text.substr(pos, comma - pos)),
               b = std::stoll(text.substr(comma + 1, semi - comma - 1));
    partner[static_cast<std::size_t>(a)] = b;
    partner[static_cast<std::size_t>(b)] = a;
    pos = semi + 1;
  }
  return partner;
}

// Rank 0's progress line after each round: on a terminal one line rewritten in place, otherwise
// (logs, CI) one line per round. OpenMPI hands rank 0 a pseudo-terminal as stdout even when
// mpirun's own output goes to a file, but forwards stderr through a pipe, so both must be
// terminals; FABSCOPE_PROGRESS=lines|tty overrides the guess.
bool rewrite_in_place(std::FILE* out) {
  if (const char* mode = std::getenv("FABSCOPE_PROGRESS")) return std::string_view(mode) == "tty";
  return isatty(fileno(out)) == 1 && isatty(STDERR_FILENO) == 1;
}

// Rank 0's progress line after each round: on a terminal one line rewritten in place, otherwise
// (logs, CI) one line per round.
class Progress {
 public:
  Progress(const Context& ctx, std::int64_t rounds, int repeats, std::int64_t first_round)
      : ctx_(ctx),
        rounds_(rounds),
        repeats_(repeats),
        first_(first_round),
        start_ns_(core::now_ns()),
        tty_(rewrite_in_place(ctx.table)) {}

  void round_done(std::int64_t round, std::size_t measured, std::size_t failed) {
    if (ctx_.quiet) return;
    const double elapsed = static_cast<double>(core::now_ns() - start_ns_) / 1e9;
    const double per_round = elapsed / static_cast<double>(round + 1 - first_);
    const double eta = per_round * static_cast<double>(rounds_ - round - 1);
    const std::int64_t per_repeat = rounds_ / repeats_;
    const std::string rep =
        repeats_ > 1 ? fmt::format(" (repeat {} of {})", round / per_repeat + 1, repeats_) : "";
    const std::string line = fmt::format(
        "pairs: round {} of {}{} done, {} pairs measured, {} failed, elapsed {}, ETA {}", round + 1,
        rounds_, rep, measured, failed, core::format_duration(elapsed), core::format_duration(eta));
    if (tty_) {
      fmt::print(ctx_.table, "\r{}\x1b[K{}", line, round + 1 == rounds_ ? "\n" : "");
    } else {
      fmt::print(ctx_.table, "{}\n", line);
    }
    std::fflush(ctx_.table);
  }

 private:
  const Context& ctx_;
  std::int64_t rounds_;
  int repeats_;
  std::int64_t first_;
  std::int64_t start_ns_;
  bool tty_;
};

// Round r of the whole run -> the schedule's round and the repeat it belongs to.
struct RoundOf {
  std::int64_t base, repeat;
};
RoundOf round_of(std::int64_t r, std::int64_t base_rounds) {
  const std::int64_t repeat = r / base_rounds, i = r % base_rounds;
  return {repeat % 2 == 0 ? i : base_rounds - 1 - i, repeat};
}

}  // namespace

ResumePoint find_resume_point(const Context& ctx, const PairsParams& p, const std::string& path) {
  const io::ResultsReader in(path);
  std::string run;
  for (const auto& r : in.runs()) {
    if (in.attr_string(r, std::string(io::schema::attr::kBenchmark)) == "pairs" &&
        in.attr_int(r, std::string(io::schema::attr::kComplete)) == 0) {
      run = r;
    }
  }
  if (run.empty()) {
    throw core::UsageError(
        fmt::format("--resume {}: no interrupted pairs run in the file (every pairs run is "
                    "complete); nothing to resume",
                    path));
  }
  const std::int64_t n_file = in.attr_int("/", std::string(io::schema::attr::kNRanks));
  if (n_file != ctx.comm.size()) {
    throw core::UsageError(
        fmt::format("--resume {}: the file was measured with {} ranks, this job has {}; launch "
                    "{} ranks on the same hosts",
                    path, n_file, ctx.comm.size(), n_file));
  }
  const auto names = in.strings(std::string(io::schema::kHosts) + "/hostname");
  for (std::size_t r = 0; r < names.size() && r < ctx.hostnames.size(); ++r) {
    if (names[r] != ctx.hostnames[r]) {
      throw core::UsageError(
          fmt::format("--resume {}: rank {} ran on {} in the file but runs on {} now; launch the "
                      "ranks in the same order on the same hosts",
                      path, r, names[r], ctx.hostnames[r]));
    }
  }
  if (!in.exists(run + "/pairs/pair")) {
    throw core::UsageError(
        fmt::format("--resume {}: {} was written by an older fabscope (results schema version 1, "
                    "no pairs/ row table); rerun it instead",
                    path, run));
  }
  const std::unique_ptr<topology::Plan> plan = make_pairs_plan(ctx, p);
  const std::int64_t base = plan ? plan->rounds() : topology::circle_rounds(ctx.comm.size());
  const std::int64_t total = in.attr_int(run, std::string(io::schema::attr::kRoundsTotal));
  if (total != base * p.repeat) {
    throw core::UsageError(
        fmt::format("--resume {}: {} has {} rounds but its command line now plans {}; the topology "
                    "or plan inputs changed since the run",
                    path, run, total, base * p.repeat));
  }
  return {run, in.attr_int(run, std::string(io::schema::attr::kRoundsDone))};
}

std::unique_ptr<topology::Plan> make_pairs_plan(const Context& ctx, const PairsParams& p) {
  if (p.plan_file.empty() && p.plan == "all-pairs") return nullptr;
  if (ctx.endpoints == nullptr) {
    throw core::UsageError(
        fmt::format("pairs {}: needs the fabric's topology and every rank's place in it; pass "
                    "--topology, --ibnetdiscover, --ibnd-cache, --live, --hostname-pattern "
                    "or --generate (with --rank-as-host on one machine)",
                    p.plan_file.empty() ? "--plan " + p.plan : "--plan-file " + p.plan_file));
  }
  if (!p.plan_file.empty())
    return topology::plan_from_file(topology::load_plan_file(p.plan_file), *ctx.endpoints);
  return topology::make_plan(p.plan, *ctx.endpoints, p.plan_options);
}

namespace {

void run_pairs(Context& ctx, const PairsParams& p) {
  const int n = ctx.comm.size();
  const int me = ctx.comm.rank();
  const std::unique_ptr<topology::Plan> plan = me == 0 ? make_pairs_plan(ctx, p) : nullptr;
  const bool circle = ctx.comm.broadcast_string(me == 0 && plan ? "plan" : "circle", 0) == "circle";
  const std::int64_t base_rounds =
      circle
          ? topology::circle_rounds(n)
          : std::stoll(ctx.comm.broadcast_string(me == 0 ? std::to_string(plan->rounds()) : "", 0));
  const std::int64_t rounds = base_rounds * p.repeat;
  const std::int64_t first_round = std::stoll(ctx.comm.broadcast_string(
      me == 0 && ctx.resume != nullptr ? std::to_string(ctx.resume->rounds_done) : "0", 0));
  const std::string schedule = circle ? "circle" : (p.plan_file.empty() ? p.plan : "plan-file");
  const int bw_warmup = std::max(1, p.warmup / 10);
  const RoundLayout layout{static_cast<std::size_t>(p.lat_iters),
                           static_cast<std::size_t>(p.bw_iters)};
  const io::KeepSamples keep =
      io::parse_keep_samples(p.keep_samples).value_or(io::KeepSamples::kSuspect);
  std::string run;
  if (ctx.resume != nullptr) {
    run = ctx.resume->run;
    if (ctx.out != nullptr) {
      ctx.out->resume_pairs(run);
      fmt::print(
          ctx.table,
          "# fabscope pairs --resume: {} of {} rounds already in {}; measuring rounds {}..{}\n",
          first_round, rounds, ctx.out->path(), first_round + 1, rounds);
    }
  } else {
    run = begin_run(
        ctx, "pairs", p.common, p.lat_iters, p.warmup,
        {{"lat_size_bytes", static_cast<std::int64_t>(p.lat_size)},
         {"bw_size_bytes", static_cast<std::int64_t>(p.bw_size)},
         {"lat_iters", p.lat_iters},
         {"bw_windows", p.bw_iters},
         {"window", transport::kWindow},
         {"repeats", p.repeat},
         {"pair_timeout_ms", static_cast<std::int64_t>(p.common.options.pair_timeout_s * 1e3)},
         {"round_timeout_ms",
          static_cast<std::int64_t>(round_limit_s(ctx, p.common.options) * 1e3)}});
  }
  if (ctx.out != nullptr && ctx.resume == nullptr) {
    ctx.out->init_pairs(run, {n, p.lat_iters, p.bw_iters, rounds, keep, n / 2});
    ctx.out->set_attr(run, "schedule", schedule);
    if (p.harness_only) ctx.out->set_attr(run, "harness_only", std::int64_t{1});
    fmt::print(
        ctx.table,
        "# fabscope pairs: {} ranks, {} rounds of up to {} pairs at once ({}{}), transport {}; "
        "latency {} B x {}, bandwidth {} x {} windows of {} each way\n",
        n, rounds, n / 2, plan ? plan->description() : "circle schedule, every pair once",
        p.repeat > 1 ? fmt::format(", {} repeats", p.repeat) : "", transport::kind_name(p.common.transport), p.lat_size,
        p.lat_iters, core::format_size(p.bw_size), p.bw_iters, transport::kWindow);
    if (plan) {
      if (const auto c = topology::new_rack_coverage(*plan, *ctx.endpoints))
        fmt::print(ctx.table, "# {}\n", topology::format_new_rack_coverage(*c));
    }
    std::fflush(ctx.table);
  }
  CounterProbe counters(ctx, p.common);
  std::vector<double> mine(layout.size());
  std::vector<double> heads(me == 0 ? layout.samples() * static_cast<std::size_t>(n) : 0);
  RunSummary summary;
  RoundResult result;
  std::vector<double> scratch;
  Progress progress(ctx, rounds, p.repeat, first_round);
  const std::size_t max_size = std::max(p.lat_size, p.bw_size);
  const double limit = round_limit_s(ctx, p.common.options);
  const std::string path = ctx.out != nullptr ? ctx.out->path() : std::string("the results file");
  // Between pairs every rank meets the others (barrier, gather); one that cannot be reached would
  // hang them all: give up after `limit`, keeping the completed rounds on disk.
  auto cut_off = [&](std::int64_t round, const core::Timeout& e) {
    const std::string where =
        round < rounds ? fmt::format("round {} of {}", round + 1, rounds) : "after the last round";
    const std::string held = round == 0   ? "no round was completed"
                             : round == 1 ? fmt::format("round 1 is in {}", path)
                                          : fmt::format("rounds 1-{} are in {}", round, path);
    const std::string kept = round < rounds
                                 ? fmt::format(
                                       "{}: once every rank reaches the others again, finish the "
                                       "run with `fabscope pairs --resume {}`",
                                       held, path)
                                 : fmt::format("every round is in {}", path);
    return core::Timeout(
        fmt::format("pairs {}: {} (--round-timeout {:g} s): a rank is stuck or cut off from the "
                    "others; {}",
                    where, e.what(), limit, kept));
  };
  std::vector<double> harness_ms;  // rank 0, FABSCOPE_HARNESS_ONLY: each round's wall time
  for (std::int64_t round = first_round; round < rounds; ++round) {
    const std::int64_t round_t0 = core::now_ns();
    const RoundOf at = round_of(round, base_rounds);
    // Rounds do not overlap: a fast pair must not start the next round while a slow pair of this
    // round is still measuring (its peer would be waiting, and the round's pairs would no longer
    // load the fabric together).
    try {
      ctx.comm.quiet_barrier(limit);
    } catch (const core::Timeout& e) {
      throw cut_off(round, e);
    }
    const std::int64_t partner =
        circle ? topology::circle_partner(n, at.base, me)
               : plan_round(ctx, plan.get(), at.base, n)[static_cast<std::size_t>(me)];
    std::fill(mine.begin(), mine.end(), kNaN);
    mine[0] = static_cast<double>(partner);
    std::string error;
    mine[2] = static_cast<double>(io::schema::PairStatus::kOk);
    if (partner >= 0 && me == p.test_stall_rank && round == p.test_stall_round) {
      // Test hook: be the peer that stops answering; the partner's deadline must record it.
      std::this_thread::sleep_for(std::chrono::duration<double>(
          p.test_stall_s > 0 ? p.test_stall_s : p.common.options.pair_timeout_s + 1.0));
      mine[2] = static_cast<double>(io::schema::PairStatus::kFailed);
      error = fmt::format("rank {}: test hook FABSCOPE_TEST_STALL kept this rank silent", me);
    } else if (partner >= 0 && p.harness_only) {
      // Instrument: fixed samples instead of a measurement (1 us + up to 0.5 us in steps by
      // sample, 100 Gb/s windows), the same for every pair: only the harness is timed.
      std::span<double> lat(mine.data() + layout.samples(), layout.lat);
      std::span<double> bw(mine.data() + layout.samples() + layout.lat, layout.bw);
      for (std::size_t i = 0; i < lat.size(); ++i) lat[i] = 1000.0 + static_cast<double>(i % 11) * 50.0;
      std::fill(bw.begin(), bw.end(), 100.0);
      mine[1] = 0;
    } else if (partner >= 0) {
      const std::int64_t t0 = core::now_ns();
      const bool initiator = me < partner;
      std::span<double> lat(mine.data() + layout.samples(), layout.lat);
      std::span<double> bw(mine.data() + layout.samples() + layout.lat, layout.bw);
      // A failing pair (completion error, silent peer) is a finding: record it, keep going.
      try {
        transport::Options options = p.common.options;
        options.channel = static_cast<int>(round);
        auto link = ctx.transport->connect(p.common.transport, static_cast<int>(partner),
                                       max_size, options);
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
        mine[2] = static_cast<double>(timed_out ? io::schema::PairStatus::kTimeout
                                                : io::schema::PairStatus::kFailed);
        std::fill(lat.begin(), lat.end(), kNaN);
        std::fill(bw.begin(), bw.end(), kNaN);
        error = fmt::format("{} with {}: {}", ctx.endpoint(me), ctx.endpoint(partner), e.what());
        core::log::error("pairs round {}: {}", round + 1, error);
      }
      mine[1] = static_cast<double>(core::now_ns() - t0) / 1e9;
    }
    // Each rank summarizes its own side, so rank 0's work per round stays O(pairs).
    summarize_own(mine, layout, scratch);
    mine[RoundLayout::kErrorBytes] = static_cast<double>(error.size());
    try {
      // Phase 1: every rank's head; rank 0 builds the records and decides whose raw samples
      // (kept pairs) and error texts (failed pairs) it needs. Phase 2: only those ranks send them.
      ctx.comm.gather(std::span<const double>(mine.data(), layout.samples()), heads, limit);
      std::vector<int> requests;
      if (me == 0) {
        assemble_heads(heads, layout.samples(), layout, n, round, at.repeat, keep, result);
        requests = payload_requests(result, heads, layout.samples());
      }
      // What each rank must send (0: nothing), one int per rank.
      std::vector<int> want;
      if (me == 0) {
        want.assign(static_cast<std::size_t>(n), 0);
        for (std::size_t k = 0; k + 1 < requests.size(); k += 2)
          want[static_cast<std::size_t>(requests[k])] = requests[k + 1];
      }
      const int what = ctx.comm.scatter_int(want, 0, limit);
      if (me != 0) {
        if (what != 0) {
          const auto payload = make_payload(what, mine, layout, error);
          ctx.comm.send_quietly(payload.data(), payload.size(), 0, kTagPayload);
        }
        continue;
      }
      std::vector<int> from;
      std::vector<std::vector<char>> payloads(requests.size() / 2);
      std::vector<std::vector<char>*> remote;
      for (std::size_t k = 0; k + 1 < requests.size(); k += 2) {
        const int rank = requests[k], asked = requests[k + 1];
        auto& buf = payloads[k / 2];
        if (rank == 0) {
          buf = make_payload(asked, mine, layout, error);
          continue;
        }
        const auto err_bytes = static_cast<std::size_t>(
            heads[static_cast<std::size_t>(rank) * layout.samples() + RoundLayout::kErrorBytes]);
        buf.resize(payload_bytes(asked, layout, err_bytes));
        from.push_back(rank);
        remote.push_back(&buf);
      }
      if (!from.empty()) {
        std::vector<std::vector<char>> got(from.size());
        for (std::size_t i = 0; i < from.size(); ++i) got[i].resize(remote[i]->size());
        ctx.comm.recv_each_quietly(from, got, kTagPayload, limit);
        for (std::size_t i = 0; i < from.size(); ++i) *remote[i] = std::move(got[i]);
      }
      apply_payloads(result, requests, payloads, layout);
    } catch (const core::Timeout& e) {
      throw cut_off(round, e);
    }
    for (const auto& r : result.records) summary.add(r);
    ctx.out->append_pairs(run, result.records, {round, round + 1, result.measure_seconds});
    progress.round_done(round, summary.pairs(), summary.failed());
    if (p.harness_only) harness_ms.push_back(static_cast<double>(core::now_ns() - round_t0) / 1e6);
  }
  if (p.harness_only && !harness_ms.empty()) {
    // One line for tests/perf/harness_bench.sh: rank 0's wall time per round, barrier to write.
    std::sort(harness_ms.begin(), harness_ms.end());
    const std::size_t k = harness_ms.size();
    const double median = k % 2 ? harness_ms[k / 2] : 0.5 * (harness_ms[k / 2 - 1] + harness_ms[k / 2]);
    fmt::print(ctx.table, "# harness-only: ranks={} rounds={} ms_per_round_median={:.4f} min={:.4f} max={:.4f}\n", n,
               k, median, harness_ms.front(), harness_ms.back());
  }
  try {
    ctx.comm.quiet_barrier(limit);
  } catch (const core::Timeout& e) {
    throw cut_off(rounds, e);
  }
  counters.finish(run);
  if (ctx.out == nullptr) return;
  summary.print(ctx);
  ctx.out->finish_pairs(run);
  ctx.out->end_run(run);
}

class Pairs : public BenchmarkWith<PairsParams> {
 public:
  void declare(ParamSet& set) override {
    set.text("plan", p.plan, "all-pairs", "all-pairs, hop-class, new-rack, rail-aligned or budget")
        .choices(topology::plan_names(), "plan");
    set.text("plan_file", p.plan_file, "", "run the rounds of a plan file (topology/PLANS.md)");
    declare_plan_options(set, p.plan_options);
    set.size("lat_size", p.lat_size, "8", "latency message size").at_least(1);
    set.size("bw_size", p.bw_size, "1M", "bandwidth message size").at_least(1);
    set.integer("iters", p.lat_iters, 1000, "latency ping-pongs per pair").at_least(1);
    set.integer("bw_iters", p.bw_iters, 20, "bandwidth windows per direction per pair").at_least(1);
    set.integer("warmup", p.warmup, 10, "untimed ping-pongs per pair").at_least(0);
    set.text("keep_samples", p.keep_samples, "suspect",
             "raw samples kept in pair_samples: all, suspect (failed, stalled or outlier pairs; "
             "every pair keeps its compact row) or none")
        .choices({"all", "suspect", "none"}, "keep-samples value");
    set.integer("repeat", p.repeat, 1,
                "measure every pair K times, repeats interleaved (the whole schedule K times)")
        .at_least(1);
    transport::Options& o = p.common.options;
    o.pair_timeout_s = 0;
    set.duration(
        "pair_timeout", o.pair_timeout_s, "",
        "deadline for one pair (connect, latency, both bandwidth directions), e.g. 10s; a pair "
        "that misses it "
        "is recorded as timed out and the run goes on (default: none, --timeout per operation)");
    o.round_timeout_s = -1;  // derived at run time (round_limit_s)
    set.duration("round_timeout", o.round_timeout_s, "",
                 "how long a rank waits for the others between pairs before it ends the job, "
                 "keeping the rounds "
                 "measured (a rank cut off from the rest would otherwise hang it; finish with "
                 "--resume); 0 = forever "
                 "(default: pair timeout + 2 x timeout + 30 s with --pair-timeout, else forever)");
    set.text("resume", p.resume, "",
             "finish the pairs run of an interrupted results file (same ranks; its command "
             "line is reused)")
        .command_line_only();
    // Test hook (FABSCOPE_TEST_STALL=RANK[,ROUND[,SECONDS]], tests/mpi): that rank goes silent in
    // that round, for SECONDS (default: the pair timeout + 1 s).
    set.custom(
           "test_stall", "", "",
           [this](const std::string& text, const std::string& where) {
             const auto parts = split_list(text);
             try {
               if (!parts.empty() && parts.size() <= 3) {
                 p.test_stall_rank = std::stoi(parts[0]);
                 p.test_stall_round = parts.size() >= 2 ? std::stoi(parts[1]) : 0;
                 p.test_stall_s = parts.size() == 3 ? std::stod(parts[2]) : 0;
                 return;
               }
             } catch (const std::exception&) {
             }
             throw core::UsageError(fmt::format("{} '{}': give RANK,ROUND[,SECONDS]", where, text));
           },
           [this] { return fmt::format("{},{}", p.test_stall_rank, p.test_stall_round); })
        .hide();
    // Harness-only instrument (FABSCOPE_HARNESS_ONLY=1, tests/perf/harness_bench.sh).
    set.custom(
           "harness_only", "", "",
           [this](const std::string& text, const std::string& where) {
             if (text != "0" && text != "1")
               throw core::UsageError(fmt::format("{} '{}': give 1 (or 0)", where, text));
             p.harness_only = text == "1";
           },
           [this] { return std::string(p.harness_only ? "1" : "0"); })
        .hide();
  }
  void validate(const Where& where) const override {
    const auto& o = p.common.options;
    if (o.round_timeout_s > 0 && o.pair_timeout_s > 0 && o.round_timeout_s <= o.pair_timeout_s) {
      where.fail(fmt::format(
          "{} {:g}s must be longer than {} {:g}s (a round waits for its slowest pair); raise it or "
          "leave it out for the default",
          where.name("round_timeout"), o.round_timeout_s, where.name("pair_timeout"),
          o.pair_timeout_s));
    }
  }
  void preflight(const runtime::Comm& comm, const Context& ctx) const override {
    if (comm.rank() == 0) (void)make_pairs_plan(ctx, p);
  }
  void run(Context& ctx) const override { run_pairs(ctx, p); }
};

}  // namespace

void declare_plan_options(ParamSet& set, topology::PlanOptions& o) {
  set.integer("k", o.k, 2, "hop-class plan: partners per host per hop class").at_least(1);
  set.custom(
      "budget", "", "budget plan: the time the plan may take (e.g. 30m)",
      [&o](const std::string& text, const std::string& where) {
        o.budget_s = core::parse_duration_s(text, where);
      },
      [&o] { return o.budget_s ? fmt::format("{:g}", *o.budget_s) : std::string(); });
  set.duration("pair_time", o.pair_time_s, "1s",
               "time one round of pairs takes, for plan estimates (e.g. 2s)")
      .check = [&o](const Where& where) {
    if (!(o.pair_time_s > 0))
      where.fail(fmt::format("{} must be positive (e.g. 2s)", where.name("pair_time")));
  };
  set.list("new", o.new_hosts, "", "new-rack plan: comma list of new racks or hosts");
  set.integer("refs", o.new_rack_samples, 0,
              "new-rack plan: reference partners per new host (rounds against existing hosts, "
              "every pod in turn); 0 = enough for every pod and --uplink-coverage")
      .at_least(0);
  set.number("uplink_coverage", o.new_uplink_coverage, 0.95,
             "new-rack plan, automatic --refs: fraction of the new leaves' uplinks to exercise")
      .check = [&o](const Where& where) {
    if (!(o.new_uplink_coverage > 0 && o.new_uplink_coverage <= 1))
      where.fail(fmt::format("{} must be in (0, 1] (e.g. 0.95)", where.name("uplink_coverage")));
  };
  set.seed("seed", o.seed, 1, "seed of the sampled plans");
}

void register_pairs() {
  register_benchmark({"pairs", "all-pairs latency and bandwidth matrix over every rank", {}, [] {
                        return std::make_unique<Pairs>();
                      }});
}

}  // namespace fabscope::suites
