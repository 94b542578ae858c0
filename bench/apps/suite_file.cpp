// Suite files (configs/suites/*.yaml):
//   name: quick
//   description: free text
//   benchmarks:
//     - {name: lat, kind: lat, sizes: "1:64K", iters: 1000, warmup: 100}
//     - {name: pairs, kind: pairs, lat_size: 8, bw_size: 1M, iters: 200, bw_iters: 10, warmup: 10}
//     - {name: shift, kind: shift, pattern: permutation, size: 1M, iters: 10, seed: 7, link_rate:
//     400G}
//     - {name: congestion, kind: congestion, victims: 0.2, placement: spread, patterns: [incast,
//     flood]}
// `kind` names a registered benchmark; every other field is one of its settings, spelled as the
// flag in snake_case (bw_iters = --bw-iters). Every error names the file, the line and the field.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cctype>

#include "apps/cli.hpp"
#include "core/error.hpp"

namespace fabscope::apps {
namespace {

std::string at(const std::string& file, const YAML::Node& node) {
  const auto mark = node.Mark();
  return mark.line >= 0 ? fmt::format("{}:{}", file, mark.line + 1) : file;
}

// A field's value as the flag's text: a scalar as written, a list of scalars joined by commas.
std::string as_text(const YAML::Node& node, const std::string& where) {
  if (node.IsScalar()) return node.Scalar();
  if (node.IsSequence()) {
    std::string out;
    for (const auto& item : node) {
      if (!item.IsScalar())
        throw core::UsageError(fmt::format("{}: expected a list of single values", where));
      out += (out.empty() ? "" : ",") + item.Scalar();
    }
    return out;
  }
  throw core::UsageError(fmt::format("{}: expected a single value", where));
}

suites::BenchSpec parse_entry(const YAML::Node& e, std::size_t index, const std::string& file) {
  const std::string entry = fmt::format("{}: benchmarks[{}]", at(file, e), index);
  if (!e.IsMap())
    throw core::UsageError(
        fmt::format("{}: each benchmark must be a mapping with at least 'kind'", entry));
  const YAML::Node kind_node = e["kind"];
  if (!kind_node) {
    throw core::UsageError(
        fmt::format("{}: missing 'kind' (one of {})", entry, suites::benchmark_names()));
  }
  const std::string kind = as_text(kind_node, entry + ".kind");
  const suites::BenchmarkInfo* info = suites::find_benchmark(kind);
  if (info == nullptr) {
    throw core::UsageError(fmt::format("{}.kind: unknown benchmark '{}'; use {}", entry, kind,
                                       suites::benchmark_names()));
  }
  suites::BenchSpec spec(*info);
  for (const auto& kv : e) {
    const std::string key = kv.first.Scalar();
    const std::string where = fmt::format("{}: benchmarks[{}].{}", at(file, kv.first), index, key);
    if (key == "kind") continue;
    if (key == "name") {
      spec.common().name = as_text(kv.second, where);
      continue;
    }
    const auto* p = spec.params().find(key);
    if (p == nullptr || p->cli_only || p->hidden) {
      std::string known = "name, kind";
      for (const auto& q : spec.params().params())
        if (!q.cli_only && !q.hidden) known += ", " + q.name;
      throw core::UsageError(
          fmt::format("{}: unknown field for {}; known fields: {}", where, kind, known));
    }
    spec.params().set(key, as_text(kv.second, where), where);
  }
  for (char c : spec.common().name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      throw core::UsageError(fmt::format("{}.name: '{}' may use only letters, digits, '-' and '_'",
                                         entry, spec.common().name));
    }
  }
  spec.finish({entry, false});  // check_verbs_settings: after `run` applies its command line
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
  if (!root.IsMap())
    throw core::UsageError(fmt::format("{}: a suite is a mapping with a 'benchmarks' list", file));
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key != "name" && key != "description" && key != "benchmarks") {
      throw core::UsageError(
          fmt::format("{}: unknown top-level field '{}'; known: name, description, benchmarks",
                      at(file, kv.first), key));
    }
  }
  const YAML::Node list = root["benchmarks"];
  if (!list || !list.IsSequence() || list.size() == 0) {
    throw core::UsageError(fmt::format("{}: 'benchmarks' must be a non-empty list", file));
  }
  constexpr std::size_t kMaxEntries = 1000;
  if (list.size() > kMaxEntries) {
    throw core::UsageError(fmt::format("{}: {} benchmarks; a suite holds at most {} (split it into several runs)", file,
                                       list.size(), kMaxEntries));
  }
  std::vector<suites::BenchSpec> specs;
  for (std::size_t i = 0; i < list.size(); ++i) specs.push_back(parse_entry(list[i], i, file));
  return specs;
}

}  // namespace fabscope::apps
