// The command line of `fabscope`: one subcommand per registered benchmark (suites/benchmark.hpp)
// plus run, topo, plan and doctor. Parsing is pure (no MPI), so every rank parses the same argv to
// the same verdict and the parser is unit-tested. No benchmark or setting is listed here: the
// subcommands, their flags and help come from the benchmarks' declarations.
#pragma once

#include <string>
#include <vector>

#include "suites/benchmark.hpp"
#include "suites/fabric.hpp"
#include "topology/plan.hpp"

namespace fabscope::apps {

struct Invocation {
  std::vector<suites::BenchSpec> specs;
  std::string out;         // results file; empty: results/fabscope-<subcommand>-<UTC>.h5
  std::string suite_text;  // YAML text for `run`
  std::string subcommand;
  bool quiet = false;
  bool overwrite = false;  // --overwrite: replace an existing results file at --out
  std::string resume;      // pairs --resume FILE: finish that file's interrupted pairs run
  std::vector<std::string>
      attach;  // files stored verbatim under /attachments (e.g. fabscope-micro JSON)
  std::vector<std::string> config;  // --config KEY=VALUE: settings fabscope cannot see (-> /config)
  bool help = false;                // --help or --version was given: help_text holds the text
  std::string help_text;
  suites::TopologySource topology;  // where the fabric's topology comes from (optional)
  bool rank_as_host = false;        // rank i plays the fabric's i-th host (one-machine tests)
  bool pma = false;                 // --pma: PMA port counters of every cable before and after
                                    // (suites/fabric_counters.hpp)
  // `plan`: which plans to summarise ("" = all), per host or per NIC, and their options.
  std::string plan_name;
  bool per_nic = false;
  std::string plan_file_out;  // plan --write NAME --out F (or --plan NAME --out F): the plan file
  topology::PlanOptions plan_options;
  double doctor_link_rate_gbps = 0;  // doctor --link-rate: the rate every active port should run at
};

// Throws core::UsageError with one line that names the flag or field and how to fix it.
[[nodiscard]] Invocation parse_command_line(const std::vector<std::string>& args);

// Parses a suite file's text; `file` names it in error messages. Each entry's `kind` names a
// registered benchmark; its other fields are that benchmark's settings (snake_case of the flags).
[[nodiscard]] std::vector<suites::BenchSpec> parse_suite(const std::string& text,
                                                         const std::string& file);

// Re-exported for callers that parse rates outside a benchmark.
using suites::parse_rate_gbps;
using suites::split_list;

}  // namespace fabscope::apps
