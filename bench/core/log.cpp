#include "core/log.hpp"

#include <cstdio>
#include <ctime>

#include "core/clock.hpp"

namespace fabscope::core {
namespace log {
namespace {
std::string g_prefix;
}

void set_identity(int rank, std::string host) {
  g_prefix = fmt::format("[rank {} {}] ", rank, host);
}

std::string prefix() { return g_prefix; }

void write(std::string_view level, std::string_view message) {
  fmt::print(stderr, "fabscope: {}{}: {}\n", g_prefix, level, message);
  std::fflush(stderr);
}

}  // namespace log

std::string utc_now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace fabscope::core
