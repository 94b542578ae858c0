// The verbs ports of this process, shared by every link (verbs_link.cpp) and flow set
// (multi_verbs.cpp): a port is opened once per device selection (--device, --devices,
// --gid-index) and local rank, and stays open until the process ends, so consecutive benchmarks
// reuse one device context and protection domain instead of opening their own.
#pragma once

#include "transport/link.hpp"
#include "verbs/verbs.hpp"

namespace fabscope::transport {

[[nodiscard]] verbs::Port& shared_port(const Options& opt, int local_rank);

}  // namespace fabscope::transport
