#include "io/rows.hpp"

#include <fmt/format.h>

#include <numeric>

#include "core/error.hpp"
#include "io/h5.hpp"

namespace fabscope::io {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw core::Error(core::ExitCode::kFailure, fmt::format("HDF5: {}", what));
}

h5::Handle open_rw(const ResultsWriter& out) {
  h5::silence_library_errors();
  return h5::open_file(out.path(), true);
}

}  // namespace

void write_rows(const ResultsWriter& out, const std::string& dataset, std::span<const double> data,
                std::uint64_t first_row) {
  h5::Handle file = open_rw(out);
  h5::Handle ds = h5::open_dataset(file.id(), dataset);
  h5::Handle fspace(H5Dget_space(ds.id()), H5Sclose, "H5Dget_space " + dataset);
  const int rank = H5Sget_simple_extent_ndims(fspace.id());
  if (rank < 1) fail(fmt::format("{}: not an array", dataset));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(fspace.id(), dims.data(), nullptr);
  const hsize_t row =
      std::accumulate(dims.begin() + 1, dims.end(), hsize_t{1}, std::multiplies<>());
  if (row == 0 || data.size() % row != 0 || first_row + data.size() / row > dims[0]) {
    fail(fmt::format("{}: {} values from row {} do not fit its shape", dataset, data.size(),
                     first_row));
  }
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = first_row;
  count[0] = data.size() / row;
  if (H5Sselect_hyperslab(fspace.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                          nullptr) < 0) {
    fail("H5Sselect_hyperslab " + dataset);
  }
  h5::Handle mspace(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr),
                    H5Sclose, "H5Screate_simple");
  if (H5Dwrite(ds.id(), H5T_NATIVE_DOUBLE, mspace.id(), fspace.id(), H5P_DEFAULT, data.data()) <
      0) {
    fail("H5Dwrite " + dataset);
  }
  mspace.close();
  fspace.close();
  ds.close();
  file.close();
}

void write_cells(const ResultsWriter& out, const std::string& dataset,
                 const std::vector<std::uint64_t>& coords, std::span<const double> values) {
  if (coords.size() != 2 * values.size())
    fail(fmt::format("{}: {} coordinates for {} cells", dataset, coords.size(), values.size()));
  if (values.empty()) return;
  h5::Handle file = open_rw(out);
  const std::vector<hsize_t> c(coords.begin(), coords.end());
  h5::write_elements(file.id(), dataset, H5T_NATIVE_DOUBLE, c, values.data());
  file.close();
}

void set_attr_double(const ResultsWriter& out, const std::string& object, const std::string& name,
                     double value) {
  h5::Handle file = open_rw(out);
  h5::Handle o(H5Oopen(file.id(), object.c_str(), H5P_DEFAULT), H5Oclose, "no object " + object);
  h5::set_attr(o.id(), name, value);
  o.close();
  file.close();
}

}  // namespace fabscope::io
