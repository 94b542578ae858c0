// The reference side of tests/perf/scale_bench: the results writer's pairs path of schema version 1
// (dense [N, N] matrices filled cell by cell every round, every raw sample kept, the file opened
// per call), kept verbatim from bench/io/writer.cpp before schema version 2 so that the benchmark
// compares the new path with the one it replaced in the same run. Not used by fabscope itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fabscope::perf::v1 {

struct PairCells {
  double lat_min = 0, lat_p50 = 0, lat_p99 = 0, bw_fwd = 0, bw_rev = 0;
  std::int8_t status = 0;
};

struct PairRecord {
  int a = 0, b = 0, round = 0;
  std::int8_t status = 0;
  std::vector<double> latency_ns, bw_gbps_fwd, bw_gbps_rev;
  std::string error;
  int repeat = 0;
};

struct PairsShape {
  std::int64_t n_ranks = 0, lat_iters = 0, bw_windows = 0, rounds_total = 0;
};

class Writer {
 public:
  explicit Writer(std::string path) : path_(std::move(path)) {}
  void init_pairs(const std::string& run, const PairsShape& shape);
  void append_pairs(const std::string& run, const std::vector<PairRecord>& records,
                    std::int64_t round, std::int64_t rounds_done, double measure_seconds);

 private:
  std::string path_;
  std::vector<PairRecord> failures_;
};

}  // namespace fabscope::perf::v1
