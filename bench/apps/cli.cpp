#include "apps/cli.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.hpp"

namespace fabscope::apps {
namespace {

// The command-line buffers of one ParamSet: every declared parameter becomes a flag of the
// subcommand, its text (or switch) applied to the set after parsing.
class BoundParams {
 public:
  BoundParams(CLI::App& sub, suites::ParamSet& set) : set_(set) {
    for (auto& p : set.params()) {
      CLI::Option* opt = nullptr;
      if (p.is_flag) {
        opt = sub.add_flag(suites::flag_of(p.name), flags_.emplace_back(false), p.help);
      } else {
        opt = sub.add_option(suites::flag_of(p.name), texts_.emplace_back(), p.help);
        opt->type_name(p.type);
        if (!p.default_text.empty()) opt->default_str(p.default_text);
      }
      if (p.hidden) opt->group("");
      options_.emplace_back(&p, opt);
    }
  }

  // Applies what the command line gave; returns the names given.
  std::vector<std::string> apply() {
    std::vector<std::string> given;
    std::size_t text = 0, flag = 0;
    for (const auto& [p, opt] : options_) {
      const std::string* value = p->is_flag ? nullptr : &texts_[text++];
      const bool on = p->is_flag && flags_[flag++];
      if (opt->count() == 0) continue;
      set_.set(p->name, p->is_flag ? std::string(on ? "true" : "false") : *value,
               suites::flag_of(p->name));
      given.push_back(p->name);
    }
    return given;
  }

  // The text given for `name` ("" when not given).
  [[nodiscard]] std::string text_of(const std::string& name) const {
    std::size_t text = 0;
    for (const auto& [p, opt] : options_) {
      if (p->is_flag) continue;
      if (p->name == name) return opt->count() > 0 ? texts_[text] : std::string();
      ++text;
    }
    return "";
  }

 private:
  suites::ParamSet& set_;
  std::deque<std::string> texts_;
  std::deque<bool> flags_;
  std::vector<std::pair<suites::ParamSet::Param*, CLI::Option*>> options_;
};

struct AppOptions {
  std::string out, label;
  bool quiet = false, overwrite = false;
  std::vector<std::string> attach;
  std::vector<std::string> config;
  suites::TopologySource topo;
  bool rank_as_host = false;
  bool pma = false;
  std::vector<CLI::Option*> slurm_topology{};  // one per subcommand: was it given (with no FILE)?
};

// What every subcommand takes: the results file, the label, progress, attachments, the topology.
void add_app_options(CLI::App& sub, AppOptions& o) {
  sub.add_option("--out", o.out, "results file (HDF5); default results/fabscope-<cmd>-<time>.h5");
  sub.add_flag("--overwrite", o.overwrite,
               "replace --out when it already holds fabscope results (never other files)");
  sub.add_option("--label", o.label, "free text stored with the results (e.g. firmware version)");
  sub.add_flag("--quiet", o.quiet, "no progress lines");
  sub.add_option(
      "--config", o.config,
      "KEY=VALUE: a setting of the fabric fabscope cannot see (e.g. adaptive_routing=on, "
      "switch_fw=31.2010); repeatable, stored in /config for compare");
  sub.add_option("--attach", o.attach,
                 "store this file verbatim under /attachments (e.g. fabscope-micro JSON)");
  auto* t = sub.add_option_group("topology",
                                 "where the fabric's topology comes from (stored under /topology)");
  t->add_option("--topology", o.topo.yaml, "topology YAML (configs/topologies/)");
  t->add_option("--ibnetdiscover", o.topo.ibnetdiscover, "an ibnetdiscover text dump");
  sub.add_option("--routes", o.topo.routes,
                 "with --ibnetdiscover: an ibroute dump of the switches' forwarding tables");
  t->add_option("--ibnd-cache", o.topo.ibnd_cache,
                "a libibnetdisc cache file (ibnetdiscover --cache)");
  t->add_flag("--live", o.topo.live, "discover the InfiniBand fabric now through libibnetdisc");
  t->add_option("--hostname-pattern", o.topo.hostname_pattern,
                "regex with named groups (?<rack>..) and optionally (?<node>..), (?<pod>..)")
      ->check(
          [](const std::string& v) {
            return v.empty() ? std::string(
                                   "an empty pattern matches nothing; give a regex with a "
                                   "(?<rack>..) group")
                             : std::string();
          },
          "PATTERN");
  o.slurm_topology.push_back(
      t->add_option("--slurm-topology", o.topo.slurm_topology,
                    "Slurm's switch tree: topology.conf as --slurm-topology=FILE, or without FILE "
                    "'scontrol show topology', else the tasks' SLURM_TOPOLOGY_ADDR")
          ->expected(0, 1)
          ->type_name("[FILE]"));
  t->add_option("--generate", o.topo.generate,
                "a generated fat tree, e.g. hosts=12500,rails=8 (topology/generator.hpp)");
  sub.add_flag("--rank-as-host", o.rank_as_host,
               "rank i plays the fabric's i-th host (tests on one machine)");
  sub.add_flag("--pma", o.pma,
               "InfiniBand: read the PMA port counters of every cable of the topology before and "
               "after the run, store the deltas in /pma");
  t->require_option(0, 1);  // one source at most
}

// A suite is a handful of benchmarks: a bound keeps a hostile file from costing every rank
// gigabytes in the YAML parser (issue 18: 10 MB took ~770 MB per rank and 60 s).
constexpr std::uintmax_t kMaxSuiteBytes = 256 * 1024;

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw core::UsageError(fmt::format("{}: cannot read the suite file; check the path", path));
  }
  if (const auto bytes = std::filesystem::file_size(path, ec); !ec && bytes > kMaxSuiteBytes) {
    throw core::UsageError(
        fmt::format("{}: the suite file is {} bytes; a suite holds at most {} KiB (split it into "
                    "several runs)",
                    path, bytes, kMaxSuiteBytes / 1024));
  }
  std::ifstream in(path);
  if (!in)
    throw core::UsageError(fmt::format("{}: cannot read the suite file; check the path", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Invocation parse_command_line(const std::vector<std::string>& args) {
  CLI::App app{
      "fabscope: RDMA fabric benchmarks (run under mpirun or srun, one rank per node or NIC)",
      "fabscope"};
  app.require_subcommand(1, 1);
  app.set_help_all_flag("--help-all", "help for every subcommand");
  app.set_version_flag("--version", std::string("fabscope ") + FABSCOPE_VERSION);
  AppOptions common;

  // One subcommand per registered benchmark, its flags from its declaration.
  std::vector<suites::BenchSpec> specs;
  std::deque<BoundParams> bound;
  std::map<std::string, std::size_t> index;
  for (const auto& info : suites::benchmarks()) {
    specs.emplace_back(info);
    auto* sub = app.add_subcommand(info.name, info.summary);
    add_app_options(*sub, common);
    bound.emplace_back(*sub, specs.back().params());
    index[info.name] = specs.size() - 1;
  }

  // run: a suite file; transport flags given here apply to every entry (over the file's values).
  auto* run = app.add_subcommand("run", "run a suite file (e.g. configs/suites/quick.yaml)");
  add_app_options(*run, common);
  std::string suite_file;
  run->add_option("suite", suite_file, "suite YAML file")->required();
  suites::Common run_common;
  suites::ParamSet run_set;
  suites::declare_transport(run_set, run_common, {.verbs = true, .atomics = true, .timeout = true});
  // The plan of the suite's pairs entries (e.g. run acceptance.yaml --plan new-rack --new r12).
  std::string run_plan, run_plan_file;
  topology::PlanOptions run_plan_options;
  run_set
      .text("plan", run_plan, "all-pairs",
            "pairs entries: all-pairs, hop-class, new-rack, rail-aligned or budget")
      .choices(topology::plan_names(), "plan");
  run_set.text("plan_file", run_plan_file, "", "pairs entries: run the rounds of a plan file");
  suites::declare_plan_options(run_set, run_plan_options);
  BoundParams run_bound(*run, run_set);

  auto* topo = app.add_subcommand(
      "topo", "discover or load the fabric's topology, print it, store it in --out");
  add_app_options(*topo, common);
  auto* plan = app.add_subcommand(
      "plan", "print the traffic plans for a fabric: rounds, time, link coverage");
  add_app_options(*plan, common);
  topology::PlanOptions plan_options;
  suites::ParamSet plan_set;
  std::string plan_name;
  plan_set.text("plan", plan_name, "", "one plan (default: every plan)")
      .choices(topology::plan_names(), "plan");
  std::string plan_write;
  plan_set
      .text("write", plan_write, "",
            "write that plan as a plan file to --out (for pairs --plan-file)")
      .choices(topology::plan_names(), "plan");
  bool per_nic = false;
  plan_set.flag("per_nic", per_nic, "one endpoint per NIC (rails) instead of per host");
  suites::declare_plan_options(plan_set, plan_options);
  BoundParams plan_bound(*plan, plan_set);

  // doctor: the configuration checks of suites/host_config.hpp on every rank, before a run.
  auto* doctor = app.add_subcommand(
      "doctor",
      "check every rank's RDMA ports, PCIe links, NUMA binding, memlock and firmware/MTU/rate "
      "against the other hosts; one line per problem, exit 1 if any");
  std::string doctor_rate;
  doctor->add_option("--link-rate", doctor_rate,
                     "the rate every active port should run at, e.g. 400G or 200Gb/s "
                     "(default: compare hosts with each other only)");
  bool doctor_quiet = false;
  doctor->add_flag("--quiet", doctor_quiet, "print only the problems, not the summary line");

  if (args.size() > 1 && !args[1].starts_with('-')) {
    std::vector<std::string> names;
    for (const auto* s : app.get_subcommands({})) names.push_back(s->get_name());
    if (std::find(names.begin(), names.end(), args[1]) == names.end()) {
      throw core::UsageError(fmt::format("unknown subcommand '{}'; use {} (see 'fabscope --help')",
                                         args[1], fmt::join(names, ", ")));
    }
  }
  std::vector<std::string> rev(args.rbegin(), args.rend() - 1);  // CLI11 wants reversed, no argv[0]
  Invocation inv;
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp&) {
    inv.help = true;
    const CLI::App* target = &app;
    for (auto* s : app.get_subcommands()) target = s;
    inv.help_text = target->help();
    return inv;
  } catch (const CLI::CallForAllHelp&) {
    inv.help = true;
    inv.help_text = app.help("", CLI::AppFormatMode::All);
    return inv;
  } catch (const CLI::CallForVersion&) {
    inv.help = true;
    inv.help_text = fmt::format("fabscope {}\n", FABSCOPE_VERSION);
    return inv;
  } catch (const CLI::ParseError& e) {
    std::string sub;
    for (auto* s : app.get_subcommands()) sub = " " + s->get_name();
    throw core::UsageError(fmt::format("{}; see 'fabscope{} --help'", e.what(), sub));
  }
  const CLI::App* chosen = app.get_subcommands().front();
  inv.subcommand = chosen->get_name();
  inv.out = common.out;
  inv.quiet = common.quiet;
  inv.overwrite = common.overwrite;
  inv.attach = common.attach;
  for (const auto& kv : common.config) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0 || kv.find('\n') != std::string::npos) {
      throw core::UsageError(
          fmt::format("--config '{}': give KEY=VALUE (e.g. adaptive_routing=on)", kv));
    }
  }
  inv.config = common.config;
  inv.topology = common.topo;
  inv.topology.slurm = std::any_of(common.slurm_topology.begin(), common.slurm_topology.end(),
                                   [](const CLI::Option* o) { return o->count() > 0; });
  inv.rank_as_host = common.rank_as_host;
  inv.pma = common.pma;
  if (inv.pma && !common.topo.any()) {
    throw core::UsageError(
        "--pma needs the fabric's cables: give --live, --ibnetdiscover or --ibnd-cache");
  }
  if (!common.topo.routes.empty() && common.topo.ibnetdiscover.empty()) {
    throw core::UsageError(
        "--routes needs --ibnetdiscover (the routes belong to that dump's switches)");
  }

  if (inv.subcommand == "topo") return inv;
  if (inv.subcommand == "doctor") {
    inv.quiet = doctor_quiet;
    if (!doctor_rate.empty())
      inv.doctor_link_rate_gbps = parse_rate_gbps(doctor_rate, "--link-rate");
    return inv;
  }
  if (inv.subcommand == "plan") {
    (void)plan_bound.apply();
    plan_set.check({"fabscope plan", true});
    if (!plan_write.empty() && !plan_name.empty() && plan_write != plan_name) {
      throw core::UsageError(
          fmt::format("--write {} and --plan {}: name one plan", plan_write, plan_name));
    }
    if (!plan_write.empty() && common.out.empty()) {
      throw core::UsageError(
          fmt::format("--write {}: give --out FILE, the plan file to write", plan_write));
    }
    if (!common.out.empty() && plan_write.empty() && plan_name.empty()) {
      throw core::UsageError(
          "plan --out: name the plan to write with --write NAME (or --plan NAME)");
    }
    inv.plan_name = plan_write.empty() ? plan_name : plan_write;
    inv.plan_file_out = common.out;
    inv.per_nic = per_nic;
    inv.plan_options = plan_options;
    return inv;
  }
  if (inv.subcommand == "run") {
    inv.suite_text = read_file(suite_file);
    inv.specs = parse_suite(inv.suite_text, suite_file);
    const std::vector<std::string> given = run_bound.apply();
    for (const auto& name : given) {
      const bool taken = std::any_of(inv.specs.begin(), inv.specs.end(), [&](const auto& s) {
        return s.params().find(name) != nullptr;
      });
      if (!taken) {
        throw core::UsageError(
            fmt::format("fabscope run {}: {} applies to no benchmark of this suite; leave it out",
                        suite_file, suites::flag_of(name)));
      }
    }
    for (auto& s : inv.specs) {
      s.common().label = common.label;
      for (const auto& name : given)
        if (s.params().find(name) != nullptr)
          s.params().set(name, run_bound.text_of(name), suites::flag_of(name));
      s.finish({fmt::format("fabscope run {}: benchmark '{}'", suite_file, s.common().name), true});
    }
    for (const auto& s : inv.specs) {
      s.check_verbs_settings(
          {fmt::format("fabscope run {}: benchmark '{}'", suite_file, s.common().name), true});
    }
    return inv;
  }
  const std::size_t i = index.at(inv.subcommand);
  suites::BenchSpec spec = specs[i];
  (void)bound[i].apply();
  spec.common().label = common.label;
  spec.finish({"fabscope " + inv.subcommand, true});
  spec.check_verbs_settings({"fabscope " + inv.subcommand, true});
  if (const auto* resume = spec.params().find("resume"); resume != nullptr)
    inv.resume = resume->get();
  inv.specs.push_back(spec);
  return inv;
}

}  // namespace fabscope::apps
