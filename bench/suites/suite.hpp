// Benchmarks as the harness runs them: typed parameters in, results to stdout and the file out.
// Only apps/ turns command lines and suite files into these parameters.
#pragma once

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
#include "topology/model.hpp"
#include "topology/plan.hpp"
#include "transport/link.hpp"

namespace fabscope::suites {

enum class Kind { kLat, kBw, kBibw, kPairs, kColl, kShift, kCongestion };
[[nodiscard]] std::string_view kind_name(Kind kind);
[[nodiscard]] std::optional<Kind> parse_kind(std::string_view name);

struct Common {
  std::string name;  // the run's name in the file (suite entry or subcommand)
  std::string label;
  std::string transport = "mpi";
  transport::Options options;  // device, verb, depths (verbs transport)
};

// lat, bw, bibw: ranks 0 and 1, a sweep of message sizes.
struct SweepParams {
  Common common;
  std::vector<std::size_t> sizes;
  int iters = 1000;  // lat: ping-pongs per size; bw/bibw: windows per size (with duration: the cap)
  int warmup = 100;
  double duration_s = 0;  // > 0: run each size for duration_s / sizes instead of `iters` times
};

// pairs: every unordered pair of ranks, round by round.
struct PairsParams {
  Common common;
  std::string plan = "all-pairs";  // topology/plan.hpp names; all-pairs without a fabric: circle
  std::string plan_file;           // --plan-file (topology/PLANS.md format)
  topology::PlanOptions plan_options;
  std::size_t lat_size = 8;
  std::size_t bw_size = std::size_t{1} << 20;
  int lat_iters = 1000;
  int bw_iters = 20;  // windows per direction
  int warmup = 10;    // untimed ping-pongs; bandwidth warms up with max(1, warmup / 10) windows
  int repeat = 1;     // measure every pair this many times: the whole schedule, repeat after repeat
  int test_stall_rank = -1;   // test hook (FABSCOPE_TEST_STALL=RANK,ROUND): that rank goes silent
  int test_stall_round = -1;  // for pair_timeout + 1 s in that round instead of measuring
};

// coll: collective operations over node-aware groups of 2, 4, 8, ... nodes and all N.
struct CollParams {
  Common common;
  std::vector<std::string> ops{"allreduce", "allgather", "reduce_scatter", "alltoall", "bcast", "barrier"};
  std::vector<std::size_t> sizes;  // bytes, nccl-tests convention (see coll.cpp)
  std::string dtype = "float";     // int32, int64, float, double
  std::string op = "sum";          // sum, prod, min, max
  int iters = 20;
  int warmup = 5;
  bool nonblocking = false;        // MPI_I<op> + MPI_Wait
  bool check = false;              // verify results against known per-rank inputs
  int ranks_per_node = 1;
  bool node_per_rank = false;      // --node-by rank: treat every rank as a node (one-host tests)
  std::size_t max_buffer_bytes = std::size_t{1} << 30;  // per rank; larger sizes are skipped
  int test_corrupt_rank = -1;      // test hook: corrupt this rank's result before --check
};

// shift: the whole fabric loaded at once, step by step (mpiGraph); see shift.cpp.
struct ShiftParams {
  Common common;
  std::string pattern = "shift";            // shift: step s sends to rank + s + 1; permutation: seeded derangements
  std::size_t size = std::size_t{1} << 20;  // message size (bytes)
  int iters = 10;                           // timed windows per flow and step
  int warmup = 2;                           // untimed windows per flow and step
  int steps = 0;                            // permutation: steps (0 = N - 1); shift: always N - 1
  std::uint64_t seed = 1;                   // permutation
  double link_rate_gbps = 0;                // 0: the verbs port's active rate (NaN on mpi)
  int test_stall_rank = -1;                 // test hook (--test-stall RANK,STEP): that rank stays silent for
  int test_stall_step = -1;                 // --timeout + 1 s in that step instead of streaming
};

// congestion: victims measured alone, then under each aggressor pattern (GPCNeT); see congestion.cpp.
struct CongestionParams {
  Common common;
  double victim_fraction = 0.2;
  std::string placement = "random";  // random, leaf (fill whole leaves), spread (over leaves)
  std::uint64_t seed = 1;
  std::vector<std::string> patterns{"incast", "alltoall", "flood"};
  std::size_t aggressor_size = std::size_t{1} << 20;
  std::size_t lat_size = 8;
  std::size_t bw_size = std::size_t{1} << 20;
  int iters = 1000;   // latency ping-pongs and allreduces per phase
  int bw_iters = 20;  // bandwidth windows per phase
  int warmup = 10;    // untimed ping-pongs and allreduces (bandwidth: max(1, warmup / 10) windows)
  int test_stall_rank = -1;   // test hook (--test-stall RANK,PHASE): that rank stays silent for
  int test_stall_phase = -1;  // 20 x --timeout in that phase (0 = isolated) instead of its part
};

struct BenchSpec {
  Kind kind = Kind::kLat;
  SweepParams sweep;
  PairsParams pairs;
  CollParams coll;
  ShiftParams shift;
  CongestionParams congestion;
};

// The Common part of a spec, whatever its kind.
[[nodiscard]] Common& common_of(BenchSpec& spec);
[[nodiscard]] const Common& common_of(const BenchSpec& spec);

// Where `pairs --resume FILE` continues (rank 0): the interrupted run and its completed rounds.
struct ResumePoint {
  std::string run;
  std::int64_t rounds_done = 0;
};

// What every benchmark needs from the harness.
struct Context {
  const runtime::Comm& comm;
  io::ResultsWriter* out = nullptr;  // rank 0 only
  std::vector<std::string> hostnames;  // by rank, on every rank
  bool quiet = false;                  // no progress lines
  std::FILE* table = stdout;           // where rank 0 prints result tables
  int failed_measurements = 0;         // rank 0: measurements recorded as failed (exit 1)
  const topology::Fabric* fabric = nullptr;        // rank 0, when a topology is known
  const topology::Endpoints* endpoints = nullptr;  // rank 0: endpoint i = rank i, when known
  const ResumePoint* resume = nullptr;             // rank 0, pairs --resume: the run to finish
};

// The pairs schedule a run uses (rank 0): nullptr for the circle all-pairs schedule. Throws
// core::UsageError when the plan needs a topology the run does not have.
[[nodiscard]] std::unique_ptr<topology::Plan> make_pairs_plan(const Context& ctx, const PairsParams& p);

// Collective preflight of one benchmark (every rank calls it, in the same order). Throws a
// core::Error with one line saying why it cannot run and how to fix it (rank and node counts;
// for verbs: no device -> Unsupported, exit 77; wrong device, port or GID -> UsageError).
void preflight(const runtime::Comm& comm, const BenchSpec& spec, const std::string& subcommand,
               const Context& ctx);

void run_lat(Context& ctx, const SweepParams& p);
void run_bw(Context& ctx, const SweepParams& p, bool bidirectional);
void run_pairs(Context& ctx, const PairsParams& p);
// pairs --resume (rank 0): the last incomplete pairs run of `path`, checked against this job (rank
// count, hosts, schedule length). Throws core::UsageError naming the file and what differs.
[[nodiscard]] ResumePoint find_resume_point(const Context& ctx, const PairsParams& p, const std::string& path);
void run_coll(Context& ctx, const CollParams& p);
void run_shift(Context& ctx, const ShiftParams& p);
void run_congestion(Context& ctx, const CongestionParams& p);
// Names --ops / dtype / op accept, for validation in apps.
[[nodiscard]] const std::vector<std::string>& coll_op_names();
[[nodiscard]] bool is_coll_dtype(const std::string& name);
[[nodiscard]] bool is_coll_reduction(const std::string& name);
void run(Context& ctx, const BenchSpec& spec);

// Provenance of this rank, gathered to rank 0 (other ranks get an empty vector).
[[nodiscard]] std::vector<io::HostRecord> gather_hosts(const runtime::Comm& comm);

}  // namespace fabscope::suites
