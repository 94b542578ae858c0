// The command line of `fabscope`: subcommands lat, bw, bibw, pairs, coll, shift, congestion, run, topo, plan. Parsing is pure (no MPI),
// so every rank parses the same argv to the same verdict and the parser is unit-tested.
#pragma once

#include <string>
#include <vector>

#include "suites/fabric.hpp"
#include "suites/suite.hpp"
#include "topology/plan.hpp"

namespace fabscope::apps {

struct Invocation {
  std::vector<suites::BenchSpec> specs;
  std::string out;          // results file; empty: results/fabscope-<subcommand>-<UTC>.h5
  std::string suite_text;   // YAML text for `run`
  std::string subcommand;
  bool quiet = false;
  std::string resume;       // pairs --resume FILE: finish that file's interrupted pairs run
  std::vector<std::string> attach;  // files stored verbatim under /attachments (e.g. fabscope-micro JSON)
  bool help = false;        // --help was given: help_text holds the text
  std::string help_text;
  suites::TopologySource topology;  // where the fabric's topology comes from (optional)
  bool rank_as_host = false;        // rank i plays the fabric's i-th host (one-machine tests)
  // `plan`: which plans to summarise ("" = all), per host or per NIC, and their options.
  std::string plan_name;
  bool per_nic = false;
  topology::PlanOptions plan_options;
};

// Throws core::UsageError with one line that names the flag or field and how to fix it.
[[nodiscard]] Invocation parse_command_line(const std::vector<std::string>& args);

// Parses a suite file's text; `file` names it in error messages. Benchmarks get `label` and,
// when non-empty, `transport` as defaults.
[[nodiscard]] std::vector<suites::BenchSpec> parse_suite(const std::string& text,
                                                         const std::string& file);

// A link rate as users type it ("100G", "400Gb/s", "800M", "1.6T"; a bare number is Gb/s), in
// Gb/s. Throws core::UsageError naming `what`.
[[nodiscard]] double parse_rate_gbps(const std::string& text, const std::string& what);

// "a, b,c" -> {"a", "b", "c"}
[[nodiscard]] std::vector<std::string> split_list(const std::string& text);

// Shared validation of typed parameters (ranges, known transport). Errors start with `where` and
// name the setting as a flag (cli) or as a suite field.
void validate(const suites::BenchSpec& spec, const std::string& where, bool cli);

}  // namespace fabscope::apps
