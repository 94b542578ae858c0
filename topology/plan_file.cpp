#include "topology/plan_file.hpp"

#include <fmt/format.h>

#include <charconv>
#include <ostream>
#include <unordered_map>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "topology/sources.hpp"

namespace fabscope::topology {
namespace {

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> w;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
    std::size_t e = i;
    while (e < s.size() && s[e] != ' ' && s[e] != '\t' && s[e] != '\r') ++e;
    if (e > i) w.push_back(s.substr(i, e - i));
    i = e;
  }
  return w;
}

class FilePlan final : public Plan {
 public:
  FilePlan(std::string label, std::vector<std::vector<Pair>> rounds)
      : label_(std::move(label)), rounds_(std::move(rounds)) {}
  std::string name() const override { return "plan-file"; }
  std::string description() const override { return label_; }
  std::int64_t rounds() const override { return static_cast<std::int64_t>(rounds_.size()); }
  void round(std::int64_t r, std::vector<Pair>& out) const override {
    out = rounds_[static_cast<std::size_t>(r)];
  }

 private:
  std::string label_;
  std::vector<std::vector<Pair>> rounds_;
};

}  // namespace

PlanFile parse_plan_file(std::string_view text, const std::string& name) {
  PlanFile pf;
  pf.name = name;
  int line_no = 0;
  bool header = false, have_mode = false;
  std::unordered_map<std::string, int> in_round;  // name -> line, for the current round
  int round_line = 0;                             // the line of the current 'round'
  const auto fail = [&](const std::string& msg) {
    throw core::UsageError(fmt::format("{}:{}: {}", name, line_no, msg));
  };
  // An empty round would run nothing and still count as a round; a plan of only empty rounds
  // would "pass" having measured nothing. Both are mistakes of whatever wrote the file.
  const auto check_last_round = [&] {
    if (!pf.rounds.empty() && pf.rounds.back().empty()) {
      throw core::UsageError(fmt::format(
          "{}:{}: round {} has no pairs; give it at least one pair or remove the 'round' line",
          name, round_line, pf.rounds.size() - 1));
    }
  };
  for (const std::string_view line : core::split(text, '\n')) {
    ++line_no;
    const auto w = split_ws(line);
    if (w.empty() || w[0].front() == '#') continue;
    if (!header) {
      if (w.size() != 2 || w[0] != "fabscope-plan")
        fail("the first line must be 'fabscope-plan 1'");
      if (w[1] != "1")
        fail(fmt::format("plan file version '{}' is not known; this fabscope reads version 1",
                         w[1]));
      header = true;
    } else if (w[0] == "plan") {
      const auto p = line.find("plan");
      std::string_view rest = line.substr(p + 4);
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
      pf.written_by = std::string(rest);
    } else if (w[0] == "endpoints") {
      if (w.size() != 2 || (w[1] != "host" && w[1] != "nic"))
        fail("write 'endpoints host' or 'endpoints nic'");
      if (!pf.rounds.empty()) fail("'endpoints' must come before the first round");
      pf.mode = w[1] == "nic" ? EndpointMode::kNic : EndpointMode::kHost;
      have_mode = true;
    } else if (w[0] == "round") {
      if (!have_mode) fail("missing 'endpoints host' or 'endpoints nic' before the first round");
      if (w.size() > 2) fail("write 'round' or 'round N'");
      check_last_round();
      if (w.size() == 2) {
        long long n = -1;
        const auto [p, ec] = std::from_chars(w[1].data(), w[1].data() + w[1].size(), n);
        if (ec != std::errc{} || p != w[1].data() + w[1].size() ||
            n != static_cast<long long>(pf.rounds.size())) {
          fail(fmt::format(
              "'round {}' out of order; rounds are numbered 0, 1, ... in file order (expected {})",
              w[1], pf.rounds.size()));
        }
      }
      pf.rounds.emplace_back();
      in_round.clear();
      round_line = line_no;
    } else {
      if (pf.rounds.empty()) fail(fmt::format("'{}' before the first 'round' line", line));
      if (w.size() != 2) fail(fmt::format("'{}': a pair is two names separated by a space", line));
      if (w[0] == w[1]) fail(fmt::format("'{}' is paired with itself", w[0]));
      for (const auto& n : {w[0], w[1]}) {
        const auto [it, ins] = in_round.emplace(std::string(n), line_no);
        if (!ins) {
          fail(
              fmt::format("'{}' is already in a pair of round {} (line {}); the pairs of a round "
                          "must be disjoint",
                          n, pf.rounds.size() - 1, it->second));
        }
      }
      pf.rounds.back().push_back({std::string(w[0]), std::string(w[1]), line_no});
    }
  }
  if (!header)
    throw core::UsageError(
        fmt::format("{}: empty; a plan file starts with 'fabscope-plan 1'", name));
  check_last_round();
  if (pf.rounds.empty()) {
    throw core::UsageError(fmt::format(
        "{}:{}: the file ends without a round; add 'round' followed by one pair per line", name,
        line_no));
  }
  return pf;
}

PlanFile load_plan_file(const std::string& path) {
  return parse_plan_file(read_text_file(path, "plan file"), path);
}

std::unique_ptr<Plan> plan_from_file(const PlanFile& pf, const Endpoints& e) {
  if (pf.mode != e.mode()) {
    throw core::UsageError(
        fmt::format("{}: the file pairs {} endpoints but this run has one rank per {}; "
                    "run with matching ranks or rewrite the plan",
                    pf.name, pf.mode == EndpointMode::kNic ? "NIC" : "host",
                    e.mode() == EndpointMode::kNic ? "NIC" : "host"));
  }
  std::vector<std::vector<Pair>> rounds;
  rounds.reserve(pf.rounds.size());
  for (const auto& r : pf.rounds) {
    if (r.empty()) continue;
    rounds.emplace_back();
    for (const PlanFilePair& p : r) {
      const Index a = e.find(p.a), b = e.find(p.b);
      for (const auto& [idx, nm] : {std::pair{a, &p.a}, std::pair{b, &p.b}}) {
        if (idx == kNone) {
          throw core::UsageError(
              fmt::format("{}:{}: '{}' is not an endpoint of this run ({} endpoints, e.g. '{}')",
                          pf.name, p.line, *nm, e.size(), e.size() > 0 ? e.name(0) : ""));
        }
      }
      rounds.back().emplace_back(a, b);
    }
  }
  return std::make_unique<FilePlan>(
      fmt::format("{} rounds from {}{}", rounds.size(), pf.name,
                  pf.written_by.empty() ? "" : " (" + pf.written_by + ")"),
      std::move(rounds));
}

void write_plan_file(std::ostream& out, const Plan& plan, const Endpoints& e) {
  out << "# fabscope plan file: " << plan.rounds()
      << " rounds; pairs of a round run at the same time\n";
  out << "fabscope-plan 1\n";
  out << "plan " << plan.name() << ": " << plan.description() << "\n";
  out << "endpoints " << (e.mode() == EndpointMode::kNic ? "nic" : "host") << "\n";
  std::vector<Pair> buf;
  std::int64_t written = 0;
  for (std::int64_t r = 0; r < plan.rounds(); ++r) {
    plan.round(r, buf);
    if (buf.empty()) continue;  // the reader refuses empty rounds; they measure nothing
    out << "round " << written++ << "\n";
    for (const auto& [a, b] : buf)
      out << e.name(static_cast<std::size_t>(a)) << ' ' << e.name(static_cast<std::size_t>(b))
          << '\n';
  }
}

}  // namespace fabscope::topology
