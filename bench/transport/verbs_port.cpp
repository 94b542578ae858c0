#include "transport/verbs_port.hpp"

#include <fmt/format.h>

#include <map>
#include <string>

namespace fabscope::transport {

verbs::Port& shared_port(const Options& opt, int local_rank) {
  static std::map<std::string, verbs::Port> ports;  // map nodes never move: references stay valid
  const std::string key =
      fmt::format("{}|{}|{}|{}", opt.device, fmt::join(opt.devices, ","), opt.gid_index, local_rank);
  auto it = ports.find(key);
  if (it == ports.end()) {
    verbs::DeviceOptions d{opt.device, opt.devices, opt.gid_index, 0};
    it = ports.emplace(key, verbs::open_port(d, local_rank)).first;
  }
  return it->second;
}

}  // namespace fabscope::transport
