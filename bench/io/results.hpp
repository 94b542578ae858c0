// Writing and reading the results file (schema in results/SCHEMA.md) without exposing HDF5.
// Only rank 0 holds a ResultsWriter. Every call opens the file, writes and closes it, so the file
// on disk is complete and readable between calls (a killed run loses at most the call in flight);
// a pairs run keeps the file open between rounds and flushes it after each.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/stats.hpp"
#include "io/pair_rows.hpp"

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
  KeepSamples keep = KeepSamples::kSuspect;  // --keep-samples
  std::int64_t pairs_per_round = 0;          // rows per chunk hint (0: n_ranks / 2)
};

struct RoundInfo {
  std::int64_t round = 0;        // 0-based index of the round just completed
  std::int64_t rounds_done = 0;  // rounds complete in the file after this call
  double measure_seconds = 0;    // slowest rank's time measuring in this round
};

// One measured (or failed) unordered pair; `a` initiated. One row of <run>/pairs.
struct PairRecord {
  int a = 0, b = 0, round = 0;
  std::int8_t status = 0;  // schema::PairStatus
  // Raw samples (lat_iters / bw_windows values): written to pair_samples when keep_samples is set;
  // left empty by pairs.cpp for pairs whose samples are not kept.
  std::vector<double> latency_ns, bw_gbps_fwd, bw_gbps_rev;
  std::string error;  // failed / timeout: what each side saw (status string, vendor error, qpn, peer)
  int repeat = 0;     // 0-based repeat (--repeat)
  // The compact form of each side (initiator: latency + fwd windows; peer: rev windows); empty:
  // computed by the writer from the raw samples above.
  std::optional<SideSummary> fwd{}, rev{};
  bool keep_samples = true;  // write the raw samples to pair_samples (see mark_suspects)
};

// Fills fwd / rev from the raw samples where they are empty.
void summarize_record(PairRecord& r);
// Applies --keep-samples to one round's records (summaries filled): sets keep_samples (all: every
// record, none: no record, suspect: the rule in io/pair_rows.hpp). Returns how many are kept.
std::size_t mark_suspects(std::vector<PairRecord>& records, KeepSamples keep);

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
  // The empty row table <run>/pairs, pair_samples and errors (extendible, chunked datasets; schema
  // version 2). The file stays open for the run's appends: nothing here is O(n_ranks^2).
  void init_pairs(const std::string& run, const PairsShape& shape);
  // Continues a pairs run begun by an earlier process: rows of a round cut short are dropped (the
  // datasets are cut back to rows_done), wall_seconds counts from now, attribute `resumed` counts
  // the resumptions.
  void resume_pairs(const std::string& run);
  // Appends one round: a row per record (summaries computed from the raw samples where missing),
  // the raw samples of the records marked keep_samples, the failures to errors/, the round's
  // seconds; then rows_done and rounds_done, and flushes. Cost O(records).
  void append_pairs(const std::string& run, std::vector<PairRecord>& records,
                    const RoundInfo& round);
  // Ends the appends. For at most kDenseMaxRanks ranks, also writes the dense [N, N] views
  // (latency_ns_min/p50/p99, bw_gbps, status, round: each pair's best repeat) from the rows.
  void finish_pairs(const std::string& run);
  static constexpr std::int64_t kDenseMaxRanks = 1024;
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

  ResultsWriter(ResultsWriter&&) noexcept;
  ResultsWriter& operator=(ResultsWriter&&) noexcept;
  ~ResultsWriter();

 private:
  struct PairsSink;  // the open file and datasets of the pairs run being appended to
  ResultsWriter();
  PairsSink& sink(const std::string& run);
  std::string path_;
  int runs_ = 0;
  std::int64_t run_start_ns_ = 0;
  std::unique_ptr<PairsSink> sink_;
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
