// RAII over the HDF5 C API, private to bench/io (no other module includes hdf5.h).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fabscope::io::h5 {

// One HDF5 identifier and the function that closes it. Destructors never throw; they log.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer, std::string_view what);
  ~Handle();
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  [[nodiscard]] hid_t id() const noexcept { return id_; }
  // Closes now and reports a failure as an exception (the destructor cannot).
  void close();

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Turns off HDF5's own error printing; fabscope reports errors itself. Call once per process.
void silence_library_errors();

[[nodiscard]] Handle create_file(const std::string& path);
[[nodiscard]] Handle open_file(const std::string& path, bool writable);
[[nodiscard]] Handle create_group(hid_t loc, const std::string& name);
[[nodiscard]] Handle open_group(hid_t loc, const std::string& name);
[[nodiscard]] Handle open_dataset(hid_t loc, const std::string& name);
[[nodiscard]] bool exists(hid_t loc, const std::string& path);

void set_attr(hid_t obj, std::string_view name, std::string_view value);
void set_attr(hid_t obj, std::string_view name, std::int64_t value);
void set_attr(hid_t obj, std::string_view name, double value);
void set_attr_i8(hid_t obj, std::string_view name, std::int8_t value);
[[nodiscard]] std::string get_attr_string(hid_t obj, std::string_view name);
[[nodiscard]] std::int64_t get_attr_int(hid_t obj, std::string_view name);
[[nodiscard]] double get_attr_double(hid_t obj, std::string_view name);

struct DatasetOptions {
  std::string_view units;  // empty: no units attribute
  bool compress = false;   // chunked (one row of the last dimension per chunk) + gzip
};

// Fixed-size datasets from a flat row-major buffer of the given dims.
void write(hid_t loc, const std::string& name, std::span<const double> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt = {});
void write(hid_t loc, const std::string& name, std::span<const std::int64_t> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt = {});
void write(hid_t loc, const std::string& name, std::span<const std::int32_t> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt = {});
void write(hid_t loc, const std::string& name, std::span<const std::int8_t> data,
           const std::vector<hsize_t>& dims, const DatasetOptions& opt = {});
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);

// Unlimited first dimension (rows of `cols` values; cols 0: a 1-D dataset), chunked and compressed.
void create_rows(hid_t loc, const std::string& name, hid_t mem_type, hsize_t cols,
                 std::string_view units);

struct RowsOptions {
  std::string_view units{};  // empty: no units attribute
  hsize_t chunk_rows = 0;    // rows per chunk (0: as create_rows); capped at about 1 MiB a chunk
  int deflate = 4;           // gzip level (0: none)
  bool shuffle = false;      // byte shuffle before gzip (numbers of a column compress better)
};
// create_rows, returning the open dataset for repeated appends (append below). mem_type is also
// the file type; a string type makes a column of variable-length strings.
[[nodiscard]] Handle create_rows_open(hid_t loc, const std::string& name, hid_t mem_type,
                                      hsize_t cols, const RowsOptions& opt);
// Appends rows to an open extendible dataset (counted by testing::fail_writes_after).
void append(hid_t ds, const std::string& name, hid_t mem_type, const void* data, hsize_t rows);
// Rewrites a whole fixed-size dataset in place (data holds all its elements).
void overwrite(hid_t ds, const std::string& name, hid_t mem_type, const void* data);
// Reads rows [start, start + rows) of a 1-D or 2-D dataset into out (rows x cols, row-major).
void read_rows(hid_t ds, const std::string& name, hid_t mem_type, hsize_t start, hsize_t rows,
               void* out);
// Sets the first dimension of an extendible dataset (cuts rows of a round cut short).
void set_rows(hid_t ds, const std::string& name, hsize_t rows);
// The first dimension of a dataset.
[[nodiscard]] hsize_t rows_of(hid_t ds);
// A variable-length UTF-8 string type (for create_rows_open / append of std::string rows, pass
// const char* pointers as data).
[[nodiscard]] Handle vlen_string_type();
// Writes the file's metadata and cached chunks to disk (the file stays valid if the writer dies).
void flush(hid_t file);
// Appends `rows` rows (data is rows x cols, row-major) to a dataset made by create_rows.
void append_rows(hid_t loc, const std::string& name, hid_t mem_type, const void* data,
                 hsize_t rows);

// Tests only: the n-th append_rows / write_elements call from now (0 = the next) throws core::Error
// instead of writing; -1 turns it off.
namespace testing {
void fail_writes_after(long n);
}  // namespace testing

// Writes single elements of a 2-D dataset: coords holds (row, col) pairs.
void write_elements(hid_t loc, const std::string& name, hid_t mem_type,
                    const std::vector<hsize_t>& coords, const void* values);

// Reads a whole dataset as doubles / int64 / strings; dims receives its shape.
[[nodiscard]] std::vector<double> read_doubles(hid_t loc, const std::string& name,
                                               std::vector<hsize_t>* dims = nullptr);
[[nodiscard]] std::vector<std::int64_t> read_ints(hid_t loc, const std::string& name,
                                                  std::vector<hsize_t>* dims = nullptr);
[[nodiscard]] std::vector<std::string> read_strings(hid_t loc, const std::string& name);

}  // namespace fabscope::io::h5

namespace fabscope::io::h5 {
// Names of the links in a group, in name order.
[[nodiscard]] std::vector<std::string> list(hid_t loc, const std::string& group);
}  // namespace fabscope::io::h5
