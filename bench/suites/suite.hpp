// Benchmarks as the harness runs them: typed parameters in, results to stdout and the file out.
// Only apps/ turns command lines and suite files into these parameters.
#pragma once

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/results.hpp"
#include "runtime/comm.hpp"

namespace fabscope::suites {

enum class Kind { kLat, kBw, kBibw, kPairs };
[[nodiscard]] std::string_view kind_name(Kind kind);
[[nodiscard]] std::optional<Kind> parse_kind(std::string_view name);

struct Common {
  std::string name;  // the run's name in the file (suite entry or subcommand)
  std::string label;
  std::string transport = "mpi";
};

// lat, bw, bibw: ranks 0 and 1, a sweep of message sizes.
struct SweepParams {
  Common common;
  std::vector<std::size_t> sizes;
  int iters = 1000;  // lat: ping-pongs per size; bw/bibw: windows per size
  int warmup = 100;
};

// pairs: every unordered pair of ranks, round by round.
struct PairsParams {
  Common common;
  std::size_t lat_size = 8;
  std::size_t bw_size = std::size_t{1} << 20;
  int lat_iters = 1000;
  int bw_iters = 20;  // windows per direction
  int warmup = 10;    // untimed ping-pongs; bandwidth warms up with max(1, warmup / 10) windows
};

struct BenchSpec {
  Kind kind = Kind::kLat;
  SweepParams sweep;
  PairsParams pairs;
};

// What every benchmark needs from the harness.
struct Context {
  const runtime::Comm& comm;
  io::ResultsWriter* out = nullptr;  // rank 0 only
  std::vector<std::string> hostnames;  // by rank, on every rank
  bool quiet = false;                  // no progress lines
  std::FILE* table = stdout;           // where rank 0 prints result tables
};

// Ranks a benchmark needs at least; preflight checks it on every rank.
[[nodiscard]] int min_ranks(Kind kind);

void run_lat(Context& ctx, const SweepParams& p);
void run_bw(Context& ctx, const SweepParams& p, bool bidirectional);
void run_pairs(Context& ctx, const PairsParams& p);
void run(Context& ctx, const BenchSpec& spec);

// Provenance of this rank, gathered to rank 0 (other ranks get an empty vector).
[[nodiscard]] std::vector<io::HostRecord> gather_hosts(const runtime::Comm& comm);

}  // namespace fabscope::suites
