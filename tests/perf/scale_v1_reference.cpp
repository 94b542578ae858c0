// Verbatim (names aside) from bench/io/writer.cpp of schema version 1; see the header.
#include "scale_v1_reference.hpp"

#include <hdf5.h>

#include <limits>
#include <span>

#include "core/error.hpp"
#include "core/stats.hpp"
#include "io/h5.hpp"
#include "io/schema.hpp"

namespace fabscope::perf::v1 {
namespace {
using io::h5::Handle;
namespace h5 = io::h5;
namespace schema = io::schema;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

PairCells cells_of(const PairRecord& r) {
  const auto lat = core::summarize(r.latency_ns);
  return {lat.min,
          lat.p50,
          lat.p99,
          core::summarize(r.bw_gbps_fwd).p50,
          core::summarize(r.bw_gbps_rev).p50,
          r.status};
}
}  // namespace

void Writer::init_pairs(const std::string& run, const PairsShape& shape) {
  failures_.clear();
  Handle file = h5::open_file(path_, true);
  Handle g = h5::open_group(file.id(), run);
  const auto n = static_cast<hsize_t>(shape.n_ranks);
  const std::vector<double> nan(n * n, kNaN);
  for (const char* name : {"latency_ns_min", "latency_ns_p50", "latency_ns_p99"}) {
    h5::write(g.id(), name, std::span<const double>(nan), {n, n}, {.units = "ns"});
  }
  h5::write(g.id(), "bw_gbps", std::span<const double>(nan), {n, n}, {.units = "Gb/s"});
  const std::vector<std::int8_t> status(n * n,
                                        static_cast<std::int8_t>(schema::PairStatus::kNotRun));
  h5::write(g.id(), "status", std::span<const std::int8_t>(status), {n, n});
  const std::vector<std::int32_t> round(n * n, -1);
  h5::write(g.id(), "round", std::span<const std::int32_t>(round), {n, n});
  Handle ps = h5::create_group(g.id(), "pair_samples");
  h5::create_rows(ps.id(), "pair", H5T_NATIVE_INT32, 2, "");
  h5::create_rows(ps.id(), "round", H5T_NATIVE_INT32, 0, "");
  h5::create_rows(ps.id(), "repeat", H5T_NATIVE_INT32, 0, "");
  h5::create_rows(ps.id(), "latency_ns", H5T_NATIVE_DOUBLE, static_cast<hsize_t>(shape.lat_iters),
                  "ns");
  h5::create_rows(ps.id(), "bw_gbps_fwd", H5T_NATIVE_DOUBLE, static_cast<hsize_t>(shape.bw_windows),
                  "Gb/s");
  h5::create_rows(ps.id(), "bw_gbps_rev", H5T_NATIVE_DOUBLE, static_cast<hsize_t>(shape.bw_windows),
                  "Gb/s");
  h5::set_attr(g.id(), schema::attr::kRoundsDone, std::int64_t{0});
  h5::set_attr(g.id(), schema::attr::kRoundsTotal, shape.rounds_total);
  const std::vector<double> round_nan(static_cast<std::size_t>(shape.rounds_total), kNaN);
  h5::write(g.id(), "round_seconds", std::span<const double>(round_nan),
            {static_cast<hsize_t>(shape.rounds_total)}, {.units = "s"});
  ps.close();
  g.close();
  file.close();
}

void Writer::append_pairs(const std::string& run, const std::vector<PairRecord>& records,
                          std::int64_t round_index, std::int64_t rounds_done,
                          double measure_seconds) {
  Handle file = h5::open_file(path_, true);
  Handle g = h5::open_group(file.id(), run);
  std::vector<hsize_t> sym, dir;
  std::vector<double> lat_min, lat_p50, lat_p99, bw;
  std::vector<std::int8_t> status;
  std::vector<std::int32_t> round, pair_rows, round_rows, repeat_rows;
  std::vector<double> lat_rows, fwd_rows, rev_rows;
  for (const auto& r : records) {
    const PairCells c = cells_of(r);
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
    bw.push_back(c.bw_fwd);
    bw.push_back(c.bw_rev);
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
    Handle ds = h5::open_dataset(g.id(), "round_seconds");
    Handle fspace(H5Dget_space(ds.id()), H5Sclose, "H5Dget_space");
    const auto coord = static_cast<hsize_t>(round_index);
    H5Sselect_elements(fspace.id(), H5S_SELECT_SET, 1, &coord);
    const hsize_t one = 1;
    Handle mspace(H5Screate_simple(1, &one, nullptr), H5Sclose, "H5Screate_simple");
    if (H5Dwrite(ds.id(), H5T_NATIVE_DOUBLE, mspace.id(), fspace.id(), H5P_DEFAULT,
                 &measure_seconds) < 0) {
      throw core::Error(core::ExitCode::kFailure, "HDF5: H5Dwrite round_seconds");
    }
  }
  bool new_failures = false;
  for (const auto& r : records) {
    if (r.status != static_cast<std::int8_t>(schema::PairStatus::kOk)) {
      failures_.push_back({r.a, r.b, r.round, r.status, {}, {}, {}, r.error, r.repeat});
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
  h5::set_attr(g.id(), schema::attr::kRoundsDone, rounds_done);
  g.close();
  file.close();
}

}  // namespace fabscope::perf::v1
