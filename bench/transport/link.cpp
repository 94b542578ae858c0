#include "transport/link.hpp"

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/error.hpp"

namespace fabscope::transport {

bool is_known_verb(std::string_view verb) {
  return verb == "write" || verb == "send" || verb == "read" || verb == "fetch_add" || verb == "cmp_swap";
}

}  // namespace fabscope::transport
