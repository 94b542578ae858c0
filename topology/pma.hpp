// The fabric's own error counters on InfiniBand: the PMA PortCounters attribute (IBA 16.1.3.5), and
// the traffic counters of PortCountersExtended, of
// every port at both ends of every cable the fabric model knows, read through libibmad as
// perfquery does (pma_query_via), by LID: a switch's ports through the switch's LID, a NIC port
// through its own. Needs LIDs, i.e. a subnet manager that has run. Counters saturate at their width
// (8, 16 or 32 bits) instead of wrapping, so a delta is after - before, or `after` when the counter
// was reset in between.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "topology/model.hpp"

namespace fabscope::topology {

inline constexpr std::array<std::string_view, 13> kPmaCounters = {"SymbolErrorCounter",
                                                                  "LinkErrorRecoveryCounter",
                                                                  "LinkDownedCounter",
                                                                  "PortRcvErrors",
                                                                  "PortRcvRemotePhysicalErrors",
                                                                  "PortXmitDiscards",
                                                                  "LocalLinkIntegrityErrors",
                                                                  "ExcessiveBufferOverrunErrors",
                                                                  "PortXmitWait",
                                                                  "PortXmitData",
                                                                  "PortRcvData",
                                                                  "PortXmitPkts",
                                                                  "PortRcvPkts"};
// Error counters (the first eight; PortXmitWait counts congestion, not faults).
inline constexpr std::size_t kPmaErrorCounters = 8;
// The traffic counters of PortCountersExtended (IBA 16.1.4.11, 64 bits; data in 4-octet words, as
// perfquery -x shows them): indices kPmaExtFirst.. of kPmaCounters.
inline constexpr std::size_t kPmaExtFirst = 9;
using PmaValues = std::array<std::uint64_t, kPmaCounters.size()>;

// One end of one link of the model and its counters.
struct PmaPort {
  Index link = kNone;
  int side = 0;  // 0: the link's `a` end, 1: its `b` end
  std::uint16_t lid = 0;
  int port = 0;
  bool ok = false;      // false: the query failed or the end has no LID (values are 0)
  bool ext_ok = false;  // PortCountersExtended answered too (else its values are 0)
  PmaValues values{};
};

struct PmaOptions {
  std::string ca{};         // local CA; empty = the first with an active port
  int ca_port = 0;          // 0 = any
  unsigned timeout_ms = 0;  // per query; 0 = library default
};

// Both ends of every link, in link order (a, then b). Throws core::Unsupported when no local
// InfiniBand port can send MADs; a port that does not answer is recorded with ok = false.
[[nodiscard]] std::vector<PmaPort> read_pma(const Fabric& fabric, const PmaOptions& options);

// after - before per end (saturated counters are what they are; a counter below its earlier value
// was reset: its delta is `after`). Ends that failed either time keep ok = false.
[[nodiscard]] std::vector<PmaPort> pma_deltas(const std::vector<PmaPort>& before,
                                              const std::vector<PmaPort>& after);

// "leaf-r1[39]" or "node003 mlx5_0[1]": one end of a link in words.
[[nodiscard]] std::string end_name(const Fabric& fabric, const LinkEnd& end);
// One line per link end whose error counters rose: "A <-> B: at A: SymbolErrorCounter +42, ...".
[[nodiscard]] std::vector<std::string> describe_errors(const Fabric& fabric,
                                                       const std::vector<PmaPort>& deltas);

// Text form for saving a reading between processes: one line per end, "link side lid port ok
// ext_ok v0..v12".
[[nodiscard]] std::string encode_pma(const std::vector<PmaPort>& ports);
// Throws core::UsageError naming `what` on a malformed line.
[[nodiscard]] std::vector<PmaPort> decode_pma(const std::string& text, const std::string& what);

}  // namespace fabscope::topology
