#include "suites/suite.hpp"

namespace fabscope::suites {

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::kLat: return "lat";
    case Kind::kBw: return "bw";
    case Kind::kBibw: return "bibw";
    case Kind::kPairs: return "pairs";
  }
  return "?";
}

std::optional<Kind> parse_kind(std::string_view name) {
  for (Kind k : {Kind::kLat, Kind::kBw, Kind::kBibw, Kind::kPairs})
    if (kind_name(k) == name) return k;
  return std::nullopt;
}

int min_ranks(Kind /*kind*/) { return 2; }

void run(Context& ctx, const BenchSpec& spec) {
  switch (spec.kind) {
    case Kind::kLat: run_lat(ctx, spec.sweep); break;
    case Kind::kBw: run_bw(ctx, spec.sweep, false); break;
    case Kind::kBibw: run_bw(ctx, spec.sweep, true); break;
    case Kind::kPairs: run_pairs(ctx, spec.pairs); break;
  }
}

}  // namespace fabscope::suites
