#include "core/error.hpp"

#include <fmt/format.h>

#include <cstring>

namespace fabscope::core {

std::string errno_message(const std::string& call, int err) {
  return fmt::format("{}: {} (errno {})", call, std::strerror(err), err);
}

}  // namespace fabscope::core
