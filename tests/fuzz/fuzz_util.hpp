// Shared by the libFuzzer targets: the input as text, and the one place that says which
// exceptions are expected. A parser that refuses its input throws core::Error (UsageError for bad
// text); anything else escaping it (std::out_of_range, std::bad_alloc, ...) is a bug, so it is
// left to propagate and libFuzzer reports it as a crash ("deadly signal" via std::terminate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.hpp"

namespace fabscope::fuzz {

inline std::string as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};  // NOLINT: libFuzzer hands bytes
}

// Runs `parse`; swallows only what a parser is documented to throw for bad input.
template <typename F>
void expect_only_usage_errors(F&& parse) {
  try {
    parse();
  } catch (const core::Error&) {
  }
}

}  // namespace fabscope::fuzz
