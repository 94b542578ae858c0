// Benchmarks as the harness runs them: typed parameters in, results to stdout and the file out.
// The parameter structs of the built-in benchmarks that several files share; their defaults, help
// and checks are declared once, in each benchmark's declare() (benchmark.hpp). Only apps/ turns
// command lines and suite files into these parameters.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/results.hpp"
#include "runtime/comm.hpp"
#include "suites/params.hpp"
#include "topology/model.hpp"
#include "topology/plan.hpp"
#include "transport/link.hpp"
#include "transport/transport.hpp"

namespace fabscope::suites {

struct Common {
  std::string name;  // the run's name in the file (suite entry or subcommand)
  std::string label;
  transport::Kind transport = transport::Kind::kMpi;
  transport::Options options;  // device, verb, depths (verbs transport)
  std::vector<std::string>
      parameters{};  // name=value of every declared parameter (the run's `parameters`)
};

// Values are set by each benchmark's declare() (the defaults live there, once).

// lat, bw, bibw: ranks 0 and 1, a sweep of message sizes.
struct SweepParams {
  Common common;
  std::vector<std::size_t> sizes;
  int iters = 0;  // lat: ping-pongs per size; bw/bibw: windows per size (with duration: the cap)
  int warmup = 0;
  double duration_s = 0;  // > 0: run each size for duration_s / sizes instead of `iters` times
};

// pairs: every unordered pair of ranks, round by round.
struct PairsParams {
  Common common;
  std::string plan;       // topology/plan.hpp names; all-pairs without a fabric: circle
  std::string plan_file;  // --plan-file (topology/PLANS.md format)
  topology::PlanOptions plan_options;
  std::size_t lat_size = 0;
  std::size_t bw_size = 0;
  int lat_iters = 0;
  int bw_iters = 0;  // windows per direction
  int warmup = 0;    // untimed ping-pongs; bandwidth warms up with max(1, warmup / 10) windows
  int repeat = 0;    // measure every pair this many times: the whole schedule, repeat after repeat
  std::string keep_samples;  // all, suspect, none (io::KeepSamples)
  std::string resume;  // --resume FILE: finish that file's interrupted pairs run (apps/main.cpp)
  int test_stall_rank = -1;   // test hook (FABSCOPE_TEST_STALL=RANK,ROUND): that rank goes silent
  int test_stall_round = -1;  // for pair_timeout + 1 s in that round instead of measuring
  double test_stall_s = 0;    // how long (0: pair_timeout + 1 s)
  // Harness-only instrument (FABSCOPE_HARNESS_ONLY=1, tests/perf/harness_bench.sh): no link is
  // made and nothing is measured; every pair gets fixed synthetic samples, so a round's time is the
  // harness's (barrier, summaries, gather, assembling, writing). The run says so (attribute
  // harness_only = 1): its numbers are not measurements.
  bool harness_only = false;
};

// coll: collective operations over node-aware groups of 2, 4, 8, ... nodes and all N.
struct CollParams {
  Common common;
  std::vector<std::string> ops;
  std::vector<std::size_t> sizes;  // bytes, nccl-tests convention (see coll.cpp)
  std::string dtype;               // int32, int64, float, double
  std::string op;                  // sum, prod, min, max
  int iters = 0;
  int warmup = 0;
  bool nonblocking = false;  // MPI_I<op> + MPI_Wait
  bool check = false;        // verify results against known per-rank inputs
  int ranks_per_node = 0;
  bool node_per_rank = false;        // --node-by rank: treat every rank as a node (one-host tests)
  std::size_t max_buffer_bytes = 0;  // per rank; larger sizes are skipped
  int test_corrupt_rank = -1;        // test hook: corrupt this rank's result before --check
};

// shift: the whole fabric loaded at once, step by step (mpiGraph); see shift.cpp.
struct ShiftParams {
  Common common;
  std::string pattern;     // shift: step s sends to rank + s + 1; permutation: seeded derangements
  std::size_t size = 0;    // message size (bytes)
  int iters = 0;           // timed windows per flow and step
  int warmup = 0;          // untimed windows per flow and step
  int steps = 0;           // permutation: steps (0 = N - 1); shift: always N - 1
  std::uint64_t seed = 0;  // permutation
  double link_rate_gbps = 0;  // 0: the verbs port's active rate (NaN on mpi)
  int test_stall_rank = -1;   // test hook (--test-stall RANK,STEP): that rank stays silent for
  int test_stall_step = -1;   // --timeout + 1 s in that step instead of streaming
};

// congestion: victims measured alone, then under each aggressor pattern (GPCNeT); see
// congestion.cpp.
struct CongestionParams {
  Common common;
  double victim_fraction = 0;
  std::string placement;  // random, leaf (fill whole leaves), spread (over leaves)
  std::uint64_t seed = 0;
  std::vector<std::string> patterns;
  std::size_t aggressor_size = 0;
  std::size_t lat_size = 0;
  std::size_t bw_size = 0;
  int iters = 0;     // latency ping-pongs and allreduces per phase
  int bw_iters = 0;  // bandwidth windows per phase
  int warmup = 0;    // untimed ping-pongs and allreduces (bandwidth: max(1, warmup / 10) windows)
  int test_stall_rank = -1;   // test hook (--test-stall RANK,PHASE): that rank stays silent for
  int test_stall_phase = -1;  // 20 x --timeout in that phase (0 = isolated) instead of its part
};

// Where `pairs --resume FILE` continues (rank 0): the interrupted run and its completed rounds.
struct ResumePoint {
  std::string run;
  std::int64_t rounds_done = 0;
};

// What every benchmark needs from the harness.
struct Context {
  const runtime::Comm& comm;
  io::ResultsWriter* out = nullptr;          // rank 0 only
  std::vector<std::string> hostnames;        // by rank, on every rank
  bool quiet = false;                        // no progress lines
  std::FILE* table = stdout;                 // where rank 0 prints result tables
  int failed_measurements = 0;               // rank 0: measurements recorded as failed (exit 1)
  const topology::Fabric* fabric = nullptr;  // rank 0, when a topology is known
  const topology::Endpoints* endpoints = nullptr;  // rank 0: endpoint i = rank i, when known
  const ResumePoint* resume = nullptr;             // rank 0, pairs --resume: the run to finish
  transport::Transport* transport = nullptr;       // made by main: links, flows, ports, counters

  // One spelling of an endpoint in every output (as the analysis writes it): the host name, or
  // `host/rank N` when several ranks share the host. O(ranks): for headers and error lines.
  [[nodiscard]] std::string endpoint(std::int64_t rank) const {
    const auto& name = hostnames.at(static_cast<std::size_t>(rank));
    const bool shared = std::count(hostnames.begin(), hostnames.end(), name) > 1;
    return shared ? name + "/rank " + std::to_string(rank) : name;
  }
};

// The pairs schedule a run uses (rank 0): nullptr for the circle all-pairs schedule. Throws
// core::UsageError when the plan needs a topology the run does not have.
[[nodiscard]] std::unique_ptr<topology::Plan> make_pairs_plan(const Context& ctx,
                                                              const PairsParams& p);

// The plan settings (--k, --budget, --pair-time, --new, --seed) that pairs and `fabscope plan`
// take.
void declare_plan_options(ParamSet& set, topology::PlanOptions& options);

// pairs --resume (rank 0): the last incomplete pairs run of `path`, checked against this job (rank
// count, hosts, schedule length). Throws core::UsageError naming the file and what differs.
[[nodiscard]] ResumePoint find_resume_point(const Context& ctx, const PairsParams& p,
                                            const std::string& path);
// Provenance of this rank, gathered to rank 0 (other ranks get an empty vector).
[[nodiscard]] std::vector<io::HostRecord> gather_hosts(const runtime::Comm& comm);

}  // namespace fabscope::suites
