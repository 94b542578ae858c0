// Plan files: a list of rounds of endpoint pairs, written by `fabscope plan --write FILE` (any
// plan) and by the analysis side (re-test plans for suspect pairs), run by
// `fabscope pairs --plan-file FILE`. Format (documented with examples in topology/PLANS.md):
//
//   # comments and blank lines anywhere
//   fabscope-plan 1            first non-comment line: format and version
//   plan hop-class k=2 ...     optional: what wrote it (free text)
//   endpoints host             `host` (names are host names) or `nic` (names are host:device)
//   round 0                    starts a round; the number is optional, and checked when given
//   node00001 node00017        one pair per line: initiator, then peer
//   ...
//
// Rules: a name appears at most once per round (pairs of a round run at the same time), never
// paired with itself; rounds run in file order; a round has at least one pair and a file at least
// one round.
#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "topology/plan.hpp"

namespace fabscope::topology {

struct PlanFilePair {
  std::string a, b;
  int line = 0;
};

struct PlanFile {
  std::string name;  // file name for messages
  std::string written_by;
  EndpointMode mode = EndpointMode::kHost;
  std::vector<std::vector<PlanFilePair>> rounds;
};

// Throws core::UsageError "FILE:LINE: problem; fix" on any rule broken.
[[nodiscard]] PlanFile parse_plan_file(std::string_view text, const std::string& name);
[[nodiscard]] PlanFile load_plan_file(const std::string& path);

// A Plan over `endpoints` (which must outlive it). Throws core::UsageError naming the line of
// the first pair whose endpoint this run does not have, or when the file's endpoint kind differs
// from the run's (host vs nic).
[[nodiscard]] std::unique_ptr<Plan> plan_from_file(const PlanFile& file,
                                                   const Endpoints& endpoints);

// Streams every round of `plan` (never holding more than one round) in the format above, what
// `fabscope plan --write NAME --out F` is meant to call. Empty rounds are left out (the reader
// refuses them), so the rounds are numbered 0, 1, ... over the rounds written.
void write_plan_file(std::ostream& out, const Plan& plan, const Endpoints& endpoints);

}  // namespace fabscope::topology
