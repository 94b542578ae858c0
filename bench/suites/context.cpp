#include "suites/suite.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace fabscope::suites {

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::kLat: return "lat";
    case Kind::kBw: return "bw";
    case Kind::kBibw: return "bibw";
    case Kind::kPairs: return "pairs";
    case Kind::kColl: return "coll";
    case Kind::kShift: return "shift";
    case Kind::kCongestion: return "congestion";
  }
  return "?";
}

std::optional<Kind> parse_kind(std::string_view name) {
  for (Kind k : {Kind::kLat, Kind::kBw, Kind::kBibw, Kind::kPairs, Kind::kColl, Kind::kShift, Kind::kCongestion})
    if (kind_name(k) == name) return k;
  return std::nullopt;
}

int coll_node_count(bool node_per_rank);  // coll.cpp

void preflight(const runtime::Comm& comm, const BenchSpec& spec, const std::string& subcommand,
               const Context& ctx) {
  constexpr int kMinRanks = 2;
  // Collective first, so every rank takes part whatever its local verdict.
  const int nodes = spec.kind == Kind::kColl ? coll_node_count(spec.coll.node_per_rank) : 0;
  if (comm.size() < kMinRanks) {
    throw core::UsageError(fmt::format("{} needs at least {} ranks (got {}); launch with e.g. 'mpirun -np {} fabscope {} ...'",
                                       kind_name(spec.kind), kMinRanks, comm.size(), kMinRanks, subcommand));
  }
  if (spec.kind == Kind::kColl && nodes < 2) {
    throw core::UsageError(fmt::format("coll found {} node (ranks sharing memory count as one node); scaling needs at "
                                       "least 2: launch one rank per node, or on one host pass --node-by rank",
                                       nodes));
  }
  if (spec.kind == Kind::kPairs && comm.rank() == 0) (void)make_pairs_plan(ctx, spec.pairs);
  if (spec.kind == Kind::kCongestion) {
    constexpr int kMinCongestion = 4;  // a ring of 2 victims and a pattern of 2 aggressors
    if (comm.size() < kMinCongestion) {
      throw core::UsageError(fmt::format("congestion needs at least {} ranks (2 victims and 2 aggressors; got {}); launch "
                                         "with e.g. 'mpirun -np {} fabscope {} ...'",
                                         kMinCongestion, comm.size(), kMinCongestion, subcommand));
    }
    const std::string& placement = spec.congestion.placement;
    if (placement != "random" && comm.rank() == 0 && ctx.endpoints == nullptr) {
      throw core::UsageError(fmt::format("congestion --placement {}: needs the fabric's topology and every rank's place in "
                                         "it; pass --topology, --ibnetdiscover, --ibnd-cache, --live, --hostname-pattern or "
                                         "--generate (with --rank-as-host on one machine), or use --placement random",
                                         placement));
    }
  }
  const Common& c = common_of(spec);
  if (c.transport == "verbs") {
    // Opens this rank's device and port: no device, a wrong name, a down port or a bad GID index
    // is reported here, before anything runs.
    (void)transport::port_counters(c.transport, c.options, comm.local_rank());
  }
}

void run(Context& ctx, const BenchSpec& spec) {
  switch (spec.kind) {
    case Kind::kLat: run_lat(ctx, spec.sweep); break;
    case Kind::kBw: run_bw(ctx, spec.sweep, false); break;
    case Kind::kBibw: run_bw(ctx, spec.sweep, true); break;
    case Kind::kPairs: run_pairs(ctx, spec.pairs); break;
    case Kind::kColl: run_coll(ctx, spec.coll); break;
    case Kind::kShift: run_shift(ctx, spec.shift); break;
    case Kind::kCongestion: run_congestion(ctx, spec.congestion); break;
  }
}

Common& common_of(BenchSpec& spec) {
  switch (spec.kind) {
    case Kind::kPairs: return spec.pairs.common;
    case Kind::kColl: return spec.coll.common;
    case Kind::kShift: return spec.shift.common;
    case Kind::kCongestion: return spec.congestion.common;
    default: return spec.sweep.common;
  }
}

const Common& common_of(const BenchSpec& spec) { return common_of(const_cast<BenchSpec&>(spec)); }

}  // namespace fabscope::suites
