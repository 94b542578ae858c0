#include "transport/multi.hpp"

#include <fmt/format.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "core/error.hpp"
#include "transport/multi_impl.hpp"

namespace fabscope::transport {
namespace flows {

namespace {
constexpr int kTagBase = 20000;
constexpr int kTagsPerConnection = 8;
constexpr int kGenerations = 1500;  // tags stay below 32767, the smallest MPI_TAG_UB allowed
}  // namespace

Tags tags_for(int peer) {
  static std::map<int, int> generations;
  const int base = kTagBase + kTagsPerConnection * (generations[peer]++ % kGenerations);
  return {base, base + 1, base + 2, base + 3, base + 4, base + 5, base + 6, base + 7};
}

std::map<int, Tags> tags_of(const FlowsSpec& spec) {
  std::set<int> peers(spec.to.begin(), spec.to.end());
  peers.insert(spec.from.begin(), spec.from.end());
  std::map<int, Tags> out;
  for (const int p : peers) out.emplace(p, tags_for(p));
  return out;
}

std::map<std::string, std::uint64_t> netdev_pause_counters(const std::string& ifname) {
  std::map<std::string, std::uint64_t> out;
  if (ifname.empty() || ifname.size() >= IFNAMSIZ) return out;
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return out;
  // The driver's statistics as `ethtool -S` prints them: the count, the names, the values.
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  ethtool_drvinfo info{};
  info.cmd = ETHTOOL_GDRVINFO;
  ifr.ifr_data = reinterpret_cast<char*>(&info);
  if (::ioctl(fd, SIOCETHTOOL, &ifr) == 0 && info.n_stats > 0) {
    const std::uint32_t n = info.n_stats;
    std::vector<std::uint8_t> names(sizeof(ethtool_gstrings) +
                                    static_cast<std::size_t>(n) * ETH_GSTRING_LEN);
    auto* gs = reinterpret_cast<ethtool_gstrings*>(names.data());
    gs->cmd = ETHTOOL_GSTRINGS;
    gs->string_set = ETH_SS_STATS;
    gs->len = n;
    ifr.ifr_data = reinterpret_cast<char*>(gs);
    std::vector<std::uint8_t> values(sizeof(ethtool_stats) +
                                     static_cast<std::size_t>(n) * sizeof(std::uint64_t));
    auto* st = reinterpret_cast<ethtool_stats*>(values.data());
    st->cmd = ETHTOOL_GSTATS;
    st->n_stats = n;
    if (::ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
      ifr.ifr_data = reinterpret_cast<char*>(st);
      if (::ioctl(fd, SIOCETHTOOL, &ifr) == 0) {
        for (std::uint32_t i = 0; i < std::min(n, st->n_stats); ++i) {
          const char* p = reinterpret_cast<const char*>(gs->data) +
                          static_cast<std::size_t>(i) * ETH_GSTRING_LEN;
          const std::string name(p, strnlen(p, ETH_GSTRING_LEN));
          if (is_pause_counter(name)) out["netdev/" + name] = st->data[i];
        }
      }
    }
  }
  ::close(fd);
  return out;
}

}  // namespace flows

bool is_pause_counter(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const char* key : {"pause", "pfc", "xon", "xoff"})
    if (lower.find(key) != std::string::npos) return true;
  return false;
}

}  // namespace fabscope::transport
