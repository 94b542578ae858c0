#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

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

void ResultsWriter::resume_pairs(const std::string& run) {
  const ResultsReader reader(path_);
  failures_.clear();
  if (reader.exists(run + "/errors/pair")) {
    const auto pair = reader.ints(run + "/errors/pair");
    const auto round = reader.ints(run + "/errors/round");
    const auto status = reader.ints(run + "/errors/status");
    const auto message = reader.strings(run + "/errors/message");
    for (std::size_t i = 0; i < round.size(); ++i) {
      PairRecord f;
      f.a = static_cast<int>(pair[2 * i]);
      f.b = static_cast<int>(pair[2 * i + 1]);
      f.round = static_cast<int>(round[i]);
      f.status = static_cast<std::int8_t>(status[i]);
      f.error = i < message.size() ? message[i] : "";
      failures_.push_back(std::move(f));
    }
  }
  run_start_ns_ = core::now_ns();
  Handle file = open_rw(path_);
  Handle g = h5::open_group(file.id(), run);
  const std::int64_t resumed = H5Aexists(g.id(), "resumed") > 0 ? h5::get_attr_int(g.id(), "resumed") : 0;
  h5::set_attr(g.id(), "resumed", resumed + 1);
  g.close();
  file.close();
}

PairCells cells_of(const PairRecord& r) {
  if (r.cells) return *r.cells;
  const auto lat = core::summarize(r.latency_ns);
  return {lat.min, lat.p50, lat.p99, core::summarize(r.bw_gbps_fwd).p50, core::summarize(r.bw_gbps_rev).p50, r.status};
}

std::string ResultsWriter::begin_run(const RunInfo& info) {
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

void ResultsWriter::init_pairs(const std::string& run, const PairsShape& shape) {
  failures_.clear();
  Handle file = open_rw(path_);
  Handle g = h5::open_group(file.id(), run);
  const auto n = static_cast<hsize_t>(shape.n_ranks);
  const std::vector<double> nan(n * n, kNaN);
  for (const char* name : {"latency_ns_min", "latency_ns_p50", "latency_ns_p99"}) {
    h5::write(g.id(), name, std::span<const double>(nan), {n, n}, {.units = "ns"});
  }
  h5::write(g.id(), "bw_gbps", std::span<const double>(nan), {n, n}, {.units = "Gb/s"});
  const std::vector<std::int8_t> status(n * n, static_cast<std::int8_t>(schema::PairStatus::kNotRun));
  h5::write(g.id(), "status", std::span<const std::int8_t>(status), {n, n});
  {
    Handle ds = h5::open_dataset(g.id(), "status");
    h5::set_attr(ds.id(), schema::attr::kStatusNames, schema::kStatusNamesValue);
  }
  const std::vector<std::int32_t> round(n * n, -1);
  h5::write(g.id(), "round", std::span<const std::int32_t>(round), {n, n});
  Handle ps = h5::create_group(g.id(), "pair_samples");
  h5::create_rows(ps.id(), "pair", H5T_NATIVE_INT32, 2, "");
  h5::create_rows(ps.id(), "round", H5T_NATIVE_INT32, 0, "");
  h5::create_rows(ps.id(), "repeat", H5T_NATIVE_INT32, 0, "");
  h5::create_rows(ps.id(), "latency_ns", H5T_NATIVE_DOUBLE, static_cast<hsize_t>(shape.lat_iters), "ns");
  h5::create_rows(ps.id(), "bw_gbps_fwd", H5T_NATIVE_DOUBLE, static_cast<hsize_t>(shape.bw_windows), "Gb/s");
  h5::create_rows(ps.id(), "bw_gbps_rev", H5T_NATIVE_DOUBLE, static_cast<hsize_t>(shape.bw_windows), "Gb/s");
  h5::set_attr(g.id(), schema::attr::kRoundsDone, std::int64_t{0});
  h5::set_attr(g.id(), schema::attr::kRoundsTotal, shape.rounds_total);
  h5::set_attr(g.id(), schema::attr::kSchedule, std::string_view("circle"));
  const std::vector<double> round_nan(static_cast<std::size_t>(shape.rounds_total), kNaN);
  h5::write(g.id(), "round_seconds", std::span<const double>(round_nan),
            {static_cast<hsize_t>(shape.rounds_total)}, {.units = "s"});
  ps.close();
  g.close();
  file.close();
}

void ResultsWriter::append_pairs(const std::string& run, const std::vector<PairRecord>& records,
                                 const RoundInfo& round_info) {
  Handle file = open_rw(path_);
  Handle g = h5::open_group(file.id(), run);
  std::vector<hsize_t> sym, dir;  // symmetric cells (both orders) and directional cells
  std::vector<double> lat_min, lat_p50, lat_p99, bw;
  std::vector<std::int8_t> status;
  std::vector<std::int32_t> round, pair_rows, round_rows, repeat_rows;
  std::vector<double> lat_rows, fwd_rows, rev_rows;
  for (const auto& r : records) {
    const PairCells c = cells_of(r);
    const double fwd = c.bw_fwd;
    const double rev = c.bw_rev;
    for (const auto& [i, j] : {std::pair{r.a, r.b}, std::pair{r.b, r.a}}) {
      sym.push_back(static_cast<hsize_t>(i));
      sym.push_back(static_cast<hsize_t>(j));
      lat_min.push_back(c.lat_min);
      lat_p50.push_back(c.lat_p50);
      lat_p99.push_back(c.lat_p99);
      status.push_back(c.status);
      round.push_back(r.round);
    }
    dir.insert(dir.end(), {static_cast<hsize_t>(r.a), static_cast<hsize_t>(r.b),
                           static_cast<hsize_t>(r.b), static_cast<hsize_t>(r.a)});
    bw.push_back(fwd);
    bw.push_back(rev);
    pair_rows.push_back(r.a);
    pair_rows.push_back(r.b);
    round_rows.push_back(r.round);
    repeat_rows.push_back(r.repeat);
    lat_rows.insert(lat_rows.end(), r.latency_ns.begin(), r.latency_ns.end());
    fwd_rows.insert(fwd_rows.end(), r.bw_gbps_fwd.begin(), r.bw_gbps_fwd.end());
    rev_rows.insert(rev_rows.end(), r.bw_gbps_rev.begin(), r.bw_gbps_rev.end());
  }
  h5::write_elements(g.id(), "latency_ns_min", H5T_NATIVE_DOUBLE, sym, lat_min.data());
  h5::write_elements(g.id(), "latency_ns_p50", H5T_NATIVE_DOUBLE, sym, lat_p50.data());
  h5::write_elements(g.id(), "latency_ns_p99", H5T_NATIVE_DOUBLE, sym, lat_p99.data());
  h5::write_elements(g.id(), "status", H5T_NATIVE_INT8, sym, status.data());
  h5::write_elements(g.id(), "round", H5T_NATIVE_INT32, sym, round.data());
  h5::write_elements(g.id(), "bw_gbps", H5T_NATIVE_DOUBLE, dir, bw.data());
  Handle ps = h5::open_group(g.id(), "pair_samples");
  const auto rows = static_cast<hsize_t>(records.size());
  h5::append_rows(ps.id(), "pair", H5T_NATIVE_INT32, pair_rows.data(), rows);
  h5::append_rows(ps.id(), "round", H5T_NATIVE_INT32, round_rows.data(), rows);
  h5::append_rows(ps.id(), "repeat", H5T_NATIVE_INT32, repeat_rows.data(), rows);
  h5::append_rows(ps.id(), "latency_ns", H5T_NATIVE_DOUBLE, lat_rows.data(), rows);
  h5::append_rows(ps.id(), "bw_gbps_fwd", H5T_NATIVE_DOUBLE, fwd_rows.data(), rows);
  h5::append_rows(ps.id(), "bw_gbps_rev", H5T_NATIVE_DOUBLE, rev_rows.data(), rows);
  ps.close();
  {
    // round_seconds is 1-D: select by a 1-D coordinate.
    h5::Handle ds = h5::open_dataset(g.id(), "round_seconds");
    h5::Handle fspace(H5Dget_space(ds.id()), H5Sclose, "H5Dget_space");
    const hsize_t coord = static_cast<hsize_t>(round_info.round);
    H5Sselect_elements(fspace.id(), H5S_SELECT_SET, 1, &coord);
    const hsize_t one = 1;
    h5::Handle mspace(H5Screate_simple(1, &one, nullptr), H5Sclose, "H5Screate_simple");
    if (H5Dwrite(ds.id(), H5T_NATIVE_DOUBLE, mspace.id(), fspace.id(), H5P_DEFAULT,
                 &round_info.measure_seconds) < 0) {
      throw core::Error(core::ExitCode::kFailure, "HDF5: H5Dwrite round_seconds");
    }
  }
  // Failed pairs: errors/pair [F, 2], errors/round [F], errors/status [F], errors/message [F].
  bool new_failures = false;
  for (const auto& r : records) {
    if (r.status != static_cast<std::int8_t>(schema::PairStatus::kOk)) {
      failures_.push_back({r.a, r.b, r.round, r.status, {}, {}, {}, r.error, r.repeat, {}});
      new_failures = true;
    }
  }
  if (new_failures) {
    if (h5::exists(g.id(), "errors")) H5Ldelete(g.id(), "errors", H5P_DEFAULT);
    Handle eg = h5::create_group(g.id(), "errors");
    std::vector<std::int32_t> f_pair, f_round;
    std::vector<std::int8_t> f_status;
    std::vector<std::string> f_message;
    for (const auto& f : failures_) {
      f_pair.insert(f_pair.end(), {f.a, f.b});
      f_round.push_back(f.round);
      f_status.push_back(f.status);
      f_message.push_back(f.error);
    }
    const hsize_t nf = failures_.size();
    h5::write(eg.id(), "pair", std::span<const std::int32_t>(f_pair), {nf, 2});
    h5::write(eg.id(), "round", std::span<const std::int32_t>(f_round), {nf});
    h5::write(eg.id(), "status", std::span<const std::int8_t>(f_status), {nf});
    h5::write_strings(eg.id(), "message", f_message);
    eg.close();
  }
  h5::set_attr(g.id(), schema::attr::kRoundsDone, round_info.rounds_done);
  g.close();
  file.close();
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
  Handle file = open_rw(path_);
  Handle g = h5::open_group(file.id(), run);
  h5::set_attr(g.id(), schema::attr::kFinishedUtc, core::utc_now_iso());
  h5::set_attr(g.id(), schema::attr::kWallSeconds, static_cast<double>(core::now_ns() - run_start_ns_) / 1e9);
  h5::set_attr_i8(g.id(), schema::attr::kComplete, 1);
  g.close();
  file.close();
}

void ResultsWriter::finish() {
  Handle file = open_rw(path_);
  h5::set_attr_i8(file.id(), schema::attr::kComplete, 1);
  file.close();
}

}  // namespace fabscope::io
