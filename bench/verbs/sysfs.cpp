#include "verbs/sysfs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "core/files.hpp"

namespace fabscope::verbs {
namespace {

namespace fs = std::filesystem;

// sysfs state reads "4: ACTIVE"; keep the name.
std::string after_colon(const std::string& s) {
  const auto c = s.find(": ");
  return c == std::string::npos ? s : s.substr(c + 2);
}

}  // namespace

std::vector<PortInfo> scan_ports(const std::string& root) {
  std::vector<PortInfo> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& dev : fs::directory_iterator(root, ec)) {
    const fs::path ports = dev.path() / "ports";
    if (!fs::is_directory(ports, ec)) continue;
    for (const auto& port : fs::directory_iterator(ports, ec)) {
      PortInfo p;
      p.device = dev.path().filename().string();
      try {
        p.port = std::stoi(port.path().filename().string());
      } catch (const std::exception&) {
        continue;
      }
      p.fw_ver = core::read_first_line(dev.path() / "fw_ver");
      p.node_guid = core::read_first_line(dev.path() / "node_guid");
      p.link_layer = core::read_first_line(port.path() / "link_layer");
      p.state = after_colon(core::read_first_line(port.path() / "state"));
      p.rate = core::read_first_line(port.path() / "rate");
      out.push_back(std::move(p));
    }
  }
  std::sort(out.begin(), out.end(), [](const PortInfo& a, const PortInfo& b) {
    return a.device != b.device ? a.device < b.device : a.port < b.port;
  });
  return out;
}

std::string describe_ports(const std::vector<PortInfo>& ports) {
  std::string out;
  for (const auto& p : ports) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} port {}: fw {}, link_layer {}, state {}, rate {}", p.device, p.port,
                       p.fw_ver.empty() ? "?" : p.fw_ver, p.link_layer, p.state, p.rate);
  }
  return out;
}

std::string rdma_core_version() { return FABSCOPE_RDMA_CORE_VERSION; }

}  // namespace fabscope::verbs
