// The harness part shared by the two-rank sweeps (lat, bw, bibw): connect ranks 0 and 1, run one
// timed batch per size, keep rank 0's samples, let every other rank wait without spinning.
#pragma once

#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "suites/params.hpp"
#include "suites/suite.hpp"
#include "transport/link.hpp"

namespace fabscope::suites {

// measure(link, on_rank0, size, samples): one timed batch of samples.size() iterations.
using Measure = std::function<void(transport::Link&, bool, std::size_t, std::span<double>)>;
// report(size_index, samples): rank 0, after each size (prints the table row).
using Report = std::function<void(std::size_t, std::span<const double>)>;

// Returns rank 0's samples, row-major [sizes x iters]; empty on other ranks. Port counter deltas
// of every rank around the sweep go to `run` (see CounterProbe).
std::vector<double> sweep_two_ranks(Context& ctx, const SweepParams& p, const std::string& run,
                                    const Measure& measure, const Report& report);

// Port counters of every rank around one run (verbs: sysfs counters and hw_counters; mpi: none;
// the load benchmarks read transport::load_counters, which adds the netdev's pause counters).
// Construct before measuring, call finish() after (collective). Rank 0 writes <group>/names [C]
// and <group>/delta [N ranks, C] (int64; -1 where a rank's port lacks that counter); finish(run)
// uses the group <run>/counters.
class CounterProbe {
 public:
  using Reader = std::map<std::string, std::uint64_t> (transport::Transport::*)(transport::Kind,
                                                                                const transport::Options&);
  CounterProbe(const Context& ctx, const Common& common, Reader read = &transport::Transport::port_counters);
  void finish(const std::string& run) { finish_group(run + "/counters"); }
  void finish_group(const std::string& group);

 private:
  const Context& ctx_;
  const Common& common_;
  Reader read_;
  std::map<std::string, std::uint64_t> before_;
};

// Rank 0: creates the run group with the common attributes; "" on other ranks.
std::string begin_run(Context& ctx, std::string_view benchmark, const Common& common, int iters,
                      int warmup, std::vector<std::pair<std::string, std::int64_t>> extra = {});

std::vector<std::int64_t> to_int64(const std::vector<std::size_t>& sizes);

// The settings every two-rank sweep declares (lat, bw, bibw) with its own default counts, and the
// --duration rule: run by time, --iters then caps each size (default cap 100000).
struct SweepDefaults {
  int iters;
  int warmup;
};
void declare_sweep(ParamSet& set, SweepParams& p, SweepDefaults defaults);
void resolve_sweep(const ParamSet& set, SweepParams& p, const Where& where);

// {"duration_ms", ...} when the sweep runs by time, else nothing.
std::vector<std::pair<std::string, std::int64_t>> duration_attrs(const SweepParams& p);

}  // namespace fabscope::suites
