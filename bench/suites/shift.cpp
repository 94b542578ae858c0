// shift: how much of the line rate survives when the whole fabric carries traffic at once
// (mpiGraph). In step s every rank i streams to partner_to[s, i] while it receives from the rank
// that streams to it, every rank at once (transport/multi.hpp):
//   shift        step s: i -> (i + s + 1) mod N; N - 1 steps cover every ordered pair once.
//   permutation  a fresh seeded random derangement per step (--steps, default N - 1).
// One sample = one window of 64 messages of `size` bytes on one flow, from posting the window to
// its acknowledgement (mpi) or last completion (verbs):
//   flow_samples[s, i, k]   64 * size * 8 / window_ns                                    Gb/s
//   flow_gbps[s, i]         p50 of rank i's samples in step s                            Gb/s
//   step_aggregate_gbps[s]  sum over ranks of each flow's mean rate: its bits / its       Gb/s
//                           windows' total time (the harmonic mean of its samples). Not the
//                           sum of medians: flows that share a link take turns, and their
//                           medians add up to more than the link carries.
//   step_effective_pct[s]   100 * step_aggregate_gbps / sum of the senders' link rates   %
//   bw_gbps[i, j]           p50 of flow_gbps over the steps in which i sent to j         Gb/s
//   step_seconds[s]         the slowest rank's time from the step's start to its end     s
// Steps never overlap (a quiet barrier starts each one, after every rank has connected its flows).
// Rank 0 writes each step's rows as soon as the step completes, then steps_done, so a killed run
// keeps every completed step. A flow that fails (completion error, silent peer) is a finding:
// its samples stay NaN, its error goes to errors/*, the run goes on.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/stats.hpp"
#include "core/units.hpp"
#include "io/rows.hpp"
#include "io/schema.hpp"
#include "suites/benchmark.hpp"
#include "suites/load.hpp"
#include "suites/sweep.hpp"
#include "transport/multi.hpp"

namespace fabscope::suites {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Flow status in the gathered record and errors/status: the pairs codes (io::schema::PairStatus).
constexpr auto kOk = static_cast<double>(io::schema::PairStatus::kOk);
constexpr auto kFailed = static_cast<double>(io::schema::PairStatus::kFailed);
constexpr auto kTimeout = static_cast<double>(io::schema::PairStatus::kTimeout);

// A flow's mean rate over its windows: bits / total time, i.e. the harmonic mean of the window
// rates (each window carries the same bits). NaN when a sample is missing.
double mean_rate(std::span<const double> window_gbps) {
  double inverse = 0;
  for (const double x : window_gbps) inverse += 1.0 / x;
  return static_cast<double>(window_gbps.size()) / inverse;
}

// Gathered from every rank after each step: [seconds, status, samples...].
constexpr std::size_t kHead = 2;

struct FlowError {
  std::int64_t step, rank, peer, status;
  std::string message;
};

// The senders' link rates, Gb/s, by rank: --link-rate for all, else each rank's port rate.
std::vector<double> link_rates(const Context& ctx, const ShiftParams& p) {
  const double mine =
      p.link_rate_gbps > 0
          ? p.link_rate_gbps
          : ctx.transport->port_rate_gbps(p.common.transport, p.common.options);
  std::vector<double> all(ctx.comm.rank() == 0 ? static_cast<std::size_t>(ctx.comm.size()) : 0);
  ctx.comm.gather(std::span<const double>(&mine, 1), all);
  return all;
}

void run_shift(Context& ctx, const ShiftParams& p) {
  const int n = ctx.comm.size();
  const int me = ctx.comm.rank();
  const bool permutation = p.pattern == "permutation";
  const int steps = permutation && p.steps > 0 ? p.steps : n - 1;
  const auto iters = static_cast<std::size_t>(p.iters);
  const auto un = static_cast<std::size_t>(n);
  const auto us = static_cast<std::size_t>(steps);
  // Every rank derives the same table from the seed: nothing to broadcast.
  std::vector<std::vector<int>> partner_to;
  if (permutation) {
    partner_to = load::permutation_partners(n, steps, p.seed);
  } else {
    for (int s = 0; s < steps; ++s) partner_to.push_back(load::shift_partners(n, s));
  }
  const std::vector<double> rates = link_rates(ctx, p);
  double rate_sum = 0;
  for (const double r : rates) rate_sum += r;  // NaN when any rank's rate is unknown
  const double link_rate = me == 0 ? rate_sum / n : kNaN;

  const std::string run = begin_run(ctx, "shift", p.common, p.iters, p.warmup,
                                    {{"size_bytes", static_cast<std::int64_t>(p.size)},
                                     {"window", transport::kWindow},
                                     {"seed", static_cast<std::int64_t>(p.seed)},
                                     {"steps_total", steps},
                                     {"steps_done", 0}});
  if (ctx.out != nullptr) {
    ctx.out->set_attr(run, "pattern", p.pattern);
    io::set_attr_double(*ctx.out, run, "link_rate_gbps", link_rate);
    std::vector<std::int64_t> table;
    for (const auto& row : partner_to) table.insert(table.end(), row.begin(), row.end());
    ctx.out->write_ints(run + "/partner_to", table, {us, un}, "-");
    const std::vector<double> nan_sn(us * un, kNaN), nan_s(us, kNaN), nan_nn(un * un, kNaN);
    ctx.out->write_doubles(run + "/flow_gbps", nan_sn, {us, un}, "Gb/s");
    ctx.out->write_doubles(run + "/bw_gbps", nan_nn, {un, un}, "Gb/s");
    ctx.out->write_doubles(run + "/step_aggregate_gbps", nan_s, {us}, "Gb/s");
    ctx.out->write_doubles(run + "/step_effective_pct", nan_s, {us}, "%");
    ctx.out->write_doubles(run + "/step_seconds", nan_s, {us}, "s");
    ctx.out->write_doubles(run + "/flow_samples", std::vector<double>(us * un * iters, kNaN),
                           {us, un, iters}, "Gb/s",
                           /*compress=*/true);
    fmt::print(
        ctx.table,
        "# fabscope shift: {} ranks, {} steps ({}), every rank streams {} windows of {} x {} at "
        "once "
        "(+{} warm-up), transport {}; link rate {}\n",
        n, steps,
        permutation ? fmt::format("seeded derangements, seed {}", p.seed) : "rank + d, d = 1..N-1",
        p.iters, transport::kWindow, core::format_size(p.size), p.warmup, transport::kind_name(p.common.transport),
        std::isnan(link_rate) ? std::string("unknown (pass --link-rate)")
                              : fmt::format("{:g} Gb/s", link_rate));
    std::fflush(ctx.table);
  }

  const double window_bits = transport::kWindow * static_cast<double>(p.size) * 8.0;
  const std::size_t rec_size = kHead + iters;
  std::vector<double> mine(rec_size), all(me == 0 ? rec_size * un : 0), window_ns(iters);
  std::vector<FlowError> errors;
  std::vector<std::vector<double>> pair_flows(me == 0 ? un * un
                                                      : 0);  // rank 0: flow_gbps per (i, j)
  std::vector<double> aggregates;
  CounterProbe counters(ctx, p.common, &transport::Transport::load_counters);
  const std::int64_t t_start = core::now_ns();
  for (int s = 0; s < steps; ++s) {
    const auto& to = partner_to[static_cast<std::size_t>(s)];
    const int dest = to[static_cast<std::size_t>(me)];
    const int src = load::senders_to(to)[static_cast<std::size_t>(me)];
    std::fill(mine.begin(), mine.end(), kNaN);
    std::fill(window_ns.begin(), window_ns.end(), kNaN);
    mine[1] = kOk;
    std::string error;
    std::int64_t t0 = 0;
    // Steps never overlap: a rank whose step ended early (a failed flow) must not start connecting
    // while its next peer still waits out --timeout in this one.
    ctx.comm.quiet_barrier();
    try {
      auto flows = ctx.transport->connect_flows(p.common.transport, {{dest}, {src}, p.size},
                                            p.common.options);
      ctx.comm.quiet_barrier();  // every flow of the step starts together
      t0 = core::now_ns();
      if (me == p.test_stall_rank && s == p.test_stall_step) {
        std::this_thread::sleep_for(std::chrono::duration<double>(p.common.options.timeout_s + 1));
        throw core::Error(core::ExitCode::kFailure,
                          "test hook (--test-stall): this rank stayed silent");
      }
      flows->run(p.warmup, p.iters, window_ns);
      mine[0] = static_cast<double>(core::now_ns() - t0) / 1e9;
    } catch (const core::Error& e) {
      if (t0 != 0) mine[0] = static_cast<double>(core::now_ns() - t0) / 1e9;
      // This rank's own flow is the outgoing one: when all its windows completed and the error came
      // from an incoming flow, the flow is fine (the incoming flow's sender records its failure).
      const bool sent_all = std::all_of(window_ns.begin(), window_ns.end(),
                                        [](double w) { return std::isfinite(w); });
      if (!sent_all) {
        mine[1] = dynamic_cast<const core::Timeout*>(&e) != nullptr ? kTimeout : kFailed;
        error = e.what();
      }
      core::log::error("shift step {}: rank {} (sending to rank {}, receiving from rank {}): {}",
                       s + 1, me, dest, src, e.what());
      if (t0 == 0) ctx.comm.quiet_barrier();  // failed while connecting: still meet the others
    }
    if (mine[1] == kOk) {
      for (std::size_t k = 0; k < iters; ++k) mine[kHead + k] = window_bits / window_ns[k];
    }
    ctx.comm.gather(mine, all);
    const auto messages = ctx.comm.gather_strings(error);
    if (me != 0) continue;

    std::vector<double> flow(un), samples(un * iters);
    std::vector<std::uint64_t> cells;
    std::vector<double> cell_values;
    double aggregate = 0, step_s = 0;
    for (std::size_t r = 0; r < un; ++r) {
      const double* rec = all.data() + r * rec_size;
      std::copy(rec + kHead, rec + rec_size,
                samples.begin() + static_cast<std::ptrdiff_t>(r * iters));
      flow[r] = core::summarize(std::span<const double>(rec + kHead, iters)).p50;
      if (!std::isnan(rec[0])) step_s = std::max(step_s, rec[0]);
      if (!std::isnan(flow[r])) aggregate += mean_rate(std::span<const double>(rec + kHead, iters));
      const auto j = static_cast<std::size_t>(to[r]);
      if (rec[1] != kOk) {
        errors.push_back({s, static_cast<std::int64_t>(r), to[r], static_cast<std::int64_t>(rec[1]),
                          messages[r]});
      }
      auto& history = pair_flows[r * un + j];
      history.push_back(flow[r]);
      cells.insert(cells.end(), {r, j});
      cell_values.push_back(core::summarize(history).p50);
    }
    const double effective = 100.0 * aggregate / rate_sum;
    aggregates.push_back(aggregate);
    const auto row = static_cast<std::uint64_t>(s);
    io::write_rows(*ctx.out, run + "/flow_samples", samples, row);
    io::write_rows(*ctx.out, run + "/flow_gbps", flow, row);
    io::write_rows(*ctx.out, run + "/step_aggregate_gbps", std::span<const double>(&aggregate, 1),
                   row);
    io::write_rows(*ctx.out, run + "/step_effective_pct", std::span<const double>(&effective, 1),
                   row);
    io::write_rows(*ctx.out, run + "/step_seconds", std::span<const double>(&step_s, 1), row);
    io::write_cells(*ctx.out, run + "/bw_gbps", cells, cell_values);
    ctx.out->set_attr(run, "steps_done", static_cast<std::int64_t>(s) + 1);
    if (!ctx.quiet) {
      const auto f = core::summarize(flow);
      const double elapsed = static_cast<double>(core::now_ns() - t_start) / 1e9;
      fmt::print(ctx.table,
                 "shift: step {} of {} done: aggregate {:.2f} Gb/s ({}), flows p50 min {:.2f} / "
                 "median {:.2f} / max "
                 "{:.2f} Gb/s, elapsed {}, ETA {}\n",
                 s + 1, steps, aggregate,
                 std::isnan(effective) ? std::string("link rate unknown")
                                       : fmt::format("{:.1f} % of the link rates", effective),
                 f.min, f.p50, f.max, core::format_duration(elapsed),
                 core::format_duration(elapsed / (s + 1) * (steps - s - 1)));
      std::fflush(ctx.table);
    }
  }
  ctx.comm.quiet_barrier();
  counters.finish(run);
  if (ctx.out == nullptr) return;
  if (!errors.empty()) {
    std::vector<std::int64_t> step, rank, peer, status;
    std::vector<std::string> message;
    for (const auto& e : errors) {
      step.push_back(e.step);
      rank.push_back(e.rank);
      peer.push_back(e.peer);
      status.push_back(e.status);
      message.push_back(e.message);
    }
    const std::vector<std::uint64_t> dims{errors.size()};
    ctx.out->write_ints(run + "/errors/step", step, dims, "-");
    ctx.out->write_ints(run + "/errors/rank", rank, dims, "-");
    ctx.out->write_ints(run + "/errors/peer", peer, dims, "-");
    ctx.out->write_ints(run + "/errors/status", status, dims, "-");
    ctx.out->set_attr(run + "/errors/status", std::string(io::schema::attr::kStatusNames),
                      std::string(io::schema::kStatusNamesValue));
    ctx.out->write_strings(run + "/errors/message", message);
    fmt::print(ctx.table,
               "# shift: {} flow(s) FAILED or timed out (see the file's errors/ datasets)\n",
               errors.size());
  }
  const auto a = core::summarize(aggregates);
  fmt::print(ctx.table,
             "# shift summary: {} steps; aggregate per step min {:.2f} / median {:.2f} / max "
             "{:.2f} Gb/s{}\n",
             steps, a.min, a.p50, a.max,
             std::isnan(rate_sum)
                 ? std::string()
                 : fmt::format("; effective min {:.1f} / median {:.1f} % of {:g} Gb/s x {} senders",
                               100 * a.min / rate_sum, 100 * a.p50 / rate_sum, link_rate, n));
  ctx.out->end_run(run);
}

class Shift : public BenchmarkWith<ShiftParams> {
 public:
  void declare(ParamSet& set) override {
    set.text("pattern", p.pattern, "shift",
             "shift (step d: rank i sends to i + d) or permutation (seeded random derangements)")
        .choices({"shift", "permutation"}, "pattern");
    set.size("size", p.size, "1M", "message size").at_least(1);
    set.integer("iters", p.iters, 10, "timed windows per flow and step").at_least(1);
    set.integer("warmup", p.warmup, 2, "untimed windows per flow and step").at_least(0);
    set.integer("steps", p.steps, 0, "permutation: steps (default N - 1)").at_least(0).shown_default("");
    set.rate("link_rate", p.link_rate_gbps,
             "the senders' link rate for effective throughput, e.g. 100G, 400Gb/s (default: the verbs port's active "
             "rate; unknown on mpi)");
    set.seed("seed", p.seed, 1, "seed of the random choices");
    load::declare_test_stall(set, p.test_stall_rank, p.test_stall_step, "STEP");
  }
  void validate(const Where& where) const override {
    load::validate_flows_transport(p.common, "shift", where);
    if (p.steps > 0 && p.pattern != "permutation") {
      where.fail(fmt::format("{} applies to the permutation pattern only (shift always runs N - 1 steps)",
                             where.name("steps")));
    }
  }
  void run(Context& ctx) const override { run_shift(ctx, p); }
};

}  // namespace

void register_shift() {
  register_benchmark({"shift",
                      "the whole fabric loaded at once, step by step (mpiGraph): N x N bandwidth under load, effective "
                      "throughput per step",
                      {},
                      [] { return std::make_unique<Shift>(); }});
}

}  // namespace fabscope::suites
