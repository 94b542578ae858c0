// Suite files (configs/suites/*.yaml):
//   name: quick
//   description: free text
//   benchmarks:
//     - {name: lat, kind: lat, sizes: "1:64K", iters: 1000, warmup: 100}
//     - {name: pairs, kind: pairs, lat_size: 8, bw_size: 1M, iters: 200, bw_iters: 10, warmup: 10}
//     - {name: shift, kind: shift, pattern: permutation, size: 1M, iters: 10, seed: 7, link_rate: 400G}
//     - {name: congestion, kind: congestion, victims: 0.2, placement: spread, patterns: "incast,flood"}
// Every error names the file, the line and the field.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "apps/cli.hpp"
#include "core/error.hpp"
#include "core/units.hpp"

namespace fabscope::apps {
namespace {

std::string at(const std::string& file, const YAML::Node& node) {
  const auto mark = node.Mark();
  return mark.line >= 0 ? fmt::format("{}:{}", file, mark.line + 1) : file;
}

int as_int(const YAML::Node& node, const std::string& where) {
  try {
    return node.as<int>();
  } catch (const YAML::Exception&) {
    throw core::UsageError(fmt::format("{}: expected an integer, got '{}'", where, node.Scalar()));
  }
}

bool as_bool(const YAML::Node& node, const std::string& where) {
  try {
    return node.as<bool>();
  } catch (const YAML::Exception&) {
    throw core::UsageError(fmt::format("{}: expected true or false, got '{}'", where, node.Scalar()));
  }
}

std::string as_text(const YAML::Node& node, const std::string& where) {
  if (!node.IsScalar()) throw core::UsageError(fmt::format("{}: expected a single value", where));
  return node.Scalar();
}

double as_double(const YAML::Node& node, const std::string& where) {
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
    throw core::UsageError(fmt::format("{}: expected a number, got '{}'", where, node.Scalar()));
  }
}

std::uint64_t as_seed(const YAML::Node& node, const std::string& where) {
  try {
    return node.as<std::uint64_t>();
  } catch (const YAML::Exception&) {
    throw core::UsageError(fmt::format("{}: expected a non-negative integer, got '{}'", where, node.Scalar()));
  }
}

int& iters_of(suites::BenchSpec& spec) {
  switch (spec.kind) {
    case suites::Kind::kPairs: return spec.pairs.lat_iters;
    case suites::Kind::kColl: return spec.coll.iters;
    case suites::Kind::kShift: return spec.shift.iters;
    case suites::Kind::kCongestion: return spec.congestion.iters;
    default: return spec.sweep.iters;
  }
}

int& warmup_of(suites::BenchSpec& spec) {
  switch (spec.kind) {
    case suites::Kind::kPairs: return spec.pairs.warmup;
    case suites::Kind::kColl: return spec.coll.warmup;
    case suites::Kind::kShift: return spec.shift.warmup;
    case suites::Kind::kCongestion: return spec.congestion.warmup;
    default: return spec.sweep.warmup;
  }
}

suites::BenchSpec parse_entry(const YAML::Node& e, std::size_t index, const std::string& file) {
  const std::string entry = fmt::format("{}: benchmarks[{}]", at(file, e), index);
  if (!e.IsMap()) throw core::UsageError(fmt::format("{}: each benchmark must be a mapping with at least 'kind'", entry));
  const YAML::Node kind_node = e["kind"];
  if (!kind_node) {
    throw core::UsageError(fmt::format("{}: missing 'kind' (one of lat, bw, bibw, pairs, coll, shift, congestion)", entry));
  }
  const auto kind = suites::parse_kind(as_text(kind_node, entry + ".kind"));
  if (!kind) {
    throw core::UsageError(fmt::format("{}.kind: unknown benchmark '{}'; use lat, bw, bibw, pairs, coll, shift or congestion",
                                       entry, kind_node.Scalar()));
  }
  const bool is_pairs = *kind == suites::Kind::kPairs;
  const bool is_coll = *kind == suites::Kind::kColl;
  const bool is_shift = *kind == suites::Kind::kShift;
  const bool is_congestion = *kind == suites::Kind::kCongestion;
  const std::set<std::string> allowed =
      is_pairs  ? std::set<std::string>{"name", "kind", "transport", "lat_size", "bw_size", "iters", "bw_iters", "warmup",
                                        "repeat", "pair_timeout", "round_timeout", "timeout"}
      : is_coll ? std::set<std::string>{"name", "kind", "transport", "sizes", "iters", "warmup", "ops", "dtype", "op",
                                        "nonblocking", "check", "ranks_per_node", "node_by", "max_buffer"}
      : is_shift ? std::set<std::string>{"name", "kind", "transport", "pattern", "size", "iters", "warmup", "steps", "seed",
                                         "link_rate", "timeout"}
      : is_congestion ? std::set<std::string>{"name", "kind", "transport", "victims", "placement", "seed", "patterns",
                                              "aggressor_size", "lat_size", "bw_size", "iters", "bw_iters", "warmup", "timeout"}
                      : std::set<std::string>{"name", "kind", "transport", "sizes", "iters", "warmup"};
  suites::BenchSpec spec;
  spec.kind = *kind;
  suites::Common common{std::string(suites::kind_name(*kind)), "", "mpi", {}};
  if (is_coll) spec.coll.sizes = core::parse_sizes("8:256M", "sizes");
  if (!is_pairs && !is_coll && !is_shift && !is_congestion) {
    spec.sweep.sizes = core::parse_sizes("1:4M", "sizes");
    spec.sweep.iters = *kind == suites::Kind::kLat ? 1000 : 20;
    spec.sweep.warmup = *kind == suites::Kind::kLat ? 100 : 2;
  }
  for (const auto& kv : e) {
    const std::string key = kv.first.Scalar();
    const std::string where = fmt::format("{}: benchmarks[{}].{}", at(file, kv.first), index, key);
    if (allowed.count(key) == 0) {
      std::string known;
      for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + a;
      throw core::UsageError(fmt::format("{}: unknown field for {}; known fields: {}", where, suites::kind_name(*kind), known));
    }
    const YAML::Node& v = kv.second;
    if (key == "name") common.name = as_text(v, where);
    else if (key == "transport") common.transport = as_text(v, where);
    else if (key == "sizes") (is_coll ? spec.coll.sizes : spec.sweep.sizes) = core::parse_sizes(as_text(v, where), where);
    else if (key == "ops") spec.coll.ops = v.IsSequence() ? v.as<std::vector<std::string>>() : split_list(as_text(v, where));
    else if (key == "dtype") spec.coll.dtype = as_text(v, where);
    else if (key == "op") spec.coll.op = as_text(v, where);
    else if (key == "nonblocking") spec.coll.nonblocking = as_bool(v, where);
    else if (key == "check") spec.coll.check = as_bool(v, where);
    else if (key == "ranks_per_node") spec.coll.ranks_per_node = as_int(v, where);
    else if (key == "max_buffer") spec.coll.max_buffer_bytes = core::parse_size(as_text(v, where), where);
    else if (key == "node_by") {
      const std::string by = as_text(v, where);
      if (by != "host" && by != "rank") throw core::UsageError(fmt::format("{}: '{}' is not host or rank", where, by));
      spec.coll.node_per_rank = by == "rank";
    }
    else if (key == "lat_size") (is_congestion ? spec.congestion.lat_size : spec.pairs.lat_size) = core::parse_size(as_text(v, where), where);
    else if (key == "bw_size") (is_congestion ? spec.congestion.bw_size : spec.pairs.bw_size) = core::parse_size(as_text(v, where), where);
    else if (key == "bw_iters") (is_congestion ? spec.congestion.bw_iters : spec.pairs.bw_iters) = as_int(v, where);
    else if (key == "pattern") spec.shift.pattern = as_text(v, where);
    else if (key == "size") spec.shift.size = core::parse_size(as_text(v, where), where);
    else if (key == "steps") spec.shift.steps = as_int(v, where);
    else if (key == "link_rate") spec.shift.link_rate_gbps = parse_rate_gbps(as_text(v, where), where);
    else if (key == "seed") (is_shift ? spec.shift.seed : spec.congestion.seed) = as_seed(v, where);
    else if (key == "victims") spec.congestion.victim_fraction = as_double(v, where);
    else if (key == "placement") spec.congestion.placement = as_text(v, where);
    else if (key == "patterns") spec.congestion.patterns = v.IsSequence() ? v.as<std::vector<std::string>>() : split_list(as_text(v, where));
    else if (key == "aggressor_size") spec.congestion.aggressor_size = core::parse_size(as_text(v, where), where);
    else if (key == "repeat") spec.pairs.repeat = as_int(v, where);
    else if (key == "pair_timeout") common.options.pair_timeout_s = core::parse_duration_s(as_text(v, where), where);
    else if (key == "round_timeout") common.options.round_timeout_s = core::parse_duration_s(as_text(v, where), where);
    else if (key == "timeout") common.options.timeout_s = core::parse_duration_s(as_text(v, where), where);
    else if (key == "iters") iters_of(spec) = as_int(v, where);
    else if (key == "warmup") warmup_of(spec) = as_int(v, where);
  }
  for (char c : common.name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      throw core::UsageError(fmt::format("{}.name: '{}' may use only letters, digits, '-' and '_'", entry, common.name));
    }
  }
  suites::common_of(spec) = common;
  validate(spec, entry, false);
  return spec;
}

}  // namespace

std::vector<suites::BenchSpec> parse_suite(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw core::UsageError(fmt::format("{}:{}: not valid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) throw core::UsageError(fmt::format("{}: a suite is a mapping with a 'benchmarks' list", file));
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key != "name" && key != "description" && key != "benchmarks") {
      throw core::UsageError(fmt::format("{}: unknown top-level field '{}'; known: name, description, benchmarks",
                                         at(file, kv.first), key));
    }
  }
  const YAML::Node list = root["benchmarks"];
  if (!list || !list.IsSequence() || list.size() == 0) {
    throw core::UsageError(fmt::format("{}: 'benchmarks' must be a non-empty list", file));
  }
  std::vector<suites::BenchSpec> specs;
  for (std::size_t i = 0; i < list.size(); ++i) specs.push_back(parse_entry(list[i], i, file));
  return specs;
}

}  // namespace fabscope::apps
