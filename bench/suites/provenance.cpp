// Who ran where: each rank describes its host, rank 0 gathers the descriptions for /hosts.
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>

#include "core/strings.hpp"
#include "runtime/comm.hpp"
#include "runtime/launcher.hpp"
#include "suites/suite.hpp"
#include "verbs/sysfs.hpp"

namespace fabscope::suites {
namespace {

constexpr char kSep = '\x1f';  // unit separator: cannot appear in the fields

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto c = line.find(": ");
      return c == std::string::npos ? line : line.substr(c + 2);
    }
  }
  return "";
}

std::string kernel() {
  utsname u{};
  if (uname(&u) != 0) return "";
  return std::string(u.sysname) + " " + u.release + " " + u.version;
}

}  // namespace

std::vector<io::HostRecord> gather_hosts(const runtime::Comm& comm) {
  // Under Slurm the node name (SLURMD_NODENAME) names the host; gethostname() goes last.
  const std::string mine = runtime::node_name() + kSep + kernel() + kSep + cpu_model() + kSep +
                           runtime::Session::library_version() + kSep + verbs::rdma_core_version() +
                           kSep + verbs::describe_ports(verbs::scan_ports()) + kSep +
                           runtime::system_hostname();
  std::vector<io::HostRecord> out;
  for (const auto& s : comm.gather_strings(mine)) {
    std::vector<std::string> f;
    for (const auto field : core::split(s, kSep)) f.emplace_back(field);
    f.resize(7);
    out.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6]});
  }
  return out;
}

}  // namespace fabscope::suites
