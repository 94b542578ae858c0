// The transports of this process as one object: made once by main (after MPI_Init), handed to
// every benchmark through suites::Context, destroyed before MPI_Finalize. It owns the verbs ports
// (a device context and its one protection domain per device selection and local rank, opened on
// first use and shared by every link and flow set), so nothing verbs lives in a static past the
// end of MPI.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "transport/link.hpp"
#include "transport/multi.hpp"

namespace fabscope::verbs {
struct Port;
}

namespace fabscope::transport {

enum class Kind { kMpi, kVerbs };
// "mpi" / "verbs"
[[nodiscard]] std::string_view kind_name(Kind kind);
[[nodiscard]] std::optional<Kind> parse_kind(std::string_view name);

class Transport {
 public:
  explicit Transport(const runtime::Comm& comm);
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  ~Transport();

  // Connects this rank to `peer` (which makes the matching call) with buffers for messages up to
  // `max_size` bytes, and arms the link's deadline when opt.pair_timeout_s > 0 (counted from the
  // start of the call). Throws core::Error on failure and core::Timeout when the deadline passes.
  [[nodiscard]] std::unique_ptr<Link> connect(Kind kind, int peer, std::size_t max_size,
                                              const Options& opt);
  // This rank's flows (multi.hpp): collective over the ranks the spec names.
  [[nodiscard]] std::unique_ptr<Flows> connect_flows(Kind kind, const FlowsSpec& spec,
                                                     const Options& opt);
  // Counter values of the port this rank measures through (verbs: sysfs counters and
  // hw_counters; mpi: none). Over verbs it opens the port: preflight calls it to check the device.
  [[nodiscard]] std::map<std::string, std::uint64_t> port_counters(Kind kind, const Options& opt);
  // port_counters() plus, on RoCE, the netdev's pause-frame counters (results/SCHEMA.md).
  [[nodiscard]] std::map<std::string, std::uint64_t> load_counters(Kind kind, const Options& opt);
  // The port's active rate in Gb/s (verbs: sysfs `rate`; mpi: NaN, the MPI library's path is
  // unknown).
  [[nodiscard]] double port_rate_gbps(Kind kind, const Options& opt);

  [[nodiscard]] const runtime::Comm& comm() const noexcept { return comm_; }

 private:
  verbs::Port& port(const Options& opt);

  const runtime::Comm& comm_;
  std::map<std::string, std::unique_ptr<verbs::Port>> ports_;
};

}  // namespace fabscope::transport
