// Logging to stderr with the rank's identity, so a message from a 1000-rank job names its source.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace fabscope::core::log {

// Set once the MPI rank and host are known; before that messages carry no prefix.
void set_identity(int rank, std::string host);
[[nodiscard]] std::string prefix();

void write(std::string_view level, std::string_view message);

template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write("warning", fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write("error", fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace fabscope::core::log
