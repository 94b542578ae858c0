#include "io/h5.hpp"

#include <fmt/format.h>

#include <numeric>

#include "core/error.hpp"
#include "core/log.hpp"

namespace fabscope::io::h5 {
namespace {

[[noreturn]] void fail(std::string_view what) {
  throw core::Error(core::ExitCode::kFailure, fmt::format("HDF5: {}", what));
}

void checked(herr_t rc, std::string_view what, int /*tag*/) {
  if (rc < 0) fail(what);
}

Handle string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose, "H5Tcopy");
  checked(H5Tset_size(t.id(), H5T_VARIABLE), "H5Tset_size", 0);
  checked(H5Tset_cset(t.id(), H5T_CSET_UTF8), "H5Tset_cset", 0);
  return t;
}

Handle simple_space(const std::vector<hsize_t>& dims,
                    const std::vector<hsize_t>* maxdims = nullptr) {
  return Handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(),
                                 maxdims ? maxdims->data() : nullptr),
                H5Sclose, "H5Screate_simple");
}

void replace_attr(hid_t obj, std::string_view name) {
  const std::string n(name);
  if (H5Aexists(obj, n.c_str()) > 0) checked(H5Adelete(obj, n.c_str()), "H5Adelete " + n, 0);
}

template <typename T>
void write_typed(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type,
                 std::span<const T> data, const std::vector<hsize_t>& dims,
                 const DatasetOptions& opt) {
  const hsize_t n = std::accumulate(dims.begin(), dims.end(), hsize_t{1}, std::multiplies<>());
  if (n != data.size())
    fail(fmt::format("dataset {}: {} values for shape of {}", name, data.size(), n));
  Handle space = simple_space(dims);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "H5Pcreate");
  if (opt.compress && n > 0) {
    std::vector<hsize_t> chunk(dims.size(), 1);
    chunk.back() = std::max<hsize_t>(1, std::min<hsize_t>(dims.back(), 1 << 16));
    checked(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk",
            0);
    checked(H5Pset_deflate(dcpl.id(), 4), "H5Pset_deflate", 0);
  }
  Handle ds(
      H5Dcreate2(loc, name.c_str(), file_type, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
      H5Dclose, "H5Dcreate2 " + name);
  if (n > 0)
    checked(H5Dwrite(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()),
            "H5Dwrite " + name, 0);
  if (!opt.units.empty()) set_attr(ds.id(), "units", opt.units);
}

}  // namespace

Handle::Handle(hid_t id, Closer closer, std::string_view what) : id_(id), closer_(closer) {
  if (id < 0) fail(what);
}

Handle::~Handle() {
  if (id_ >= 0 && closer_ != nullptr && closer_(id_) < 0)
    core::log::warn("HDF5: closing a handle failed");
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::close() {
  if (id_ >= 0 && closer_ != nullptr) {
    const hid_t id = id_;
    id_ = H5I_INVALID_HID;
    if (closer_(id) < 0) fail("closing failed (disk full?)");
  }
}

void silence_library_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle create_file(const std::string& path) {
  return Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                "cannot create " + path);
}

Handle open_file(const std::string& path, bool writable) {
  return Handle(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT),
                H5Fclose, "cannot open " + path);
}

Handle create_group(hid_t loc, const std::string& name) {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose, "H5Pcreate");
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  return Handle(H5Gcreate2(loc, name.c_str(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                "cannot create group " + name);
}

Handle open_group(hid_t loc, const std::string& name) {
  return Handle(H5Gopen2(loc, name.c_str(), H5P_DEFAULT), H5Gclose, "no group " + name);
}

Handle open_dataset(hid_t loc, const std::string& name) {
  return Handle(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose, "no dataset " + name);
}

bool exists(hid_t loc, const std::string& path) {
  if (path.empty() || path == "/") return true;
  // H5Lexists needs every intermediate link to exist; walk the path.
  std::size_t pos = path.front() == '/' ? 1 : 0;
  while (pos <= path.size()) {
    const auto slash = path.find('/', pos);
    const std::string prefix = path.substr(0, slash);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return true;
}

void set_attr(hid_t obj, std::string_view name, std::string_view value) {
  replace_attr(obj, name);
  Handle type = string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
  Handle a(
      H5Acreate2(obj, std::string(name).c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT),
      H5Aclose, fmt::format("H5Acreate2 {}", name));
  const std::string v(value);
  const char* p = v.c_str();
  checked(H5Awrite(a.id(), type.id(), &p), "H5Awrite", 0);
}

void set_attr(hid_t obj, std::string_view name, std::int64_t value) {
  replace_attr(obj, name);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
  Handle a(H5Acreate2(obj, std::string(name).c_str(), H5T_STD_I64LE, space.id(), H5P_DEFAULT,
                      H5P_DEFAULT),
           H5Aclose, fmt::format("H5Acreate2 {}", name));
  checked(H5Awrite(a.id(), H5T_NATIVE_INT64, &value), "H5Awrite", 0);
}

void set_attr(hid_t obj, std::string_view name, double value) {
  replace_attr(obj, name);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
  Handle a(H5Acreate2(obj, std::string(name).c_str(), H5T_IEEE_F64LE, space.id(), H5P_DEFAULT,
                      H5P_DEFAULT),
           H5Aclose, fmt::format("H5Acreate2 {}", name));
  checked(H5Awrite(a.id(), H5T_NATIVE_DOUBLE, &value), "H5Awrite", 0);
}

void set_attr_i8(hid_t obj, std::string_view name, std::int8_t value) {
  replace_attr(obj, name);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose, "H5Screate");
  Handle a(H5Acreate2(obj, std::string(name).c_str(), H5T_STD_I8LE, space.id(), H5P_DEFAULT,
                      H5P_DEFAULT),
           H5Aclose, fmt::format("H5Acreate2 {}", name));
  checked(H5Awrite(a.id(), H5T_NATIVE_INT8, &value), "H5Awrite", 0);
}

std::string get_attr_string(hid_t obj, std::string_view name) {
  Handle a(H5Aopen(obj, std::string(name).c_str(), H5P_DEFAULT), H5Aclose,
           fmt::format("no attribute {}", name));
  Handle type = string_type();
  char* p = nullptr;
  checked(H5Aread(a.id(), type.id(), &p), fmt::format("attribute {} is not a string", name), 0);
  std::string out = p ? p : "";
  H5free_memory(p);
  return out;
}

std::int64_t get_attr_int(hid_t obj, std::string_view name) {
  Handle a(H5Aopen(obj, std::string(name).c_str(), H5P_DEFAULT), H5Aclose,
           fmt::format("no attribute {}", name));
  std::int64_t v = 0;
  checked(H5Aread(a.id(), H5T_NATIVE_INT64, &v),
          fmt::format("attribute {} is not an integer", name), 0);
  return v;
}

double get_attr_double(hid_t obj, std::string_view name) {
  Handle a(H5Aopen(obj, std::string(name).c_str(), H5P_DEFAULT), H5Aclose,
           fmt::format("no attribute {}", name));
  double v = 0;
  checked(H5Aread(a.id(), H5T_NATIVE_DOUBLE, &v), fmt::format("attribute {} is not a number", name),
          0);
  return v;
}

void write(hid_t loc, const std::string& name, std::span<const double> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt) {
  write_typed(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data, dims, opt);
}
void write(hid_t loc, const std::string& name, std::span<const std::int64_t> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt) {
  write_typed(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, data, dims, opt);
}
void write(hid_t loc, const std::string& name, std::span<const std::int32_t> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt) {
  write_typed(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, data, dims, opt);
}
void write(hid_t loc, const std::string& name, std::span<const std::int8_t> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt) {
  write_typed(loc, name, H5T_STD_I8LE, H5T_NATIVE_INT8, data, dims, opt);
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values) ptrs.push_back(v.c_str());
  Handle type = string_type();
  Handle space = simple_space({values.size()});
  Handle ds(
      H5Dcreate2(loc, name.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      H5Dclose, "H5Dcreate2 " + name);
  if (!values.empty())
    checked(H5Dwrite(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()),
            "H5Dwrite " + name, 0);
}

void create_rows(hid_t loc, const std::string& name, hid_t mem_type, hsize_t cols,
                 std::string_view units) {
  (void)create_rows_open(loc, name, mem_type, cols, RowsOptions{.units = units});
}

namespace {
// Test hook (testing::fail_writes_after): the n-th append/element write from now throws, as a full
// disk or a killed writer would, so tests can check what a reader sees of a round cut short.
long g_writes_before_failure = -1;
void count_write(const std::string& name) {
  if (g_writes_before_failure < 0) return;
  if (g_writes_before_failure-- == 0) {
    g_writes_before_failure = -1;
    throw core::Error(core::ExitCode::kFailure, "HDF5: test hook failed the write of " + name);
  }
}
}  // namespace

namespace testing {
void fail_writes_after(long n) { g_writes_before_failure = n; }
}  // namespace testing

void append_rows(hid_t loc, const std::string& name, hid_t mem_type, const void* data,
                 hsize_t rows) {
  if (rows == 0) return;
  Handle ds = open_dataset(loc, name);
  append(ds.id(), name, mem_type, data, rows);
}

Handle vlen_string_type() { return string_type(); }

Handle create_rows_open(hid_t loc, const std::string& name, hid_t mem_type, hsize_t cols,
                        const RowsOptions& opt) {
  const bool one_d = cols == 0;
  std::vector<hsize_t> dims{0, cols};
  std::vector<hsize_t> maxdims{H5S_UNLIMITED, cols};
  const hsize_t row_bytes = H5Tget_size(mem_type) * std::max<hsize_t>(cols, 1);
  hsize_t rows =
      opt.chunk_rows > 0
          ? opt.chunk_rows
          : std::max<hsize_t>(1, std::min<hsize_t>(64, (1 << 16) / std::max<hsize_t>(cols, 1)));
  rows = std::max<hsize_t>(1, std::min<hsize_t>(rows, (hsize_t{1} << 20) / row_bytes));
  std::vector<hsize_t> chunk{rows, std::max<hsize_t>(cols, 1)};
  if (one_d) {
    dims.resize(1);
    maxdims.resize(1);
    chunk.resize(1);
  }
  Handle space = simple_space(dims, &maxdims);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "H5Pcreate");
  checked(H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk", 0);
  if (opt.shuffle) checked(H5Pset_shuffle(dcpl.id()), "H5Pset_shuffle", 0);
  if (opt.deflate > 0)
    checked(H5Pset_deflate(dcpl.id(), static_cast<unsigned>(opt.deflate)), "H5Pset_deflate", 0);
  Handle ds(
      H5Dcreate2(loc, name.c_str(), mem_type, space.id(), H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
      H5Dclose, "H5Dcreate2 " + name);
  if (!opt.units.empty()) set_attr(ds.id(), "units", opt.units);
  return ds;
}

hsize_t rows_of(hid_t ds) {
  Handle space(H5Dget_space(ds), H5Sclose, "H5Dget_space");
  hsize_t dims[2] = {0, 1};
  H5Sget_simple_extent_dims(space.id(), dims, nullptr);
  return dims[0];
}

void set_rows(hid_t ds, const std::string& name, hsize_t rows) {
  Handle space(H5Dget_space(ds), H5Sclose, "H5Dget_space");
  hsize_t dims[2] = {0, 1};
  H5Sget_simple_extent_dims(space.id(), dims, nullptr);
  dims[0] = rows;
  checked(H5Dset_extent(ds, dims), "H5Dset_extent " + name, 0);
}

void flush(hid_t file) { checked(H5Fflush(file, H5F_SCOPE_LOCAL), "H5Fflush (disk full?)", 0); }

void append(hid_t ds_id, const std::string& name, hid_t mem_type, const void* data, hsize_t rows) {
  if (rows == 0) return;
  count_write(name);
  Handle space(H5Dget_space(ds_id), H5Sclose, "H5Dget_space");
  const int ndims = H5Sget_simple_extent_ndims(space.id());
  hsize_t dims[2] = {0, 1};
  H5Sget_simple_extent_dims(space.id(), dims, nullptr);
  const hsize_t new_dims[2] = {dims[0] + rows, dims[1]};
  checked(H5Dset_extent(ds_id, new_dims), "H5Dset_extent " + name, 0);
  Handle fspace(H5Dget_space(ds_id), H5Sclose, "H5Dget_space");
  const hsize_t start[2] = {dims[0], 0};
  const hsize_t count[2] = {rows, dims[1]};
  checked(H5Sselect_hyperslab(fspace.id(), H5S_SELECT_SET, start, nullptr, count, nullptr),
          "H5Sselect_hyperslab", 0);
  Handle mspace = ndims == 1 ? simple_space({rows}) : simple_space({rows, dims[1]});
  checked(H5Dwrite(ds_id, mem_type, mspace.id(), fspace.id(), H5P_DEFAULT, data),
          "H5Dwrite " + name, 0);
}

void overwrite(hid_t ds, const std::string& name, hid_t mem_type, const void* data) {
  checked(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "H5Dwrite " + name, 0);
}

void read_rows(hid_t ds, const std::string& name, hid_t mem_type, hsize_t start, hsize_t rows,
               void* out) {
  if (rows == 0) return;
  Handle fspace(H5Dget_space(ds), H5Sclose, "H5Dget_space");
  const int ndims = H5Sget_simple_extent_ndims(fspace.id());
  hsize_t dims[2] = {0, 1};
  H5Sget_simple_extent_dims(fspace.id(), dims, nullptr);
  const hsize_t first[2] = {start, 0};
  const hsize_t count[2] = {rows, dims[1]};
  checked(H5Sselect_hyperslab(fspace.id(), H5S_SELECT_SET, first, nullptr, count, nullptr),
          "H5Sselect_hyperslab " + name, 0);
  Handle mspace = ndims == 1 ? simple_space({rows}) : simple_space({rows, dims[1]});
  checked(H5Dread(ds, mem_type, mspace.id(), fspace.id(), H5P_DEFAULT, out), "H5Dread " + name, 0);
}

void write_elements(hid_t loc, const std::string& name, hid_t mem_type,
                    const std::vector<hsize_t>& coords, const void* values) {
  const hsize_t n = coords.size() / 2;
  if (n == 0) return;
  count_write(name);
  Handle ds = open_dataset(loc, name);
  Handle fspace(H5Dget_space(ds.id()), H5Sclose, "H5Dget_space");
  checked(H5Sselect_elements(fspace.id(), H5S_SELECT_SET, n, coords.data()), "H5Sselect_elements",
          0);
  Handle mspace = simple_space({n});
  checked(H5Dwrite(ds.id(), mem_type, mspace.id(), fspace.id(), H5P_DEFAULT, values),
          "H5Dwrite " + name, 0);
}

namespace {
template <typename T>
std::vector<T> read_typed(hid_t loc, const std::string& name, hid_t mem_type,
                          std::vector<hsize_t>* dims) {
  Handle ds = open_dataset(loc, name);
  Handle space(H5Dget_space(ds.id()), H5Sclose, "H5Dget_space");
  const int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> d(static_cast<std::size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id(), d.data(), nullptr);
  const hsize_t n = std::accumulate(d.begin(), d.end(), hsize_t{1}, std::multiplies<>());
  std::vector<T> out(n);
  if (n > 0)
    checked(H5Dread(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
            "H5Dread " + name, 0);
  if (dims) *dims = d;
  return out;
}
}  // namespace

std::vector<double> read_doubles(hid_t loc, const std::string& name, std::vector<hsize_t>* dims) {
  return read_typed<double>(loc, name, H5T_NATIVE_DOUBLE, dims);
}

std::vector<std::int64_t> read_ints(hid_t loc, const std::string& name,
                                    std::vector<hsize_t>* dims) {
  return read_typed<std::int64_t>(loc, name, H5T_NATIVE_INT64, dims);
}

std::vector<std::string> read_strings(hid_t loc, const std::string& name) {
  Handle ds = open_dataset(loc, name);
  Handle space(H5Dget_space(ds.id()), H5Sclose, "H5Dget_space");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.id(), &n, nullptr);
  std::vector<char*> ptrs(n, nullptr);
  Handle type = string_type();
  if (n > 0)
    checked(H5Dread(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()),
            "H5Dread " + name, 0);
  std::vector<std::string> out;
  for (char* p : ptrs) {
    out.emplace_back(p ? p : "");
    H5free_memory(p);
  }
  return out;
}

}  // namespace fabscope::io::h5

namespace fabscope::io::h5 {
namespace {
herr_t collect(hid_t /*group*/, const char* name, const H5L_info_t* /*info*/, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}
}  // namespace

std::vector<std::string> list(hid_t loc, const std::string& group) {
  Handle g = open_group(loc, group);
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(g.id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names) < 0)
    fail("H5Literate " + group);
  return names;
}
}  // namespace fabscope::io::h5
