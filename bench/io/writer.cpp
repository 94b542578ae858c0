#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <tuple>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "io/h5.hpp"
#include "io/results.hpp"
#include "io/schema.hpp"

namespace fabscope::io {
namespace {

using h5::Handle;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

Handle open_rw(const std::string& path) {
  h5::silence_library_errors();
  return h5::open_file(path, true);
}

template <typename F>
std::vector<std::string> column(const std::vector<HostRecord>& hosts, F field) {
  std::vector<std::string> out;
  out.reserve(hosts.size());
  for (const auto& h : hosts) out.push_back(field(h));
  return out;
}

}  // namespace

// The open file and datasets of the pairs run being appended to (schema version 2: <run>/pairs,
// <run>/pair_samples, <run>/errors). Members in creation order: the datasets close before the
// groups, the groups before the file.
struct ResultsWriter::PairsSink {
  std::string run;
  Handle file, group, rows_g, samples_g, errors_g;
  Handle pair, round, repeat, status, lat_min, lat_p50, lat_p99, bw_fwd, bw_rev, bw_fwd_best,
      bw_rev_best, lat_q, bw_fwd_q, bw_rev_q;
  Handle s_pair, s_round, s_repeat, s_row, s_lat, s_fwd, s_rev;
  Handle e_pair, e_round, e_repeat, e_status, e_message;
  Handle round_seconds;
  Handle sum_g, sum_status, sum_lat, sum_bw;  // <run>/summary
  Handle string_type;
  PairsSummary summary;  // what <run>/summary holds (rows: the rows it counts)
  std::int64_t n = 0, lat_iters = 0, bw_windows = 0, codes = 0;
  std::int64_t rows_done = 0, samples_done = 0, errors_done = 0;
  bool dirty = false;  // an append is in progress (or failed part way)
  // Column buffers, reused from round to round.
  std::vector<std::int32_t> c_pair, c_round, c_repeat;
  std::vector<std::int8_t> c_status;
  std::vector<float> c_lat_min, c_lat_p50, c_lat_p99, c_bw_fwd, c_bw_rev, c_fwd_best, c_rev_best;
  std::vector<std::uint8_t> c_lat_q, c_fwd_q, c_rev_q;
  std::vector<std::int32_t> k_pair, k_round, k_repeat;
  std::vector<std::int64_t> k_row;
  std::vector<double> k_lat, k_fwd, k_rev;
  std::vector<std::int32_t> f_pair, f_round, f_repeat;
  std::vector<std::int8_t> f_status;
  std::vector<const char*> f_message;

  // Every dataset with its name, in append order (for resume's cut back and for open).
  template <typename F>
  void each_row_dataset(F f) {
    f(pair, "pair"), f(round, "round"), f(repeat, "repeat"), f(status, "status");
    f(lat_min, "latency_ns_min"), f(lat_p50, "latency_ns_p50"), f(lat_p99, "latency_ns_p99");
    f(bw_fwd, "bw_gbps_fwd"), f(bw_rev, "bw_gbps_rev"), f(bw_fwd_best, "bw_gbps_fwd_best");
    f(bw_rev_best, "bw_gbps_rev_best"), f(lat_q, "latency_q"), f(bw_fwd_q, "bw_fwd_q");
    f(bw_rev_q, "bw_rev_q");
  }
  template <typename F>
  void each_sample_dataset(F f) {
    f(s_pair, "pair"), f(s_round, "round"), f(s_repeat, "repeat"), f(s_row, "row");
    f(s_lat, "latency_ns"), f(s_fwd, "bw_gbps_fwd"), f(s_rev, "bw_gbps_rev");
  }
  template <typename F>
  void each_error_dataset(F f) {
    f(e_pair, "pair"), f(e_round, "round"), f(e_repeat, "repeat"), f(e_status, "status");
    f(e_message, "message");
  }
};

ResultsWriter::ResultsWriter() = default;
ResultsWriter::ResultsWriter(ResultsWriter&&) noexcept = default;
ResultsWriter& ResultsWriter::operator=(ResultsWriter&&) noexcept = default;
ResultsWriter::~ResultsWriter() = default;

ResultsWriter::ResultsWriter(std::string path, const RootInfo& root,
                             const std::vector<HostRecord>& hosts)
    : path_(std::move(path)) {
  h5::silence_library_errors();
  const std::filesystem::path p(path_);
  if (p.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(p.parent_path(), ec);
  }
  // Results already measured are never lost, and no other file is ever replaced.
  std::error_code exists_ec;
  if (std::filesystem::exists(p, exists_ec)) {
    if (!std::filesystem::is_regular_file(p, exists_ec)) {
      throw core::UsageError(fmt::format("--out {}: exists and is not a regular file; give a file path", path_));
    }
    bool ours = false;
    try {
      const ResultsReader existing(path_);
      ours = true;
    } catch (const core::Error&) {
    }
    if (!ours) {
      throw core::UsageError(fmt::format("--out {}: the file exists and is not a fabscope results file; choose another "
                                         "path (fabscope never replaces other files)",
                                         path_));
    }
    if (!root.overwrite) {
      throw core::UsageError(fmt::format("--out {}: the file already holds fabscope results; choose another path, or "
                                         "pass --overwrite to replace them",
                                         path_));
    }
  }
  // Probe with stdio first: HDF5's own failure does not say why (permissions, missing folder).
  if (std::FILE* f = std::fopen(path_.c_str(), "wb")) {
    std::fclose(f);
  } else {
    throw core::UsageError(fmt::format("--out {}: cannot write the results file ({}); choose a "
                                       "writable path",
                                       path_, std::strerror(errno)));
  }
  Handle file = h5::create_file(path_);
  const hid_t f = file.id();
  h5::set_attr(f, schema::attr::kSchemaVersion, schema::kVersion);
  h5::set_attr(f, schema::attr::kFabscopeVersion, root.fabscope_version);
  h5::set_attr(f, schema::attr::kCreatedUtc, root.created_utc);
  h5::set_attr(f, schema::attr::kCommandLine, root.command_line);
  h5::set_attr(f, schema::attr::kSuiteText, root.suite_text);
  h5::set_attr(f, schema::attr::kNRanks, root.n_ranks);
  // The clock of this (the writing) rank; every rank chooses its own the same way (core/clock.hpp).
  h5::set_attr(f, schema::attr::kClock, core::clock_name());
  h5::set_attr(f, schema::attr::kClockTscHz, core::clock_tsc_hz());
  h5::set_attr_i8(f, schema::attr::kComplete, 0);
  Handle hg = h5::create_group(f, std::string(schema::kHosts));
  std::vector<std::int32_t> ranks(hosts.size());
  for (std::size_t i = 0; i < hosts.size(); ++i) ranks[i] = static_cast<std::int32_t>(i);
  h5::write(hg.id(), "rank", std::span<const std::int32_t>(ranks), {hosts.size()});
  h5::write_strings(hg.id(), "hostname", column(hosts, [](const auto& h) { return h.hostname; }));
  h5::write_strings(hg.id(), "kernel", column(hosts, [](const auto& h) { return h.kernel; }));
  h5::write_strings(hg.id(), "cpu_model", column(hosts, [](const auto& h) { return h.cpu_model; }));
  h5::write_strings(hg.id(), "mpi_library", column(hosts, [](const auto& h) { return h.mpi_library; }));
  h5::write_strings(hg.id(), "rdma_core_version",
                    column(hosts, [](const auto& h) { return h.rdma_core_version; }));
  h5::write_strings(hg.id(), "rdma_devices", column(hosts, [](const auto& h) { return h.rdma_devices; }));
  h5::write_strings(hg.id(), "gethostname",
                    column(hosts, [](const auto& h) { return h.system_hostname; }));
  Handle runs = h5::create_group(f, std::string(schema::kRuns));
  runs.close();
  hg.close();
  file.close();
}

ResultsWriter ResultsWriter::reopen(std::string path) {
  const ResultsReader reader(path);  // names the file when it is missing or not ours
  ResultsWriter w;
  w.path_ = std::move(path);
  w.runs_ = static_cast<int>(reader.runs().size());
  Handle file = open_rw(w.path_);
  h5::set_attr_i8(file.id(), schema::attr::kComplete, 0);
  file.close();
  return w;
}

std::string ResultsWriter::begin_run(const RunInfo& info) {
  sink_.reset();
  const std::string group = fmt::format("{}/{:02d}_{}", schema::kRuns, runs_++, info.name);
  run_start_ns_ = core::now_ns();
  Handle file = open_rw(path_);
  Handle g = h5::create_group(file.id(), group);
  namespace a = schema::attr;
  h5::set_attr(g.id(), a::kBenchmark, info.benchmark);
  h5::set_attr(g.id(), a::kName, info.name);
  h5::set_attr(g.id(), a::kTransport, info.transport);
  h5::set_attr(g.id(), a::kLabel, info.label);
  h5::set_attr(g.id(), a::kIters, info.iters);
  h5::set_attr(g.id(), a::kWarmup, info.warmup);
  h5::set_attr(g.id(), a::kStartedUtc, core::utc_now_iso());
  h5::set_attr(g.id(), a::kFinishedUtc, std::string_view{});
  h5::set_attr_i8(g.id(), a::kComplete, 0);
  for (const auto& [k, v] : info.int_attrs) h5::set_attr(g.id(), k, v);
  g.close();
  file.close();
  if (!info.parameters.empty()) write_strings(group + "/parameters", info.parameters);
  return group;
}

void ResultsWriter::write_sweep(const std::string& run, const SweepData& data) {
  Handle file = open_rw(path_);
  Handle g = h5::open_group(file.id(), run);
  const hsize_t n_sizes = data.size_bytes.size();
  h5::write(g.id(), "size_bytes", std::span<const std::int64_t>(data.size_bytes), {n_sizes},
            {.units = "bytes"});
  Handle summary = h5::create_group(g.id(), "summary");
  Handle samples = h5::create_group(g.id(), "samples");
  for (const auto& m : data.metrics) {
    if (m.samples.size() != n_sizes * data.iters) {
      throw core::Error(core::ExitCode::kFailure,
                        fmt::format("internal: metric {} has {} samples, expected {}", m.name,
                                    m.samples.size(), n_sizes * data.iters));
    }
    std::vector<std::vector<double>> stats(core::kStatNames.size(), std::vector<double>(n_sizes));
    for (std::size_t s = 0; s < n_sizes; ++s) {
      const auto row = std::span<const double>(m.samples).subspan(s * data.iters, data.iters);
      const auto values = core::stat_values(core::summarize(row));
      for (std::size_t k = 0; k < values.size(); ++k) stats[k][s] = values[k];
    }
    for (std::size_t k = 0; k < core::kStatNames.size(); ++k) {
      h5::write(summary.id(), fmt::format("{}_{}", m.name, core::kStatNames[k]),
                std::span<const double>(stats[k]), {n_sizes}, {.units = m.units});
    }
    if (m.store_samples) {
      h5::write(samples.id(), m.name, std::span<const double>(m.samples), {n_sizes, data.iters},
                {.units = m.units, .compress = true});
    }
  }
  for (const auto& c : data.columns) {
    h5::write(summary.id(), c.name, std::span<const double>(c.values), {n_sizes}, {.units = c.units});
  }
  samples.close();
  summary.close();
  g.close();
  file.close();
}

void summarize_record(PairRecord& r) {
  static thread_local std::vector<double> scratch;
  if (!r.fwd) r.fwd = summarize_side(r.latency_ns, r.bw_gbps_fwd, scratch);
  if (!r.rev) r.rev = summarize_side({}, r.bw_gbps_rev, scratch);
}

namespace {
// Median of the finite values (NaN for none); v is reordered.
double median_of(std::vector<double>& v) {
  std::erase_if(v, [](double x) { return !std::isfinite(x); });
  if (v.empty()) return kNaN;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}
}  // namespace

std::size_t mark_suspects(std::vector<PairRecord>& records, KeepSamples keep) {
  if (keep != KeepSamples::kSuspect) {
    for (auto& r : records) r.keep_samples = keep == KeepSamples::kAll;
    return keep == KeepSamples::kAll ? records.size() : 0;
  }
  std::vector<double> lat, bw;
  lat.reserve(records.size());
  bw.reserve(2 * records.size());
  for (auto& r : records) {
    summarize_record(r);
    lat.push_back(r.fwd->lat_p50);
    bw.push_back(r.fwd->bw_p50);
    bw.push_back(r.rev->bw_p50);
  }
  const double lat_med = median_of(lat), bw_med = median_of(bw);
  std::size_t kept = 0;
  const auto ok = static_cast<std::int8_t>(schema::PairStatus::kOk);
  for (auto& r : records) {
    const auto& f = *r.fwd;
    const auto& v = *r.rev;
    const bool slow_lat = std::isfinite(lat_med) && f.lat_p50 > kSuspectLatencyFactor * lat_med;
    const bool slow_bw = std::isfinite(bw_med) && (f.bw_p50 < kSuspectBwFactor * bw_med ||
                                                   v.bw_p50 < kSuspectBwFactor * bw_med);
    r.keep_samples = r.status != ok || f.stalled > 0 || v.stalled > 0 || slow_lat || slow_bw;
    kept += r.keep_samples ? 1 : 0;
  }
  return kept;
}

namespace {
constexpr hsize_t kSummaryBlockRows = hsize_t{1} << 20;

// The empty <run>/summary (PairsSummary): rows per status and the two histograms.
void create_summary(hid_t run_group) {
  Handle sg = h5::create_group(run_group, "summary");
  const PairsSummary empty;
  h5::write(sg.id(), "status_rows", std::span<const std::int64_t>(empty.status_rows),
            {PairsSummary::kStatuses}, {.units = "rows"});
  {
    Handle ds = h5::open_dataset(sg.id(), "status_rows");
    h5::set_attr(ds.id(), schema::attr::kStatusNames, schema::kStatusNamesValue);
  }
  for (const auto& [name, units, lo] :
       {std::tuple{"latency_ns_p50_hist", "ns", PairsSummary::kLatLowNs},
        std::tuple{"bw_gbps_hist", "Gb/s", PairsSummary::kBwLowGbps}}) {
    h5::write(sg.id(), name, std::span<const std::int64_t>(empty.lat_hist), {PairsSummary::kBins},
              {});
    Handle ds = h5::open_dataset(sg.id(), name);
    h5::set_attr(ds.id(), "value_units", std::string_view(units));
    h5::set_attr(ds.id(), "lo", lo);
    h5::set_attr(ds.id(), "bins_per_octave", std::int64_t{PairsSummary::kBinsPerOctave});
  }
  h5::set_attr(sg.id(), "rows", std::int64_t{-1});  // -1: not yet written
}

template <typename Sink>
void write_summary(Sink& s, const PairsSummary& m) {
  h5::overwrite(s.sum_status.id(), "summary/status_rows", H5T_NATIVE_INT64, m.status_rows.data());
  h5::overwrite(s.sum_lat.id(), "summary/latency_ns_p50_hist", H5T_NATIVE_INT64,
                m.lat_hist.data());
  h5::overwrite(s.sum_bw.id(), "summary/bw_gbps_hist", H5T_NATIVE_INT64, m.bw_hist.data());
  const hid_t g = s.sum_g.id();
  h5::set_attr(g, "latency_ns_p50_min", m.lat_min);
  h5::set_attr(g, "latency_ns_p50_max", m.lat_max);
  h5::set_attr(g, "bw_gbps_min", m.bw_min);
  h5::set_attr(g, "bw_gbps_max", m.bw_max);
  h5::set_attr(g, "rows", m.rows);  // last: the summary counts these rows
}

// The summary of the first rows_done rows, from the row table (a resumed run whose summary lags
// its rows, or a file written before the summary existed): O(rows) once, in blocks.
template <typename Sink>
PairsSummary summary_from_rows(Sink& s) {
  PairsSummary m;
  std::vector<std::int8_t> status(kSummaryBlockRows);
  std::vector<double> l50(kSummaryBlockRows), fwd(kSummaryBlockRows), rev(kSummaryBlockRows);
  const auto total = static_cast<hsize_t>(s.rows_done);
  for (hsize_t r0 = 0; r0 < total; r0 += kSummaryBlockRows) {
    const hsize_t k = std::min(kSummaryBlockRows, total - r0);
    h5::read_rows(s.status.id(), "pairs/status", H5T_NATIVE_INT8, r0, k, status.data());
    h5::read_rows(s.lat_p50.id(), "pairs/latency_ns_p50", H5T_NATIVE_DOUBLE, r0, k, l50.data());
    h5::read_rows(s.bw_fwd.id(), "pairs/bw_gbps_fwd", H5T_NATIVE_DOUBLE, r0, k, fwd.data());
    h5::read_rows(s.bw_rev.id(), "pairs/bw_gbps_rev", H5T_NATIVE_DOUBLE, r0, k, rev.data());
    for (hsize_t i = 0; i < k; ++i) m.add(status[i], l50[i], fwd[i], rev[i]);
  }
  return m;
}

// Loads <run>/summary (creating it for a file written before it existed); a summary that does
// not count exactly rows_done rows is rebuilt from the row table.
template <typename Sink>
void open_summary(Sink& s) {
  const hid_t g = s.group.id();
  if (!h5::exists(g, "summary")) create_summary(g);
  s.sum_g = h5::open_group(g, "summary");
  s.sum_status = h5::open_dataset(s.sum_g.id(), "status_rows");
  s.sum_lat = h5::open_dataset(s.sum_g.id(), "latency_ns_p50_hist");
  s.sum_bw = h5::open_dataset(s.sum_g.id(), "bw_gbps_hist");
  PairsSummary m;
  m.rows = h5::get_attr_int(s.sum_g.id(), "rows");
  if (m.rows == s.rows_done && h5::rows_of(s.sum_status.id()) == PairsSummary::kStatuses &&
      h5::rows_of(s.sum_lat.id()) == PairsSummary::kBins &&
      h5::rows_of(s.sum_bw.id()) == PairsSummary::kBins) {
    h5::read_rows(s.sum_status.id(), "summary/status_rows", H5T_NATIVE_INT64, 0,
                  PairsSummary::kStatuses, m.status_rows.data());
    h5::read_rows(s.sum_lat.id(), "summary/latency_ns_p50_hist", H5T_NATIVE_INT64, 0,
                  PairsSummary::kBins, m.lat_hist.data());
    h5::read_rows(s.sum_bw.id(), "summary/bw_gbps_hist", H5T_NATIVE_INT64, 0, PairsSummary::kBins,
                  m.bw_hist.data());
    m.lat_min = h5::get_attr_double(s.sum_g.id(), "latency_ns_p50_min");
    m.lat_max = h5::get_attr_double(s.sum_g.id(), "latency_ns_p50_max");
    m.bw_min = h5::get_attr_double(s.sum_g.id(), "bw_gbps_min");
    m.bw_max = h5::get_attr_double(s.sum_g.id(), "bw_gbps_max");
    s.summary = std::move(m);
  } else {
    s.summary = summary_from_rows(s);
    write_summary(s, s.summary);
  }
}
}  // namespace

ResultsWriter::PairsSink& ResultsWriter::sink(const std::string& run) {
  if (sink_ && sink_->run == run) return *sink_;
  sink_.reset();
  auto s = std::make_unique<PairsSink>();
  s->run = run;
  s->file = open_rw(path_);
  s->group = h5::open_group(s->file.id(), run);
  const hid_t g = s->group.id();
  if (!h5::exists(g, "pairs")) {
    throw core::UsageError(
        fmt::format("{}: {} has no pairs/ row table (schema version 1); rerun it "
                    "instead of resuming",
                    path_, run));
  }
  s->rows_g = h5::open_group(g, "pairs");
  s->samples_g = h5::open_group(g, "pair_samples");
  s->errors_g = h5::open_group(g, "errors");
  s->each_row_dataset(
      [&](Handle& h, const char* name) { h = h5::open_dataset(s->rows_g.id(), name); });
  s->each_sample_dataset(
      [&](Handle& h, const char* name) { h = h5::open_dataset(s->samples_g.id(), name); });
  s->each_error_dataset(
      [&](Handle& h, const char* name) { h = h5::open_dataset(s->errors_g.id(), name); });
  s->round_seconds = h5::open_dataset(g, "round_seconds");
  s->string_type = h5::vlen_string_type();
  s->n = h5::get_attr_int(s->file.id(), schema::attr::kNRanks);
  s->lat_iters = h5::get_attr_int(g, "lat_iters");
  s->bw_windows = h5::get_attr_int(g, "bw_windows");
  s->codes = static_cast<std::int64_t>(bw_codes(static_cast<std::size_t>(s->bw_windows)));
  s->rows_done = h5::get_attr_int(g, schema::attr::kRowsDone);
  s->samples_done = h5::get_attr_int(g, schema::attr::kSamplesDone);
  s->errors_done = h5::get_attr_int(g, schema::attr::kErrorsDone);
  open_summary(*s);
  sink_ = std::move(s);
  return *sink_;
}

void ResultsWriter::init_pairs(const std::string& run, const PairsShape& shape) {
  sink_.reset();
  {
    Handle file = open_rw(path_);
    Handle g = h5::open_group(file.id(), run);
    const hsize_t per_round = static_cast<hsize_t>(std::max<std::int64_t>(
        1, shape.pairs_per_round > 0 ? shape.pairs_per_round : shape.n_ranks / 2));
    // A chunk holds a round's rows (at least 1,024: small fabrics), so a round writes whole chunks.
    const h5::RowsOptions rows{.units = {},
                               .chunk_rows = std::max<hsize_t>(per_round, 1024),
                               .deflate = 1,
                               .shuffle = true};
    const auto with_units = [&](std::string_view u) {
      h5::RowsOptions o = rows;
      o.units = u;
      return o;
    };
    const auto codes = static_cast<hsize_t>(bw_codes(static_cast<std::size_t>(shape.bw_windows)));
    Handle rg = h5::create_group(g.id(), "pairs");
    const hid_t r = rg.id();
    (void)h5::create_rows_open(r, "pair", H5T_NATIVE_INT32, 2, rows);
    (void)h5::create_rows_open(r, "round", H5T_NATIVE_INT32, 0, rows);
    (void)h5::create_rows_open(r, "repeat", H5T_NATIVE_INT32, 0, rows);
    {
      Handle st = h5::create_rows_open(r, "status", H5T_NATIVE_INT8, 0, rows);
      h5::set_attr(st.id(), schema::attr::kStatusNames, schema::kStatusNamesValue);
    }
    for (const char* name : {"latency_ns_min", "latency_ns_p50", "latency_ns_p99"})
      (void)h5::create_rows_open(r, name, H5T_NATIVE_FLOAT, 0, with_units("ns"));
    for (const char* name : {"bw_gbps_fwd", "bw_gbps_rev", "bw_gbps_fwd_best", "bw_gbps_rev_best"})
      (void)h5::create_rows_open(r, name, H5T_NATIVE_FLOAT, 0, with_units("Gb/s"));
    (void)h5::create_rows_open(r, "latency_q", H5T_NATIVE_UINT8, kLatQuantiles, rows);
    (void)h5::create_rows_open(r, "bw_fwd_q", H5T_NATIVE_UINT8, codes, rows);
    (void)h5::create_rows_open(r, "bw_rev_q", H5T_NATIVE_UINT8, codes, rows);
    rg.close();
    // Raw samples of the kept pairs: gzip as in schema version 1.
    Handle ps = h5::create_group(g.id(), "pair_samples");
    const h5::RowsOptions raw{.units = {}, .chunk_rows = 0, .deflate = 1, .shuffle = true};
    (void)h5::create_rows_open(ps.id(), "pair", H5T_NATIVE_INT32, 2, raw);
    (void)h5::create_rows_open(ps.id(), "round", H5T_NATIVE_INT32, 0, raw);
    (void)h5::create_rows_open(ps.id(), "repeat", H5T_NATIVE_INT32, 0, raw);
    (void)h5::create_rows_open(ps.id(), "row", H5T_NATIVE_INT64, 0, raw);
    // One kept pair per chunk of samples: a round compresses only its own pairs' samples (a
    // chunk of 64 rows, partly filled, would be compressed again at every round's flush).
    h5::RowsOptions raw_ns = raw, raw_gbps = raw;
    raw_ns.units = "ns";
    raw_gbps.units = "Gb/s";
    raw_ns.chunk_rows = 1;
    raw_gbps.chunk_rows = 1;
    (void)h5::create_rows_open(ps.id(), "latency_ns", H5T_NATIVE_DOUBLE,
                               static_cast<hsize_t>(shape.lat_iters), raw_ns);
    (void)h5::create_rows_open(ps.id(), "bw_gbps_fwd", H5T_NATIVE_DOUBLE,
                               static_cast<hsize_t>(shape.bw_windows), raw_gbps);
    (void)h5::create_rows_open(ps.id(), "bw_gbps_rev", H5T_NATIVE_DOUBLE,
                               static_cast<hsize_t>(shape.bw_windows), raw_gbps);
    ps.close();
    Handle eg = h5::create_group(g.id(), "errors");
    const h5::RowsOptions err{.units = {}, .chunk_rows = 256, .deflate = 0, .shuffle = false};
    (void)h5::create_rows_open(eg.id(), "pair", H5T_NATIVE_INT32, 2, err);
    (void)h5::create_rows_open(eg.id(), "round", H5T_NATIVE_INT32, 0, err);
    (void)h5::create_rows_open(eg.id(), "repeat", H5T_NATIVE_INT32, 0, err);
    (void)h5::create_rows_open(eg.id(), "status", H5T_NATIVE_INT8, 0, err);
    {
      Handle st = h5::vlen_string_type();
      (void)h5::create_rows_open(eg.id(), "message", st.id(), 0, err);
    }
    eg.close();
    namespace a = schema::attr;
    h5::set_attr(g.id(), a::kLayout, std::string_view("rows"));
    h5::set_attr(g.id(), a::kKeepSamples, keep_samples_name(shape.keep));
    h5::set_attr(g.id(), a::kLatQuantiles, static_cast<std::int64_t>(kLatQuantiles));
    h5::set_attr(g.id(), a::kBwCodes, static_cast<std::int64_t>(codes));
    // pairs.cpp sets these with begin_run; the sink reads them back.
    if (H5Aexists(g.id(), "lat_iters") <= 0) h5::set_attr(g.id(), "lat_iters", shape.lat_iters);
    if (H5Aexists(g.id(), "bw_windows") <= 0) h5::set_attr(g.id(), "bw_windows", shape.bw_windows);
    h5::set_attr(g.id(), a::kRowsDone, std::int64_t{0});
    h5::set_attr(g.id(), a::kSamplesDone, std::int64_t{0});
    h5::set_attr(g.id(), a::kErrorsDone, std::int64_t{0});
    h5::set_attr(g.id(), a::kRoundsDone, std::int64_t{0});
    h5::set_attr(g.id(), a::kRoundsTotal, shape.rounds_total);
    h5::set_attr(g.id(), a::kSchedule, std::string_view("circle"));
    create_summary(g.id());
    const std::vector<double> round_nan(static_cast<std::size_t>(shape.rounds_total), kNaN);
    h5::write(g.id(), "round_seconds", std::span<const double>(round_nan),
              {static_cast<hsize_t>(shape.rounds_total)}, {.units = "s"});
    g.close();
    file.close();
  }
  (void)sink(run);
}

namespace {
// A round cut short (killed writer, full disk) may have extended some datasets: cut every one
// back to what rows_done / samples_done / errors_done count, so columns stay aligned.
template <typename Sink>
void cut_back(Sink& s) {
  s.each_row_dataset([&](Handle& h, const char* name) {
    if (static_cast<std::int64_t>(h5::rows_of(h.id())) != s.rows_done)
      h5::set_rows(h.id(), name, static_cast<hsize_t>(s.rows_done));
  });
  s.each_sample_dataset([&](Handle& h, const char* name) {
    if (static_cast<std::int64_t>(h5::rows_of(h.id())) != s.samples_done)
      h5::set_rows(h.id(), name, static_cast<hsize_t>(s.samples_done));
  });
  s.each_error_dataset([&](Handle& h, const char* name) {
    if (static_cast<std::int64_t>(h5::rows_of(h.id())) != s.errors_done)
      h5::set_rows(h.id(), name, static_cast<hsize_t>(s.errors_done));
  });
  s.dirty = false;
}
}  // namespace

void ResultsWriter::resume_pairs(const std::string& run) {
  run_start_ns_ = core::now_ns();
  PairsSink& s = sink(run);
  cut_back(s);
  if (s.summary.rows != s.rows_done) {  // the summary of a round that was cut back
    s.summary = summary_from_rows(s);
    write_summary(s, s.summary);
  }
  const hid_t g = s.group.id();
  const std::int64_t resumed = H5Aexists(g, "resumed") > 0 ? h5::get_attr_int(g, "resumed") : 0;
  h5::set_attr(g, "resumed", resumed + 1);
  h5::set_attr_i8(g, schema::attr::kComplete, 0);
  h5::flush(s.file.id());
}

void ResultsWriter::append_pairs(const std::string& run, std::vector<PairRecord>& records,
                                 const RoundInfo& round_info) {
  PairsSink& s = sink(run);
  if (s.dirty) cut_back(s);  // an earlier call failed part way
  s.dirty = true;
  const auto codes = static_cast<std::size_t>(s.codes);
  const auto lat_iters = static_cast<std::size_t>(s.lat_iters);
  const auto bw_windows = static_cast<std::size_t>(s.bw_windows);
  for (auto* v : {&s.c_pair, &s.c_round, &s.c_repeat, &s.k_pair, &s.k_round, &s.k_repeat, &s.f_pair,
                  &s.f_round, &s.f_repeat})
    v->clear();
  for (auto* v : {&s.c_lat_min, &s.c_lat_p50, &s.c_lat_p99, &s.c_bw_fwd, &s.c_bw_rev, &s.c_fwd_best,
                  &s.c_rev_best})
    v->clear();
  for (auto* v : {&s.c_lat_q, &s.c_fwd_q, &s.c_rev_q}) v->clear();
  for (auto* v : {&s.k_lat, &s.k_fwd, &s.k_rev}) v->clear();
  s.c_status.clear();
  s.k_row.clear();
  s.f_status.clear();
  s.f_message.clear();
  const auto ok = static_cast<std::int8_t>(schema::PairStatus::kOk);
  std::int64_t row = s.rows_done;
  PairsSummary summary = s.summary;  // committed with the round
  for (auto& r : records) {
    summarize_record(r);
    const SideSummary& f = *r.fwd;
    const SideSummary& v = *r.rev;
    // As stored (float), so a summary rebuilt from the rows is the same.
    summary.add(r.status, static_cast<float>(f.lat_p50), static_cast<float>(f.bw_p50),
                static_cast<float>(v.bw_p50));
    s.c_pair.insert(s.c_pair.end(), {r.a, r.b});
    s.c_round.push_back(r.round);
    s.c_repeat.push_back(r.repeat);
    s.c_status.push_back(r.status);
    s.c_lat_min.push_back(static_cast<float>(f.lat_min));
    s.c_lat_p50.push_back(static_cast<float>(f.lat_p50));
    s.c_lat_p99.push_back(static_cast<float>(f.lat_p99));
    s.c_bw_fwd.push_back(static_cast<float>(f.bw_p50));
    s.c_bw_rev.push_back(static_cast<float>(v.bw_p50));
    s.c_fwd_best.push_back(static_cast<float>(f.bw_best));
    s.c_rev_best.push_back(static_cast<float>(v.bw_best));
    s.c_lat_q.insert(s.c_lat_q.end(), f.lat_q.begin(), f.lat_q.end());
    s.c_fwd_q.insert(s.c_fwd_q.end(), f.bw_q.begin(),
                     f.bw_q.begin() + static_cast<std::ptrdiff_t>(codes));
    s.c_rev_q.insert(s.c_rev_q.end(), v.bw_q.begin(),
                     v.bw_q.begin() + static_cast<std::ptrdiff_t>(codes));
    if (r.keep_samples && r.latency_ns.size() == lat_iters && r.bw_gbps_fwd.size() == bw_windows &&
        r.bw_gbps_rev.size() == bw_windows) {
      s.k_pair.insert(s.k_pair.end(), {r.a, r.b});
      s.k_round.push_back(r.round);
      s.k_repeat.push_back(r.repeat);
      s.k_row.push_back(row);
      s.k_lat.insert(s.k_lat.end(), r.latency_ns.begin(), r.latency_ns.end());
      s.k_fwd.insert(s.k_fwd.end(), r.bw_gbps_fwd.begin(), r.bw_gbps_fwd.end());
      s.k_rev.insert(s.k_rev.end(), r.bw_gbps_rev.begin(), r.bw_gbps_rev.end());
    }
    if (r.status != ok) {
      s.f_pair.insert(s.f_pair.end(), {r.a, r.b});
      s.f_round.push_back(r.round);
      s.f_repeat.push_back(r.repeat);
      s.f_status.push_back(r.status);
      s.f_message.push_back(r.error.c_str());
    }
    ++row;
  }
  const auto rows = static_cast<hsize_t>(records.size());
  const auto kept = static_cast<hsize_t>(s.k_row.size());
  const auto failed = static_cast<hsize_t>(s.f_status.size());
  h5::append(s.pair.id(), "pairs/pair", H5T_NATIVE_INT32, s.c_pair.data(), rows);
  h5::append(s.round.id(), "pairs/round", H5T_NATIVE_INT32, s.c_round.data(), rows);
  h5::append(s.repeat.id(), "pairs/repeat", H5T_NATIVE_INT32, s.c_repeat.data(), rows);
  h5::append(s.status.id(), "pairs/status", H5T_NATIVE_INT8, s.c_status.data(), rows);
  h5::append(s.lat_min.id(), "pairs/latency_ns_min", H5T_NATIVE_FLOAT, s.c_lat_min.data(), rows);
  h5::append(s.lat_p50.id(), "pairs/latency_ns_p50", H5T_NATIVE_FLOAT, s.c_lat_p50.data(), rows);
  h5::append(s.lat_p99.id(), "pairs/latency_ns_p99", H5T_NATIVE_FLOAT, s.c_lat_p99.data(), rows);
  h5::append(s.bw_fwd.id(), "pairs/bw_gbps_fwd", H5T_NATIVE_FLOAT, s.c_bw_fwd.data(), rows);
  h5::append(s.bw_rev.id(), "pairs/bw_gbps_rev", H5T_NATIVE_FLOAT, s.c_bw_rev.data(), rows);
  h5::append(s.bw_fwd_best.id(), "pairs/bw_gbps_fwd_best", H5T_NATIVE_FLOAT, s.c_fwd_best.data(),
             rows);
  h5::append(s.bw_rev_best.id(), "pairs/bw_gbps_rev_best", H5T_NATIVE_FLOAT, s.c_rev_best.data(),
             rows);
  h5::append(s.lat_q.id(), "pairs/latency_q", H5T_NATIVE_UINT8, s.c_lat_q.data(), rows);
  if (codes > 0) {
    h5::append(s.bw_fwd_q.id(), "pairs/bw_fwd_q", H5T_NATIVE_UINT8, s.c_fwd_q.data(), rows);
    h5::append(s.bw_rev_q.id(), "pairs/bw_rev_q", H5T_NATIVE_UINT8, s.c_rev_q.data(), rows);
  }
  h5::append(s.s_pair.id(), "pair_samples/pair", H5T_NATIVE_INT32, s.k_pair.data(), kept);
  h5::append(s.s_round.id(), "pair_samples/round", H5T_NATIVE_INT32, s.k_round.data(), kept);
  h5::append(s.s_repeat.id(), "pair_samples/repeat", H5T_NATIVE_INT32, s.k_repeat.data(), kept);
  h5::append(s.s_row.id(), "pair_samples/row", H5T_NATIVE_INT64, s.k_row.data(), kept);
  h5::append(s.s_lat.id(), "pair_samples/latency_ns", H5T_NATIVE_DOUBLE, s.k_lat.data(), kept);
  h5::append(s.s_fwd.id(), "pair_samples/bw_gbps_fwd", H5T_NATIVE_DOUBLE, s.k_fwd.data(), kept);
  h5::append(s.s_rev.id(), "pair_samples/bw_gbps_rev", H5T_NATIVE_DOUBLE, s.k_rev.data(), kept);
  h5::append(s.e_pair.id(), "errors/pair", H5T_NATIVE_INT32, s.f_pair.data(), failed);
  h5::append(s.e_round.id(), "errors/round", H5T_NATIVE_INT32, s.f_round.data(), failed);
  h5::append(s.e_repeat.id(), "errors/repeat", H5T_NATIVE_INT32, s.f_repeat.data(), failed);
  h5::append(s.e_status.id(), "errors/status", H5T_NATIVE_INT8, s.f_status.data(), failed);
  h5::append(s.e_message.id(), "errors/message", s.string_type.id(), s.f_message.data(), failed);
  {
    // round_seconds is 1-D: select by a 1-D coordinate.
    Handle fspace(H5Dget_space(s.round_seconds.id()), H5Sclose, "H5Dget_space");
    const hsize_t coord = static_cast<hsize_t>(round_info.round);
    H5Sselect_elements(fspace.id(), H5S_SELECT_SET, 1, &coord);
    const hsize_t one = 1;
    Handle mspace(H5Screate_simple(1, &one, nullptr), H5Sclose, "H5Screate_simple");
    if (H5Dwrite(s.round_seconds.id(), H5T_NATIVE_DOUBLE, mspace.id(), fspace.id(), H5P_DEFAULT,
                 &round_info.measure_seconds) < 0) {
      throw core::Error(core::ExitCode::kFailure, "HDF5: H5Dwrite round_seconds");
    }
  }
  write_summary(s, summary);
  const std::int64_t rows_done = s.rows_done + static_cast<std::int64_t>(rows);
  const std::int64_t samples_done = s.samples_done + static_cast<std::int64_t>(kept);
  const std::int64_t errors_done = s.errors_done + static_cast<std::int64_t>(failed);
  const hid_t g = s.group.id();
  h5::set_attr(g, schema::attr::kRowsDone, rows_done);
  h5::set_attr(g, schema::attr::kSamplesDone, samples_done);
  h5::set_attr(g, schema::attr::kErrorsDone, errors_done);
  // Last: a reader trusts rounds_done (and the counts above) only once the round is complete.
  h5::set_attr(g, schema::attr::kRoundsDone, round_info.rounds_done);
  h5::flush(s.file.id());
  s.rows_done = rows_done;
  s.samples_done = samples_done;
  s.errors_done = errors_done;
  s.summary = std::move(summary);
  s.dirty = false;
}

void ResultsWriter::finish_pairs(const std::string& run) {
  PairsSink& s = sink(run);
  const std::int64_t n64 = s.n;
  if (n64 <= kDenseMaxRanks) {
    // The dense views, each pair's best repeat (lowest latency p50, highest bandwidth p50 per
    // direction among its ok rows; the worst status; the round of its last row). Small fabrics
    // only: O(N^2) memory, once, after the last round.
    const auto n = static_cast<std::size_t>(n64);
    const hid_t r = s.rows_g.id();
    const auto pair = h5::read_ints(r, "pair");
    const auto round = h5::read_ints(r, "round");
    const auto status = h5::read_ints(r, "status");
    const auto lmin = h5::read_doubles(r, "latency_ns_min");
    const auto l50 = h5::read_doubles(r, "latency_ns_p50");
    const auto l99 = h5::read_doubles(r, "latency_ns_p99");
    const auto fwd = h5::read_doubles(r, "bw_gbps_fwd");
    const auto rev = h5::read_doubles(r, "bw_gbps_rev");
    std::vector<double> m_min(n * n, kNaN), m_50(n * n, kNaN), m_99(n * n, kNaN), m_bw(n * n, kNaN);
    std::vector<std::int8_t> m_status(n * n, static_cast<std::int8_t>(schema::PairStatus::kNotRun));
    std::vector<std::int32_t> m_round(n * n, -1);
    std::vector<std::uint8_t> any_ok(n * n, 0);
    const auto rows = static_cast<std::size_t>(
        std::min<std::int64_t>(s.rows_done, static_cast<std::int64_t>(round.size())));
    for (std::size_t i = 0; i < rows; ++i) {
      const auto a = static_cast<std::size_t>(pair[2 * i]),
                 b = static_cast<std::size_t>(pair[2 * i + 1]);
      if (a >= n || b >= n) continue;
      const std::size_t ab = a * n + b, ba = b * n + a;
      const auto st = static_cast<std::int8_t>(status[i]);
      const bool first = m_round[ab] < 0;
      m_status[ab] = m_status[ba] = first ? st : std::max(m_status[ab], st);
      m_round[ab] = m_round[ba] = static_cast<std::int32_t>(round[i]);
      if (st == static_cast<std::int8_t>(schema::PairStatus::kOk)) {
        const bool had = any_ok[ab] != 0;
        if (!had || l50[i] < m_50[ab]) {
          m_min[ab] = m_min[ba] = lmin[i];
          m_50[ab] = m_50[ba] = l50[i];
          m_99[ab] = m_99[ba] = l99[i];
        }
        if (!had || fwd[i] > m_bw[ab]) m_bw[ab] = fwd[i];
        if (!had || rev[i] > m_bw[ba]) m_bw[ba] = rev[i];
        any_ok[ab] = any_ok[ba] = 1;
      }
    }
    const hid_t g = s.group.id();
    for (const char* name :
         {"latency_ns_min", "latency_ns_p50", "latency_ns_p99", "bw_gbps", "status", "round"})
      if (h5::exists(g, name)) H5Ldelete(g, name, H5P_DEFAULT);
    h5::write(g, "latency_ns_min", std::span<const double>(m_min), {n, n}, {.units = "ns"});
    h5::write(g, "latency_ns_p50", std::span<const double>(m_50), {n, n}, {.units = "ns"});
    h5::write(g, "latency_ns_p99", std::span<const double>(m_99), {n, n}, {.units = "ns"});
    h5::write(g, "bw_gbps", std::span<const double>(m_bw), {n, n}, {.units = "Gb/s"});
    h5::write(g, "status", std::span<const std::int8_t>(m_status), {n, n});
    {
      Handle ds = h5::open_dataset(g, "status");
      h5::set_attr(ds.id(), schema::attr::kStatusNames, schema::kStatusNamesValue);
    }
    h5::write(g, "round", std::span<const std::int32_t>(m_round), {n, n});
  }
  h5::flush(s.file.id());
  sink_.reset();
}

namespace {
// Splits "/a/b/c" into the parent group (created if missing) and the leaf name.
std::pair<Handle, std::string> parent_of(hid_t file, const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string parent = slash == 0 ? "/" : path.substr(0, slash);
  Handle g = h5::exists(file, parent) ? h5::open_group(file, parent) : h5::create_group(file, parent);
  return {std::move(g), path.substr(slash + 1)};
}
std::vector<hsize_t> to_hsize(const std::vector<std::uint64_t>& dims) { return {dims.begin(), dims.end()}; }
}  // namespace

void ResultsWriter::write_doubles(const std::string& path, std::span<const double> data,
                                  const std::vector<std::uint64_t>& dims, std::string_view units,
                                  bool compress) {
  Handle file = open_rw(path_);
  auto [g, leaf] = parent_of(file.id(), path);
  h5::write(g.id(), leaf, data, to_hsize(dims), {.units = units, .compress = compress});
  g.close();
  file.close();
}

void ResultsWriter::write_ints(const std::string& path, std::span<const std::int64_t> data,
                               const std::vector<std::uint64_t>& dims, std::string_view units) {
  Handle file = open_rw(path_);
  auto [g, leaf] = parent_of(file.id(), path);
  h5::write(g.id(), leaf, data, to_hsize(dims), {.units = units});
  g.close();
  file.close();
}

void ResultsWriter::write_strings(const std::string& path, const std::vector<std::string>& values) {
  Handle file = open_rw(path_);
  auto [g, leaf] = parent_of(file.id(), path);
  h5::write_strings(g.id(), leaf, values);
  g.close();
  file.close();
}

void ResultsWriter::set_attr(const std::string& object, const std::string& name, const std::string& value) {
  Handle file = open_rw(path_);
  Handle o(H5Oopen(file.id(), object.c_str(), H5P_DEFAULT), H5Oclose, "no object " + object);
  h5::set_attr(o.id(), name, std::string_view(value));
  o.close();
  file.close();
}

void ResultsWriter::set_attr(const std::string& object, const std::string& name, std::int64_t value) {
  Handle file = open_rw(path_);
  Handle o(H5Oopen(file.id(), object.c_str(), H5P_DEFAULT), H5Oclose, "no object " + object);
  h5::set_attr(o.id(), name, value);
  o.close();
  file.close();
}

void ResultsWriter::end_run(const std::string& run) {
  if (sink_ && sink_->run == run) sink_.reset();
  Handle file = open_rw(path_);
  Handle g = h5::open_group(file.id(), run);
  h5::set_attr(g.id(), schema::attr::kFinishedUtc, core::utc_now_iso());
  h5::set_attr(g.id(), schema::attr::kWallSeconds, static_cast<double>(core::now_ns() - run_start_ns_) / 1e9);
  h5::set_attr_i8(g.id(), schema::attr::kComplete, 1);
  g.close();
  file.close();
}

void ResultsWriter::finish() {
  sink_.reset();
  Handle file = open_rw(path_);
  h5::set_attr_i8(file.id(), schema::attr::kComplete, 1);
  file.close();
}

}  // namespace fabscope::io
