// Filling datasets step by step, for benchmarks that keep the file valid after every completed
// step (shift, congestion): preallocate with ResultsWriter::write_doubles (NaN), then overwrite
// rows or single cells as steps complete. Each call opens the file, writes and closes it, like
// ResultsWriter.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/results.hpp"

namespace fabscope::io {

// Overwrites rows [first_row, first_row + n) along the first dimension of an existing float64
// dataset; `data` holds n whole rows (row-major).
void write_rows(const ResultsWriter& out, const std::string& dataset, std::span<const double> data,
                std::uint64_t first_row);

// Overwrites single cells of an existing 2-D float64 dataset: `coords` holds (row, col) pairs.
void write_cells(const ResultsWriter& out, const std::string& dataset,
                 const std::vector<std::uint64_t>& coords, std::span<const double> values);

// A float64 attribute on an existing group or dataset (ResultsWriter::set_attr has strings and
// int64).
void set_attr_double(const ResultsWriter& out, const std::string& object, const std::string& name,
                     double value);

}  // namespace fabscope::io
