#include "topology/local.hpp"

#include <fmt/format.h>
#include <hwloc.h>
#include <infiniband/verbs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <memory>
#include <type_traits>
#include <unordered_map>

#include "core/c_array.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/strings.hpp"

namespace fabscope::topology {
namespace {

namespace fs = std::filesystem;

template <typename T>
bool to_num(std::string_view s, T& v, int base = 10) {
  if (base == 16 && s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  std::from_chars_result r{};
  if constexpr (std::is_floating_point_v<T>) {
    r = std::from_chars(s.data(), s.data() + s.size(), v);
  } else {
    r = std::from_chars(s.data(), s.data() + s.size(), v, base);
  }
  return r.ec == std::errc{} && r.ptr == s.data() + s.size() && !s.empty();
}

std::uint64_t hex_groups(std::string_view s) {  // "0002:c903:0043:e6a0" -> 0x0002c9030043e6a0
  std::string h;
  for (const char c : s) {
    if (c != ':') h += c;
  }
  std::uint64_t v = 0;
  return to_num(h, v, 16) ? v : 0;
}

std::vector<std::string> list_dir(const fs::path& p) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  std::sort(out.begin(), out.end(), natural_less);
  return out;
}

bool looks_like_pci(std::string_view s) {  // dddd:bb:dd.f
  return s.size() == 12 && s[4] == ':' && s[7] == ':' && s[10] == '.';
}

struct HwlocTopology {
  hwloc_topology_t t = nullptr;
  HwlocTopology() {
    if (hwloc_topology_init(&t) != 0) {
      throw core::Error(core::ExitCode::kFailure,
                        core::errno_message("hwloc_topology_init", errno));
    }
  }
  ~HwlocTopology() {
    if (t != nullptr) hwloc_topology_destroy(t);
  }
  HwlocTopology(const HwlocTopology&) = delete;
  HwlocTopology& operator=(const HwlocTopology&) = delete;
};

// The same owner type as verbs::DeviceList (bench/verbs, which topology may not use).
using DeviceList = core::CArray<ibv_device*, ibv_free_device_list>;

DeviceList device_list() {
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  return {list, static_cast<std::size_t>(std::max(n, 0))};
}

struct ContextCloser {
  void operator()(ibv_context* c) const noexcept { ibv_close_device(c); }
};

void hwloc_part(LocalHost& h, std::map<std::string, std::pair<int, std::string>>& osdevs) {
  HwlocTopology topo;
  hwloc_topology_set_io_types_filter(topo.t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  // NIC locality needs the PCI tree and the OS devices, which hwloc's Linux backend reads from
  // sysfs by itself. The GPU plugins would dlopen OpenGL/OpenCL/CUDA stacks (slow; some start
  // threads that outlive their dlclose) and the `pci` plugin uses libpciaccess, which leaks its
  // PCI-id database; none of them adds anything here.
  for (const char* c : {"pci", "gl", "opencl", "cuda", "nvml", "rsmi", "levelzero"}) {
    (void)hwloc_topology_set_components(topo.t, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, c);
  }
  if (hwloc_topology_load(topo.t) != 0) {
    h.notes += core::errno_message("hwloc_topology_load", errno) + "; ";
    return;
  }
  h.numa_nodes = std::max(1, hwloc_get_nbobjs_by_type(topo.t, HWLOC_OBJ_NUMANODE));
  h.cores = hwloc_get_nbobjs_by_type(topo.t, HWLOC_OBJ_CORE);
  h.pus = hwloc_get_nbobjs_by_type(topo.t, HWLOC_OBJ_PU);
  for (hwloc_obj_t os = hwloc_get_next_osdev(topo.t, nullptr); os != nullptr;
       os = hwloc_get_next_osdev(topo.t, os)) {
    if (os->attr->osdev.type != HWLOC_OBJ_OSDEV_OPENFABRICS || os->name == nullptr) continue;
    int numa = -1;
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo.t, os);
    if (anc != nullptr && anc->nodeset != nullptr && hwloc_bitmap_weight(anc->nodeset) == 1) {
      numa = hwloc_bitmap_first(anc->nodeset);
    }
    std::string pci;
    for (hwloc_obj_t p = os->parent; p != nullptr; p = p->parent) {
      if (p->type == HWLOC_OBJ_PCI_DEVICE) {
        pci = fmt::format("{:04x}:{:02x}:{:02x}.{:x}", p->attr->pcidev.domain, p->attr->pcidev.bus,
                          p->attr->pcidev.dev, p->attr->pcidev.func);
        break;
      }
    }
    osdevs[os->name] = {numa, pci};
  }
}

std::string esc(std::string_view s) {
  std::string o;
  for (const char c : s) {
    if (c == ' ' || c == '%' || c == '\n' || c == '=' || c == '\t')
      o += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    else
      o += c;
  }
  return o.empty() ? "%" : o;  // "%" alone = empty
}

std::string unesc(std::string_view s) {
  if (s == "%") return {};
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    unsigned v = 0;
    if (s[i] == '%' && i + 2 < s.size() && to_num(s.substr(i + 1, 2), v, 16)) {
      o += static_cast<char>(v);
      i += 2;
    } else {
      o += s[i];
    }
  }
  return o;
}

}  // namespace

std::pair<double, int> parse_sysfs_rate(std::string_view text) {
  double rate = 0;
  int width = 0;
  const auto sp = text.find(' ');
  if (sp == std::string_view::npos) return {0, 0};
  const auto [p, ec] = std::from_chars(text.data(), text.data() + sp, rate);
  if (ec != std::errc{}) return {0, 0};
  const auto par = text.find('(');
  if (par != std::string_view::npos) {
    const auto x = text.find_first_of("Xx", par);
    if (x != std::string_view::npos) (void)to_num(text.substr(par + 1, x - par - 1), width);
  }
  return {rate, width};
}

LocalHost discover_local(const LocalOptions& o) {
  LocalHost h;
  if (!o.hostname.empty()) {
    h.hostname = o.hostname;
  } else {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) == 0) h.hostname = buf;
  }
  std::map<std::string, std::pair<int, std::string>> osdevs;
  if (o.use_hwloc) hwloc_part(h, osdevs);

  const fs::path ib = fs::path(o.sysfs_root) / "class" / "infiniband";
  for (const std::string& dev : list_dir(ib)) {
    const fs::path d = ib / dev;
    const std::uint64_t node_guid = hex_groups(core::read_first_line(d / "node_guid"));
    std::string pci;
    int numa = -1;
    std::error_code ec;
    const fs::path real = fs::canonical(d / "device", ec);
    if (!ec && looks_like_pci(real.filename().string())) pci = real.filename().string();
    (void)to_num(core::read_first_line(d / "device" / "numa_node"), numa);
    const auto net = list_dir(d / "device" / "net");
    if (numa < 0 && osdevs.count(dev) != 0) numa = osdevs[dev].first;
    if (pci.empty() && osdevs.count(dev) != 0) pci = osdevs[dev].second;
    for (const std::string& port : list_dir(d / "ports")) {
      LocalNic n;
      n.device = dev;
      if (!to_num(port, n.port)) continue;
      const fs::path p = d / "ports" / port;
      n.node_guid = node_guid;
      int state = 0;
      const std::string state_text = core::read_first_line(p / "state");
      (void)std::from_chars(state_text.data(), state_text.data() + state_text.size(), state);
      n.state = state >= 1 && state <= 4 ? static_cast<PortState>(state) : PortState::kUnknown;
      std::tie(n.rate_gbps, n.width) = parse_sysfs_rate(core::read_first_line(p / "rate"));
      std::uint32_t lid = 0;
      if (to_num(core::read_first_line(p / "lid"), lid, 16))
        n.lid = static_cast<std::uint16_t>(lid);
      n.link_layer = parse_link_layer(core::read_first_line(p / "link_layer"));
      if (n.link_layer == LinkLayer::kInfiniBand) {
        const std::string gid = core::read_first_line(p / "gids" / "0");
        if (gid.size() >= 19) n.port_guid = hex_groups(gid.substr(gid.size() - 19));
      }
      n.netdev = core::read_first_line(p / "gid_attrs" / "ndevs" / "0");
      if (n.netdev.empty() && !net.empty()) n.netdev = net.front();
      n.numa_node = numa;
      n.pci_address = pci;
      h.nics.push_back(std::move(n));
    }
  }
  // Active MTU from libibverbs (real sysfs only: a fake tree has no devices behind it).
  if (o.use_verbs && o.sysfs_root == "/sys" && !h.nics.empty()) {
    const DeviceList devs = device_list();
    for (ibv_device* dev : devs) {
      const std::string name = ibv_get_device_name(dev);
      std::unique_ptr<ibv_context, ContextCloser> ctx(ibv_open_device(dev));
      if (!ctx) {
        h.notes += fmt::format("ibv_open_device({}) failed; ", name);
        continue;
      }
      for (LocalNic& n : h.nics) {
        if (n.device != name) continue;
        ibv_port_attr attr{};
        if (ibv_query_port(ctx.get(), static_cast<std::uint8_t>(n.port), &attr) == 0) {
          n.mtu_bytes = attr.active_mtu >= IBV_MTU_256 && attr.active_mtu <= IBV_MTU_4096
                            ? 128 << attr.active_mtu
                            : 0;
        }
      }
    }
  }
  return h;
}

std::string encode_local(const LocalHost& h) {
  std::string s = "fabscope-local 1\n";
  s += fmt::format("host {} {} {} {} {}\n", esc(h.hostname), h.numa_nodes, h.cores, h.pus,
                   esc(h.notes));
  for (const LocalNic& n : h.nics) {
    s += fmt::format("nic {} {} {:x} {:x} {} {} {} {} {} {} {} {} {}\n", esc(n.device), n.port,
                     n.node_guid, n.port_guid, n.lid, static_cast<int>(n.link_layer), n.rate_gbps,
                     n.width, static_cast<int>(n.state), n.mtu_bytes, n.numa_node,
                     esc(n.pci_address), esc(n.netdev));
  }
  return s;
}

LocalHost decode_local(std::string_view text) {
  LocalHost h;
  int line_no = 0;
  bool header = false;
  const auto bad = [&](const std::string& why) {
    throw core::UsageError(fmt::format("local host record, line {}: {}", line_no, why));
  };
  for (const std::string_view line : core::split(text, '\n')) {
    ++line_no;
    std::vector<std::string_view> w;
    for (std::size_t i = 0; i < line.size();) {
      const auto e = std::min(line.find(' ', i), line.size());
      w.push_back(line.substr(i, e - i));
      i = e + 1;
    }
    if (w.empty()) continue;
    if (w[0] == "fabscope-local") {
      if (w.size() != 2 || w[1] != "1") bad("unknown version");
      header = true;
    } else if (!header) {
      bad("missing 'fabscope-local 1' header");
    } else if (w[0] == "host") {
      if (w.size() != 6 || !to_num(w[2], h.numa_nodes) || !to_num(w[3], h.cores) ||
          !to_num(w[4], h.pus))
        bad("bad host line");
      h.hostname = unesc(w[1]);
      h.notes = unesc(w[5]);
    } else if (w[0] == "nic") {
      LocalNic n;
      int ll = 0, st = 0;
      std::uint32_t lid = 0;
      if (w.size() != 14 || !to_num(w[2], n.port) || !to_num(w[3], n.node_guid, 16) ||
          !to_num(w[4], n.port_guid, 16) || !to_num(w[5], lid) || !to_num(w[6], ll) ||
          !to_num(w[7], n.rate_gbps) || !to_num(w[8], n.width) || !to_num(w[9], st) ||
          !to_num(w[10], n.mtu_bytes) || !to_num(w[11], n.numa_node) || ll < 0 || ll > 2 ||
          st < 0 || st > 4) {
        bad("bad nic line");
      }
      n.device = unesc(w[1]);
      n.lid = static_cast<std::uint16_t>(lid);
      n.link_layer = static_cast<LinkLayer>(ll);
      n.state = static_cast<PortState>(st);
      n.pci_address = unesc(w[12]);
      n.netdev = unesc(w[13]);
      h.nics.push_back(std::move(n));
    } else {
      bad(fmt::format("unknown record '{}'", w[0]));
    }
  }
  if (!header) bad("empty record");
  return h;
}

MergeReport merge_local(Fabric& f, std::span<const LocalHost> hosts) {
  MergeReport r;
  std::unordered_map<std::uint64_t, Index> by_guid;
  for (std::size_t i = 0; i < f.nics().size(); ++i) {
    if (f.nics()[i].port_guid != 0) by_guid.emplace(f.nics()[i].port_guid, static_cast<Index>(i));
  }
  for (const LocalHost& h : hosts) {
    const Index host = f.find_host(h.hostname);
    for (const LocalNic& ln : h.nics) {
      Index nic = kNone;
      if (ln.port_guid != 0) {
        const auto it = by_guid.find(ln.port_guid);
        if (it != by_guid.end()) nic = it->second;
      }
      if (nic == kNone && host != kNone) nic = f.find_nic(host, ln.device, ln.port);
      if (nic == kNone) {
        r.unmatched.push_back(fmt::format("{}:{} port {}", h.hostname, ln.device, ln.port));
        continue;
      }
      Nic& n = f.mutable_nic(nic);
      n.state = ln.state;
      if (ln.mtu_bytes > 0) n.mtu_bytes = static_cast<std::uint16_t>(ln.mtu_bytes);
      n.numa_node = static_cast<std::int16_t>(ln.numa_node);
      n.pci_address = ln.pci_address;
      n.netdev = ln.netdev;
      if (n.device.empty()) n.device = ln.device;
      if (n.lid == 0) n.lid = ln.lid;
      if (n.node_guid == 0) n.node_guid = ln.node_guid;
      if (n.port_guid == 0) n.port_guid = ln.port_guid;
      if (n.rate_gbps <= 0) n.rate_gbps = ln.rate_gbps;
      if (n.width == 0) n.width = static_cast<std::uint8_t>(ln.width);
      if (n.link_layer == LinkLayer::kUnknown) n.link_layer = ln.link_layer;
      ++r.matched;
    }
  }
  return r;
}

Fabric fabric_from_local(std::span<const LocalHost> hosts) {
  FabricBuilder b("local", "local discovery");
  for (const LocalHost& h : hosts) {
    const Index hi = b.host(h.hostname);
    for (const LocalNic& ln : h.nics) {
      Nic n;
      n.host = hi;
      n.device = ln.device;
      n.port = static_cast<std::uint8_t>(ln.port);
      n.node_guid = ln.node_guid;
      n.port_guid = ln.port_guid;
      n.lid = ln.lid;
      n.link_layer = ln.link_layer;
      n.rate_gbps = ln.rate_gbps;
      n.width = static_cast<std::uint8_t>(ln.width);
      n.state = ln.state;
      n.mtu_bytes = static_cast<std::uint16_t>(ln.mtu_bytes);
      n.numa_node = static_cast<std::int16_t>(ln.numa_node);
      n.pci_address = ln.pci_address;
      n.netdev = ln.netdev;
      b.add_nic(std::move(n));
    }
  }
  return std::move(b).build();
}

}  // namespace fabscope::topology
