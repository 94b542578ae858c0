// Writing and reading the results file (schema in results/SCHEMA.md) without exposing HDF5.
// Only rank 0 holds a ResultsWriter. Every call opens the file, writes and closes it, so the file
// on disk is complete and readable between calls (a killed run loses at most the call in flight).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "core/stats.hpp"

namespace fabscope::io {

struct HostRecord {
  std::string hostname, kernel, cpu_model, mpi_library, rdma_core_version, rdma_devices;
  // gethostname(); `hostname` is the Slurm node name (SLURMD_NODENAME) when Slurm gives one.
  std::string system_hostname{};
};

struct RootInfo {
  std::string fabscope_version, created_utc, command_line, suite_text;
  std::int64_t n_ranks = 0;
  bool overwrite = false;  // replace an existing results file (--overwrite); other files never
};

struct RunInfo {
  std::string benchmark, name, transport, label;
  std::int64_t iters = 0, warmup = 0;
  std::vector<std::pair<std::string, std::int64_t>> int_attrs;  // benchmark-specific
  std::vector<std::string> parameters{};  // "name=value" of every declared setting -> <run>/parameters
};

// Per-size samples of one metric, row-major [sizes x iters]. Summaries are always written as
// summary/<name>_<stat>; the raw samples as samples/<name> when store_samples is set.
struct SampledMetric {
  std::string name, units;
  std::vector<double> samples;
  bool store_samples = true;
};

// One value per size (e.g. bw_gbps_overall), written as summary/<name>.
struct SizeColumn {
  std::string name, units;
  std::vector<double> values;
};

struct SweepData {
  std::vector<std::int64_t> size_bytes;
  std::size_t iters = 0;
  std::vector<SampledMetric> metrics;
  std::vector<SizeColumn> columns;
};

struct PairsShape {
  std::int64_t n_ranks = 0, lat_iters = 0, bw_windows = 0, rounds_total = 0;
};

struct RoundInfo {
  std::int64_t round = 0;        // 0-based index of the round just completed
  std::int64_t rounds_done = 0;  // rounds complete in the file after this call
  double measure_seconds = 0;    // slowest rank's time measuring in this round
};

// What the pairs matrices hold for one pair: its own samples' statistics, or with --repeat the
// best repeat so far (lowest latency p50, highest bandwidth p50 per direction, ok if any was).
struct PairCells {
  double lat_min = 0, lat_p50 = 0, lat_p99 = 0, bw_fwd = 0, bw_rev = 0;
  std::int8_t status = 0;
};

// One measured (or failed) unordered pair; `a` initiated.
struct PairRecord {
  int a = 0, b = 0, round = 0;
  std::int8_t status = 0;  // schema::PairStatus
  std::vector<double> latency_ns, bw_gbps_fwd, bw_gbps_rev;  // lat_iters / bw_windows values
  std::string error;  // failed / timeout: what each side saw (status string, vendor error, qpn, peer)
  int repeat = 0;     // 0-based repeat (--repeat)
  std::optional<PairCells> cells;  // matrix values; empty: from this record's own samples
};

// The matrix values of a record from its own samples.
[[nodiscard]] PairCells cells_of(const PairRecord& r);

class ResultsWriter {
 public:
  // Creates (truncates) the file and writes the root attributes and /hosts.
  ResultsWriter(std::string path, const RootInfo& root, const std::vector<HostRecord>& hosts);
  // Opens an existing results file to finish its interrupted pairs run (pairs --resume): the file
  // is marked incomplete again until finish().
  [[nodiscard]] static ResultsWriter reopen(std::string path);

  // Creates /runs/<NN>_<name>, marked incomplete; returns its path.
  std::string begin_run(const RunInfo& info);
  void write_sweep(const std::string& run, const SweepData& data);
  // The pairs matrices (all not_run) and the empty pair_samples datasets.
  void init_pairs(const std::string& run, const PairsShape& shape);
  // Continues a pairs run begun by an earlier process: its recorded failures are kept, wall_seconds
  // counts from now, attribute `resumed` counts the resumptions.
  void resume_pairs(const std::string& run);
  // Fills the matrices for the records, appends their samples and sets rounds_done.
  void append_pairs(const std::string& run, const std::vector<PairRecord>& records,
                    const RoundInfo& round);
  // Generic datasets and attributes for benchmarks with their own layout (paths are absolute,
  // intermediate groups are created). Units go into the dataset's `units` attribute.
  void write_doubles(const std::string& path, std::span<const double> data,
                     const std::vector<std::uint64_t>& dims, std::string_view units,
                     bool compress = false);
  void write_ints(const std::string& path, std::span<const std::int64_t> data,
                  const std::vector<std::uint64_t>& dims, std::string_view units);
  void write_strings(const std::string& path, const std::vector<std::string>& values);
  void set_attr(const std::string& object, const std::string& name, const std::string& value);
  void set_attr(const std::string& object, const std::string& name, std::int64_t value);

  // Marks the run complete with its finish time and wall_seconds (since begin_run).
  void end_run(const std::string& run);
  // Marks the whole file complete.
  void finish();

  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  ResultsWriter() = default;
  std::string path_;
  int runs_ = 0;
  std::vector<PairRecord> failures_;  // of the current pairs run, rewritten as errors/* on change
  std::int64_t run_start_ns_ = 0;
};

// Read access for tests, resume and tools: opens the file per call.
class ResultsReader {
 public:
  // Throws core::UsageError naming the file when it is missing, not HDF5, or of another schema.
  explicit ResultsReader(std::string path);

  [[nodiscard]] std::vector<std::string> runs() const;  // group paths under /runs
  [[nodiscard]] std::string attr_string(const std::string& object, const std::string& name) const;
  [[nodiscard]] std::int64_t attr_int(const std::string& object, const std::string& name) const;
  [[nodiscard]] std::vector<double> doubles(const std::string& dataset,
                                            std::vector<std::uint64_t>* dims = nullptr) const;
  [[nodiscard]] std::vector<std::int64_t> ints(const std::string& dataset,
                                               std::vector<std::uint64_t>* dims = nullptr) const;
  [[nodiscard]] std::vector<std::string> strings(const std::string& dataset) const;
  [[nodiscard]] bool exists(const std::string& object) const;

 private:
  std::string path_;
};

}  // namespace fabscope::io
