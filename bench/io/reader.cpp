#include <fmt/format.h>

#include <filesystem>

#include "core/error.hpp"
#include "io/h5.hpp"
#include "io/results.hpp"
#include "io/schema.hpp"

namespace fabscope::io {
namespace {

h5::Handle open_ro(const std::string& path) {
  h5::silence_library_errors();
  return h5::open_file(path, false);
}

std::vector<std::uint64_t> to_u64(const std::vector<hsize_t>& d) { return {d.begin(), d.end()}; }

}  // namespace

ResultsReader::ResultsReader(std::string path) : path_(std::move(path)) {
  h5::silence_library_errors();
  if (!std::filesystem::exists(path_)) {
    throw core::UsageError(fmt::format("{}: no such file; pass a results file written by fabscope", path_));
  }
  if (H5Fis_hdf5(path_.c_str()) <= 0) {
    throw core::UsageError(fmt::format("{}: not an HDF5 file (or truncated); pass a results file "
                                       "written by fabscope",
                                       path_));
  }
  std::int64_t version = 0;
  try {
    h5::Handle f = open_ro(path_);
    version = h5::get_attr_int(f.id(), schema::attr::kSchemaVersion);
  } catch (const core::Error&) {
    throw core::UsageError(fmt::format("{}: unreadable or not a fabscope results file (no "
                                       "schema_version attribute)",
                                       path_));
  }
  if (version < schema::kOldestReadable || version > schema::kVersion) {
    throw core::UsageError(
        fmt::format("{}: schema_version {} is not supported (this build reads {} "
                    "to {}); use a matching fabscope",
                    path_, version, schema::kOldestReadable, schema::kVersion));
  }
}

std::vector<std::string> ResultsReader::runs() const {
  h5::Handle f = open_ro(path_);
  std::vector<std::string> out;
  for (const auto& n : h5::list(f.id(), std::string(schema::kRuns))) out.push_back(fmt::format("{}/{}", schema::kRuns, n));
  return out;
}

std::string ResultsReader::attr_string(const std::string& object, const std::string& name) const {
  h5::Handle f = open_ro(path_);
  h5::Handle o(H5Oopen(f.id(), object.c_str(), H5P_DEFAULT), H5Oclose, "no object " + object);
  return h5::get_attr_string(o.id(), name);
}

std::int64_t ResultsReader::attr_int(const std::string& object, const std::string& name) const {
  h5::Handle f = open_ro(path_);
  h5::Handle o(H5Oopen(f.id(), object.c_str(), H5P_DEFAULT), H5Oclose, "no object " + object);
  return h5::get_attr_int(o.id(), name);
}

std::vector<double> ResultsReader::doubles(const std::string& dataset,
                                           std::vector<std::uint64_t>* dims) const {
  h5::Handle f = open_ro(path_);
  std::vector<hsize_t> d;
  auto v = h5::read_doubles(f.id(), dataset, &d);
  if (dims) *dims = to_u64(d);
  return v;
}

std::vector<std::int64_t> ResultsReader::ints(const std::string& dataset,
                                              std::vector<std::uint64_t>* dims) const {
  h5::Handle f = open_ro(path_);
  std::vector<hsize_t> d;
  auto v = h5::read_ints(f.id(), dataset, &d);
  if (dims) *dims = to_u64(d);
  return v;
}

std::vector<std::string> ResultsReader::strings(const std::string& dataset) const {
  h5::Handle f = open_ro(path_);
  return h5::read_strings(f.id(), dataset);
}

bool ResultsReader::exists(const std::string& object) const {
  h5::Handle f = open_ro(path_);
  return object == "/" || h5::exists(f.id(), object);
}

}  // namespace fabscope::io
