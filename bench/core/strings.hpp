// Splitting text the way fabscope's record formats and line-based files need it.
#pragma once

#include <string_view>
#include <vector>

namespace fabscope::core {

// The pieces of `text` between `sep`s. A trailing separator does not add an empty last piece
// ("a\nb\n" -> {"a", "b"}); empty pieces inside are kept ("a,,b" -> {"a", "", "b"}).
[[nodiscard]] inline std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace fabscope::core
