// Configuration evidence (host_config.hpp): sysfs reads, the gather to rank 0, /hosts columns and
// the doctor's checks.
#include "suites/host_config.hpp"

#include <fmt/format.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/files.hpp"
#include "core/strings.hpp"
#include "verbs/verbs.hpp"

namespace fabscope::suites {
namespace {

namespace fs = std::filesystem;

constexpr char kField = '\x1f';   // unit separator: fields of a port or host
constexpr char kRecord = '\x1e';  // record separator: the host, then its ports

double leading_number(const std::string& s) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    return used > 0 && std::isfinite(v) && v > 0 ? v : NAN;
  } catch (const std::exception&) {
    return NAN;
  }
}

int leading_int(const std::string& s, int fallback) {
  try {
    return std::stoi(s);
  } catch (const std::exception&) {
    return fallback;
  }
}

// sysfs rate: "200 Gb/sec (4X HDR)", "25 Gb/sec (1X EDR)", "2.5 Gb/sec (1X SDR)".
void parse_rate(const std::string& text, PortConfig& p) {
  p.rate_gbps = leading_number(text);
  const auto open = text.find('(');
  const auto close = text.find(')', open == std::string::npos ? 0 : open);
  if (open == std::string::npos || close == std::string::npos) return;
  const std::string inside = text.substr(open + 1, close - open - 1);
  const auto space = inside.find(' ');
  p.width = inside.substr(0, space);
  if (space != std::string::npos) p.speed = inside.substr(space + 1);
}

std::string after_colon(const std::string& s) {
  const auto c = s.find(": ");
  return c == std::string::npos ? s : s.substr(c + 2);
}

std::vector<int> affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

// CAP_IPC_LOCK (capability 14) in the effective set (/proc/self/status CapEff, hex).
bool has_cap_ipc_lock() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    try {
      return ((std::stoull(line.substr(7), nullptr, 16) >> 14) & 1U) != 0;
    } catch (const std::exception&) {
      return false;
    }
  }
  return false;
}

std::string join_ints(const std::vector<int>& v, const char* sep = ",") {
  std::string out;
  for (const int x : v) out += (out.empty() ? "" : sep) + std::to_string(x);
  return out;
}

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:g}", v) : std::string(); }

std::string bytes_text(std::int64_t b) {
  if (b >= (1LL << 30) && b % (1LL << 30) == 0) return fmt::format("{} GiB", b >> 30);
  if (b >= (1LL << 20) && b % (1LL << 20) == 0) return fmt::format("{} MiB", b >> 20);
  if (b >= (1LL << 10) && b % (1LL << 10) == 0) return fmt::format("{} KiB", b >> 10);
  return fmt::format("{} bytes", b);
}

}  // namespace

std::vector<int> parse_cpulist(const std::string& text) {
  std::vector<int> out;
  for (const auto piece : core::split(text, ',')) {
    const std::string p(piece);
    const auto dash = p.find('-');
    const int lo = leading_int(p.substr(0, dash), -1);
    const int hi = dash == std::string::npos ? lo : leading_int(p.substr(dash + 1), -1);
    if (lo < 0 || hi < lo || hi - lo > 1 << 16) continue;
    for (int c = lo; c <= hi; ++c) out.push_back(c);
  }
  return out;
}

std::vector<int> numa_nodes_of(const std::string& sys_root, const std::vector<int>& cpus) {
  std::vector<int> out;
  std::error_code ec;
  const std::set<int> mine(cpus.begin(), cpus.end());
  for (const auto& e : fs::directory_iterator(fs::path(sys_root) / "devices/system/node", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("node", 0) != 0) continue;
    const int node = leading_int(name.substr(4), -1);
    if (node < 0) continue;
    for (const int c : parse_cpulist(core::read_first_line(e.path() / "cpulist"))) {
      if (mine.contains(c)) {
        out.push_back(node);
        break;
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

HostConfig read_host_config(const std::string& sys_root, const std::vector<int>& cpus) {
  HostConfig h;
  h.cpu_numa_nodes = numa_nodes_of(sys_root, cpus);
  std::error_code ec;
  const fs::path root = fs::path(sys_root) / "class/infiniband";
  for (const auto& dev : fs::directory_iterator(root, ec)) {
    const fs::path ports = dev.path() / "ports";
    const fs::path pci = dev.path() / "device";
    std::error_code e2;
    std::string driver;
    if (const fs::path link = fs::read_symlink(pci / "driver", e2); !e2)
      driver = link.filename().string();
    for (const auto& port : fs::directory_iterator(ports, e2)) {
      PortConfig p;
      p.device = dev.path().filename().string();
      p.port = leading_int(port.path().filename().string(), 0);
      if (p.port <= 0) continue;
      p.link_layer = core::read_first_line(port.path() / "link_layer");
      p.state = after_colon(core::read_first_line(port.path() / "state"));
      parse_rate(core::read_first_line(port.path() / "rate"), p);
      p.fw_ver = core::read_first_line(dev.path() / "fw_ver");
      p.driver = driver;
      p.pcie_speed_gts = leading_number(core::read_first_line(pci / "current_link_speed"));
      p.pcie_max_speed_gts = leading_number(core::read_first_line(pci / "max_link_speed"));
      p.pcie_width = leading_int(core::read_first_line(pci / "current_link_width"), 0);
      p.pcie_max_width = leading_int(core::read_first_line(pci / "max_link_width"), 0);
      p.numa_node = leading_int(core::read_first_line(pci / "numa_node"), -1);
      h.ports.push_back(std::move(p));
    }
  }
  std::sort(h.ports.begin(), h.ports.end(), [](const PortConfig& a, const PortConfig& b) {
    return a.device != b.device ? a.device < b.device : a.port < b.port;
  });
  return h;
}

HostConfig local_host_config(const std::string& sys_root) {
  HostConfig h = read_host_config(sys_root, affinity());
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  h.hostname = name;
  utsname u{};
  if (uname(&u) == 0) h.kernel_release = u.release;
  rlimit lim{};
  if (getrlimit(RLIMIT_MEMLOCK, &lim) == 0)
    h.memlock_bytes = lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<std::int64_t>(lim.rlim_cur);
  h.cap_ipc_lock = has_cap_ipc_lock();
  if (sys_root == "/sys" && !h.ports.empty()) {
    for (const auto& m : verbs::query_port_mtus()) {
      for (auto& p : h.ports) {
        if (p.device == m.device && p.port == m.port) {
          p.active_mtu_bytes = m.active_mtu_bytes;
          p.max_mtu_bytes = m.max_mtu_bytes;
        }
      }
    }
  }
  return h;
}

std::string encode(const HostConfig& h) {
  std::string out = fmt::format("{}{}{}{}{}{}{}{}{}{}{}", h.rank, kField, h.hostname, kField,
                                h.kernel_release, kField, join_ints(h.cpu_numa_nodes), kField,
                                h.memlock_bytes, kField, h.cap_ipc_lock ? 1 : 0);
  for (const auto& p : h.ports) {
    out += kRecord;
    const std::vector<std::string> f = {p.device,
                                        std::to_string(p.port),
                                        p.link_layer,
                                        p.state,
                                        num(p.rate_gbps),
                                        p.width,
                                        p.speed,
                                        std::to_string(p.active_mtu_bytes),
                                        std::to_string(p.max_mtu_bytes),
                                        p.fw_ver,
                                        p.driver,
                                        num(p.pcie_speed_gts),
                                        num(p.pcie_max_speed_gts),
                                        std::to_string(p.pcie_width),
                                        std::to_string(p.pcie_max_width),
                                        std::to_string(p.numa_node)};
    for (std::size_t i = 0; i < f.size(); ++i) {
      if (i) out += kField;
      // sysfs strings hold no control characters; keep the separators out whatever they hold
      for (const char c : f[i]) out += (c == kField || c == kRecord) ? ' ' : c;
    }
  }
  return out;
}

HostConfig decode(const std::string& text) {
  HostConfig h;
  const auto records = core::split(text, kRecord);
  std::vector<std::string> f;
  const auto fields = [&f](std::string_view r, std::size_t n) {
    f.clear();
    for (const auto x : core::split(r, kField)) f.emplace_back(x);
    f.resize(n);
  };
  if (records.empty()) return h;
  fields(records[0], 6);
  h.rank = leading_int(f[0], 0);
  h.hostname = f[1];
  h.kernel_release = f[2];
  h.cpu_numa_nodes = parse_cpulist(f[3]);
  try {
    h.memlock_bytes = f[4].empty() ? 0 : std::stoll(f[4]);
  } catch (const std::exception&) {
    h.memlock_bytes = 0;
  }
  h.cap_ipc_lock = f[5] == "1";
  for (std::size_t r = 1; r < records.size(); ++r) {
    fields(records[r], 16);
    PortConfig p;
    p.device = f[0];
    p.port = leading_int(f[1], 0);
    p.link_layer = f[2];
    p.state = f[3];
    p.rate_gbps = leading_number(f[4]);
    p.width = f[5];
    p.speed = f[6];
    p.active_mtu_bytes = leading_int(f[7], 0);
    p.max_mtu_bytes = leading_int(f[8], 0);
    p.fw_ver = f[9];
    p.driver = f[10];
    p.pcie_speed_gts = leading_number(f[11]);
    p.pcie_max_speed_gts = leading_number(f[12]);
    p.pcie_width = leading_int(f[13], 0);
    p.pcie_max_width = leading_int(f[14], 0);
    p.numa_node = leading_int(f[15], -1);
    h.ports.push_back(std::move(p));
  }
  return h;
}

std::vector<HostConfig> gather_host_configs(const runtime::Comm& comm,
                                            const std::string& sys_root) {
  HostConfig mine = local_host_config(sys_root);
  mine.rank = comm.rank();
  std::vector<HostConfig> out;
  for (const auto& s : comm.gather_strings(encode(mine))) out.push_back(decode(s));
  return out;
}

void write_host_configs(io::ResultsWriter& out, const std::vector<HostConfig>& hosts,
                        const std::vector<std::string>& problems) {
  std::vector<std::int64_t> rank, port, amtu, mmtu, pw, pmw, numa, memlock, cap;
  std::vector<double> rate, ps, pms;
  std::vector<std::string> dev, ll, state, width, speed, fw, driver, nodes;
  for (const auto& h : hosts) {
    nodes.push_back(join_ints(h.cpu_numa_nodes));
    memlock.push_back(h.memlock_bytes);
    cap.push_back(h.cap_ipc_lock ? 1 : 0);
    for (const auto& p : h.ports) {
      rank.push_back(h.rank);
      dev.push_back(p.device);
      port.push_back(p.port);
      ll.push_back(p.link_layer);
      state.push_back(p.state);
      rate.push_back(p.rate_gbps);
      width.push_back(p.width);
      speed.push_back(p.speed);
      amtu.push_back(p.active_mtu_bytes);
      mmtu.push_back(p.max_mtu_bytes);
      fw.push_back(p.fw_ver);
      driver.push_back(p.driver);
      ps.push_back(p.pcie_speed_gts);
      pms.push_back(p.pcie_max_speed_gts);
      pw.push_back(p.pcie_width);
      pmw.push_back(p.pcie_max_width);
      numa.push_back(p.numa_node);
    }
  }
  const std::vector<std::uint64_t> n_hosts = {hosts.size()};
  out.write_strings("/hosts/cpu_numa_nodes", nodes);
  out.write_ints("/hosts/memlock_bytes", memlock, n_hosts, "bytes");
  out.write_ints("/hosts/cap_ipc_lock", cap, n_hosts, "1");
  out.write_strings("/hosts/config_problems", problems);
  const std::vector<std::uint64_t> n = {rank.size()};
  const std::string g = "/hosts/ports/";
  out.write_ints(g + "rank", rank, n, "1");
  out.write_strings(g + "device", dev);
  out.write_ints(g + "port", port, n, "1");
  out.write_strings(g + "link_layer", ll);
  out.write_strings(g + "state", state);
  out.write_doubles(g + "rate_gbps", rate, n, "Gb/s");
  out.write_strings(g + "width", width);
  out.write_strings(g + "speed", speed);
  out.write_ints(g + "active_mtu_bytes", amtu, n, "bytes");
  out.write_ints(g + "max_mtu_bytes", mmtu, n, "bytes");
  out.write_strings(g + "fw_ver", fw);
  out.write_strings(g + "driver", driver);
  out.write_doubles(g + "pcie_speed_gts", ps, n, "GT/s");
  out.write_doubles(g + "pcie_max_speed_gts", pms, n, "GT/s");
  out.write_ints(g + "pcie_width", pw, n, "lanes");
  out.write_ints(g + "pcie_max_width", pmw, n, "lanes");
  out.write_ints(g + "numa_node", numa, n, "1");
}

std::string Problem::line() const {
  std::string where = host;
  if (!device.empty()) where += " " + device + (port > 0 ? fmt::format(" port {}", port) : "");
  if (rank >= 0) where += fmt::format(" rank {}", rank);
  return where + ": " + what;
}

namespace {

// One value of a port (or host) across hosts: which hosts hold which value.
struct Tally {
  std::map<std::string, std::vector<std::string>> hosts_of;  // value -> hosts
  std::size_t total = 0;
  void add(const std::string& value, const std::string& host) {
    hosts_of[value].push_back(host);
    ++total;
  }
  // The value more than half of the hosts hold; "" when none does.
  [[nodiscard]] std::string majority() const {
    for (const auto& [v, hs] : hosts_of)
      if (2 * hs.size() > total) return v;
    return "";
  }
};

std::string list_hosts(const std::vector<std::string>& hs, std::size_t max = 8) {
  std::string out;
  for (std::size_t i = 0; i < hs.size() && i < max; ++i) out += (i ? "," : "") + hs[i];
  if (hs.size() > max) out += fmt::format(",... ({} hosts)", hs.size());
  return out;
}

// Cross-host comparison of one field: outliers against a majority, or one line when the hosts
// split with no majority. `describe(value, majority, count_of_majority, total)` words an outlier.
template <class Describe>
void compare(const Tally& t, const std::string& device, int port, const std::string& what,
             Describe describe, std::vector<Problem>& out) {
  if (t.total < 2 || t.hosts_of.size() < 2) return;
  const std::string major = t.majority();
  if (major.empty()) {
    std::string values;
    for (const auto& [v, hs] : t.hosts_of)
      values += (values.empty() ? "" : "; ") + fmt::format("{} on {}", v, list_hosts(hs));
    std::vector<std::string> all;
    for (const auto& [v, hs] : t.hosts_of) all.insert(all.end(), hs.begin(), hs.end());
    std::sort(all.begin(), all.end());
    out.push_back({list_hosts(all), device, port, -1,
                   fmt::format("{} differs between hosts with no majority: {}", what, values)});
    return;
  }
  const std::size_t k = t.hosts_of.at(major).size();
  for (const auto& [v, hs] : t.hosts_of) {
    if (v == major) continue;
    for (const auto& h : hs) out.push_back({h, device, port, -1, describe(v, major, k, t.total)});
  }
}

}  // namespace

std::vector<Problem> check_hosts(const std::vector<HostConfig>& hosts,
                                 const DoctorOptions& options) {
  std::vector<Problem> local, cross;
  // One entry per host (its first rank): ports are the host's; binding and limits are per rank.
  std::vector<const HostConfig*> unique;
  std::set<std::string> seen;
  for (const auto& h : hosts)
    if (seen.insert(h.hostname).second) unique.push_back(&h);

  for (const auto* h : unique) {
    if (h->ports.empty()) {
      local.push_back(
          {h->hostname, "", 0, -1, "no RDMA devices (sysfs class/infiniband is empty)"});
      continue;
    }
    for (const auto& p : h->ports) {
      const auto add = [&](std::string what) {
        local.push_back({h->hostname, p.device, p.port, -1, std::move(what)});
      };
      if (p.state != "ACTIVE")
        add(fmt::format("state {} (expected ACTIVE)", p.state.empty() ? "unknown" : p.state));
      if (p.pcie_width > 0 && p.pcie_max_width > 0 && p.pcie_width < p.pcie_max_width)
        add(fmt::format("PCIe x{} of x{}", p.pcie_width, p.pcie_max_width));
      if (std::isfinite(p.pcie_speed_gts) && std::isfinite(p.pcie_max_speed_gts) &&
          p.pcie_speed_gts < p.pcie_max_speed_gts)
        add(fmt::format("PCIe {:g} of {:g} GT/s", p.pcie_speed_gts, p.pcie_max_speed_gts));
      if (p.state == "ACTIVE" && options.link_rate_gbps > 0 && std::isfinite(p.rate_gbps) &&
          p.rate_gbps < 0.99 * options.link_rate_gbps)
        add(fmt::format("port at {:g} of {:g} Gb/s (--link-rate)", p.rate_gbps,
                        options.link_rate_gbps));
    }
  }
  // Per rank: CPU binding against the NUMA nodes of the host's active NICs, the memlock limit.
  std::map<std::string, const HostConfig*> first;
  for (const auto* h : unique) first[h->hostname] = h;
  for (const auto& h : hosts) {
    const auto& ports = first.at(h.hostname)->ports;
    std::vector<const PortConfig*> placed;
    for (const auto& p : ports)
      if (p.state == "ACTIVE" && p.numa_node >= 0) placed.push_back(&p);
    if (!h.cpu_numa_nodes.empty() && !placed.empty()) {
      const bool near = std::any_of(placed.begin(), placed.end(), [&](const PortConfig* p) {
        return std::find(h.cpu_numa_nodes.begin(), h.cpu_numa_nodes.end(), p->numa_node) !=
               h.cpu_numa_nodes.end();
      });
      if (!near) {
        std::string nics;
        for (const auto* p : placed)
          nics +=
              (nics.empty() ? "" : ", ") + fmt::format("{} on node {}", p->device, p->numa_node);
        local.push_back({h.hostname, "", 0, h.rank,
                         fmt::format("bound to CPUs on NUMA node {}, but its RDMA ports are not "
                                     "({}): bind ranks next to their NIC",
                                     join_ints(h.cpu_numa_nodes, ","), nics)});
      }
    }
    if (!h.ports.empty() && h.memlock_bytes >= 0 && !h.cap_ipc_lock) {
      local.push_back({h.hostname, "", 0, h.rank,
                       fmt::format("memlock limit {} (RDMA memory registration wants unlimited: "
                                   "ulimit -l unlimited, or memlock in "
                                   "/etc/security/limits.conf)",
                                   bytes_text(h.memlock_bytes))});
    }
  }
  // Across hosts: the same port (device name and number) on every host, and the kernel.
  std::map<std::pair<std::string, int>, std::map<std::string, Tally>> fields;
  Tally kernel;
  for (const auto* h : unique) {
    if (!h->ports.empty() && !h->kernel_release.empty()) kernel.add(h->kernel_release, h->hostname);
    for (const auto& p : h->ports) {
      auto& f = fields[{p.device, p.port}];
      if (!p.fw_ver.empty()) f["firmware"].add(p.fw_ver, h->hostname);
      if (!p.driver.empty()) f["driver"].add(p.driver, h->hostname);
      if (p.state != "ACTIVE") continue;
      if (p.active_mtu_bytes > 0)
        f["active MTU"].add(std::to_string(p.active_mtu_bytes), h->hostname);
      if (std::isfinite(p.rate_gbps)) f["rate"].add(num(p.rate_gbps), h->hostname);
      if (!p.width.empty()) f["width"].add(p.width, h->hostname);
    }
  }
  compare(
      kernel, "", 0, "kernel",
      [](const std::string& v, const std::string& m, std::size_t k, std::size_t n) {
        return fmt::format("kernel {}, {} of {} hosts run {}", v, k, n, m);
      },
      cross);
  for (const auto& [key, f] : fields) {
    const auto& [device, port] = key;
    for (const auto& [what, tally] : f) {
      const std::string name = what;
      compare(
          tally, device, port, what == "rate" ? "port rate (Gb/s)" : what,
          [&name](const std::string& v, const std::string& m, std::size_t k, std::size_t n) {
            if (name == "rate")
              return fmt::format("port at {} of {} Gb/s ({} of {} hosts run {} Gb/s)", v, m, k, n,
                                 m);
            if (name == "active MTU")
              return fmt::format("active MTU {} bytes, {} of {} hosts have {}", v, k, n, m);
            if (name == "width")
              return fmt::format("link width {}, {} of {} hosts have {}", v, k, n, m);
            return fmt::format("{} {}, {} of {} hosts have {}", name, v, k, n, m);
          },
          cross);
    }
  }
  // Host by host (in rank order of each host's first rank), local problems before cross-host ones.
  std::map<std::string, std::size_t> order;
  for (const auto* h : unique) order.emplace(h->hostname, order.size());
  std::vector<Problem> out = std::move(local);
  out.insert(out.end(), cross.begin(), cross.end());
  std::stable_sort(out.begin(), out.end(), [&order](const Problem& a, const Problem& b) {
    const auto oa = order.contains(a.host) ? order.at(a.host) : order.size();
    const auto ob = order.contains(b.host) ? order.at(b.host) : order.size();
    return oa < ob;
  });
  return out;
}

}  // namespace fabscope::suites
