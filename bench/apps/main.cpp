// fabscope: the MPI-launched benchmark binary. This file is the error boundary: it parses the
// command line on every rank, runs the collective preflight, and turns exceptions into exit codes
// (0 ok, 1 failure, 2 usage, 77 unsupported here).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "apps/cli.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "io/results.hpp"
#include "runtime/comm.hpp"
#include "runtime/launcher.hpp"
#include "suites/benchmark.hpp"
#include "suites/fabric.hpp"
#include "suites/fabric_counters.hpp"
#include "suites/host_config.hpp"
#include "topology/plan.hpp"
#include "topology/plan_file.hpp"

using namespace fabscope;

namespace {

std::string default_out(const std::string& subcommand) {
  std::string stamp = core::utc_now_iso();
  std::erase(stamp, '-');
  std::erase(stamp, ':');
  return fmt::format("results/fabscope-{}-{}.h5", subcommand, stamp);
}

// Every rank passes its own verdict ("" = fine). If any rank failed, rank 0 prints the first
// failing rank's message once and every rank returns the exit code to use; else 0.
int agree(const runtime::Comm& comm, const std::string& error, core::ExitCode code) {
  if (comm.all_true(error.empty())) return 0;
  const auto worst = static_cast<int>(comm.max(error.empty() ? 0.0 : static_cast<double>(code)));
  const auto messages = comm.gather_strings(error);
  for (const auto& m : messages) {
    if (!m.empty()) {
      fmt::print(stderr, "fabscope: {}\n", m);
      break;
    }
  }
  return worst;
}

std::string join(const std::vector<std::string>& v, const char* sep);

// pairs --resume FILE: the command line the file was measured with (rank 0 reads it, every rank
// gets it). Only --quiet may accompany --resume; everything else comes from the file.
std::vector<std::string> resumed_args(const runtime::Comm& comm,
                                      const std::vector<std::string>& args,
                                      const std::string& path) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool allowed = a == "pairs" || a == "--quiet" || a == "--resume" ||
                         a.starts_with("--resume=") || (args[i - 1] == "--resume" && a == path);
    if (!allowed) {
      throw core::UsageError(
          fmt::format("--resume: '{}' cannot be combined with --resume; the settings come from {} "
                      "(only --quiet may be added)",
                      a, path));
    }
  }
  std::string text;
  std::string error;
  if (comm.rank() == 0) {
    try {
      const io::ResultsReader in(path);
      std::vector<std::string> stored;
      if (in.exists("/command_argv")) {
        stored = in.strings("/command_argv");
      } else {
        for (const auto piece : core::split(in.attr_string("/", "command_line"), ' '))
          stored.emplace_back(piece);
      }
      for (const auto& a : stored) text += a + '\0';
    } catch (const core::Error& e) {
      error = e.what();
    }
  }
  error = comm.broadcast_string(error, 0);
  if (!error.empty()) throw core::UsageError(error);
  text = comm.broadcast_string(text, 0);
  std::vector<std::string> out;
  for (const auto piece : core::split(text, '\0')) out.emplace_back(piece);
  if (!out.empty() && out.back().empty()) out.pop_back();
  if (out.size() < 2 || out[1] != "pairs") {
    throw core::UsageError(
        fmt::format("--resume {}: the file was not written by 'fabscope pairs' (its command: {}); "
                    "only pairs runs can be resumed",
                    path, join(out, " ")));
  }
  return out;
}

// plan --write NAME --out F: the plan file pairs --plan-file runs (topology/PLANS.md). Like
// results, an existing file is replaced only with --overwrite.
void write_plan(const apps::Invocation& inv, const topology::Endpoints& eps) {
  const std::string& path = inv.plan_file_out;
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !inv.overwrite) {
    throw core::UsageError(fmt::format(
        "--out {}: the file exists; choose another path, or pass --overwrite to replace it", path));
  }
  const auto plan = topology::make_plan(inv.plan_name, eps, inv.plan_options);
  std::ofstream out(path);
  if (!out)
    throw core::UsageError(
        fmt::format("--out {}: cannot write the plan file; choose a writable path", path));
  topology::write_plan_file(out, *plan, eps);
  out.close();
  if (!out)
    throw core::UsageError(
        fmt::format("--out {}: writing the plan file failed (disk full?)", path));
  fmt::print("# plan {}: {} rounds written to {} (run it with: fabscope pairs --plan-file {})\n",
             inv.plan_name, plan->rounds(), path, path);
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// fabscope doctor (rank 0 judges every rank's configuration): one line per problem on stdout, then
// a summary; exit 1 with problems, 0 without, 77 when no host has an RDMA device at all.
int doctor(const runtime::Comm& comm, const std::vector<suites::HostConfig>& configs,
           const apps::Invocation& inv, const std::string& sys_root) {
  int code = 0;
  if (comm.rank() == 0) {
    const bool none = std::all_of(configs.begin(), configs.end(),
                                  [](const suites::HostConfig& h) { return h.ports.empty(); });
    std::set<std::string> hosts;
    std::size_t ports = 0;
    for (const auto& h : configs)
      if (hosts.insert(h.hostname).second) ports += h.ports.size();
    if (none) {
      fmt::print(
          "fabscope doctor: no RDMA devices on any of the {} host(s) ({}/class/infiniband is "
          "empty): nothing to check; load the NIC driver (or `rdma link add` a Soft-RoCE device)\n",
          hosts.size(), sys_root);
      code = static_cast<int>(core::ExitCode::kUnsupported);
    } else {
      const auto problems =
          suites::check_hosts(configs, {.link_rate_gbps = inv.doctor_link_rate_gbps});
      std::set<std::string> bad;
      for (const auto& p : problems) {
        fmt::print("{}\n", p.line());
        // a split without a majority names several hosts, comma-joined
        for (const auto h : core::split(p.host, ',')) bad.emplace(h);
      }
      if (!inv.quiet) {
        fmt::print(
            "# doctor: {} problem(s) on {} of {} host(s); {} RDMA port(s), {} rank(s) "
            "checked\n",
            problems.size(), bad.size(), hosts.size(), ports, configs.size());
      }
      code = problems.empty() ? 0 : 1;
    }
    std::fflush(stdout);
  }
  return std::stoi(comm.broadcast_string(std::to_string(code), 0));
}

}  // namespace

int main(int argc, char** argv) {
  // A launch MPI_Init cannot survive (srun without PMIx under Debian's Open MPI) gets one line
  // saying what to use, from the first task only, instead of Open MPI's failure inside MPI_Init.
  if (const std::string problem = runtime::launch_problem(); !problem.empty()) {
    const char* procid = std::getenv("SLURM_PROCID");
    if (procid == nullptr || std::string_view(procid) == "0")
      fmt::print(stderr, "fabscope: {}\n", problem);
    return static_cast<int>(core::ExitCode::kUsage);
  }
  runtime::Session session(argc, argv);
  const runtime::Comm comm = runtime::Comm::world();
  // The transports (verbs ports and their protection domains) live inside the MPI session: declared
  // after it, destroyed before MPI_Finalize.
  transport::Transport transports(comm);
  const int rank = comm.rank();
  core::log::set_identity(rank, runtime::node_name());
  const std::vector<std::string> args(argv, argv + argc);

  // Preflight 1: the command line and the rank count, judged on every rank.
  apps::Invocation inv;
  std::string error;
  core::ExitCode code = core::ExitCode::kUsage;
  try {
    inv = apps::parse_command_line(args);
    if (!inv.resume.empty()) {
      const std::string path = inv.resume;
      const bool quiet = inv.quiet;
      inv = apps::parse_command_line(resumed_args(comm, args, path));
      inv.resume = path;
      inv.out = path;
      inv.quiet = inv.quiet || quiet;
    }
    // Test hooks (tests/mpi): corrupt one rank's collective result so --check must catch it; one
    // rank of pairs goes silent for a round, so its partner's deadline must fire.
    for (auto& spec : inv.specs) {
      if (const char* corrupt = std::getenv("FABSCOPE_TEST_CORRUPT_RANK");
          corrupt && spec.params().find("test_corrupt_rank")) {
        spec.params().set("test_corrupt_rank", corrupt, "FABSCOPE_TEST_CORRUPT_RANK");
      }
      if (const char* stall = std::getenv("FABSCOPE_TEST_STALL"); stall && spec.kind() == "pairs") {
        spec.params().set("test_stall", stall, "FABSCOPE_TEST_STALL");
      }
      if (const char* h = std::getenv("FABSCOPE_HARNESS_ONLY"); h && spec.kind() == "pairs") {
        spec.params().set("harness_only", h, "FABSCOPE_HARNESS_ONLY");
      }
    }
  } catch (const core::Error& e) {
    error = e.what();
    code = e.code();
  }
  if (inv.help) {
    if (rank == 0) fmt::print("{}", inv.help_text);
    return 0;
  }
  if (const int rc = agree(comm, error, code); rc != 0) return rc;

  // Preflight 2: provenance of every host.
  const auto hosts = suites::gather_hosts(comm);
  // Configuration evidence of every rank (suites/host_config.hpp), for /hosts and `doctor`.
  // FABSCOPE_SYSFS_ROOT reads it from another tree than /sys (tests: a fake sysfs).
  const char* sys_env = std::getenv("FABSCOPE_SYSFS_ROOT");
  const std::string sys_root = sys_env != nullptr && *sys_env != '\0' ? sys_env : "/sys";
  const auto host_configs = suites::gather_host_configs(comm, sys_root);
  if (inv.subcommand == "doctor") return doctor(comm, host_configs, inv, sys_root);
  std::vector<std::string> hostnames;
  {
    std::string names;
    for (const auto& h : hosts) names += h.hostname + '\n';
    names = comm.broadcast_string(names, 0);
    for (const auto line : core::split(names, '\n')) hostnames.emplace_back(line);
  }

  // Preflight 3: the fabric's topology (rank 0): every rank's own host (sysfs, verbs, hwloc),
  // joined with the fabric source when one is given; stored under /topology.
  std::optional<topology::Fabric> fabric;
  std::optional<topology::Endpoints> endpoints;
  const bool fabric_command = inv.subcommand == "topo" || inv.subcommand == "plan";
  {
    error.clear();
    try {
      fabric = suites::build_fabric(comm, inv.topology, hostnames);
      if (fabric && inv.rank_as_host) {
        endpoints = topology::Endpoints::per_host(*fabric);
        if (endpoints->size() != static_cast<std::size_t>(comm.size()) && !fabric_command) {
          throw core::UsageError(fmt::format(
              "--rank-as-host: the fabric has {} hosts but the job has {} ranks; launch "
              "one rank per host",
              endpoints->size(), comm.size()));
        }
      } else if (fabric) {
        const std::vector<std::string> devices =
            inv.specs.empty() ? std::vector<std::string>{}
                              : suites::common_of(inv.specs[0]).options.devices;
        try {
          endpoints = topology::Endpoints::from_ranks(*fabric, hostnames, devices);
        } catch (const core::UsageError& e) {
          endpoints.reset();  // ranks not in the fabric: heatmaps stay in rank order; plans say why
          if (rank == 0 && inv.topology.any() && !fabric_command) {
            fmt::print(stderr,
                       "fabscope: warning: the ranks' hosts are not all in the topology ({}); "
                       "results are kept "
                       "in rank order without /topology/ranks\n",
                       e.what());
          }
        }
      }
    } catch (const core::Error& e) {
      error = e.what();
      code = e.code();
    }
    if (const int rc = agree(comm, error, code); rc != 0) return rc;
  }
  suites::Context probe_ctx{comm, nullptr, hostnames, inv.quiet, stdout};
  probe_ctx.transport = &transports;
  probe_ctx.fabric = fabric ? &*fabric : nullptr;
  // Plans need a fabric source: a host's own view (local discovery) knows no leaves or spines.
  probe_ctx.endpoints = endpoints && inv.topology.any() ? &*endpoints : nullptr;
  for (const auto& spec : inv.specs) {
    error.clear();
    try {
      suites::preflight(comm, spec, inv.subcommand, probe_ctx);
    } catch (const core::Error& e) {
      error = e.what();
      code = e.code();
    }
    if (const int rc = agree(comm, error, code); rc != 0) return rc;
  }
  std::optional<suites::ResumePoint> resume;
  if (!inv.resume.empty()) {
    error.clear();
    try {
      if (rank == 0)
        resume = suites::find_resume_point(probe_ctx, inv.specs.at(0).as<suites::PairsParams>(),
                                           inv.resume);
    } catch (const core::Error& e) {
      error = e.what();
      code = e.code();
    }
    if (const int rc = agree(comm, error, code); rc != 0) return rc;
  }

  if (inv.subcommand == "plan") {
    // A plan's inputs (--new, --budget) are judged here: a bad one is one line and exit 2 on every
    // rank.
    error.clear();
    if (rank == 0) {
      try {
        if (!fabric)
          throw core::UsageError(
              "plan: needs a fabric; pass --topology, --slurm-topology, --ibnetdiscover, "
              "--ibnd-cache, --live, --hostname-pattern or --generate");
        const auto eps = inv.per_nic ? topology::Endpoints::per_nic(*fabric)
                                     : topology::Endpoints::per_host(*fabric);
        std::vector<topology::PlanSummary> summaries;
        if (inv.plan_name.empty()) {
          summaries = topology::summarize_plans(eps, inv.plan_options);
        } else {
          summaries.push_back(topology::summarize(
              *topology::make_plan(inv.plan_name, eps, inv.plan_options), eps, inv.plan_options));
        }
        fmt::print("{}", topology::format_summary(*fabric, 12));
        fmt::print("{}", topology::format_plan_summaries(summaries));
        if (!inv.plan_file_out.empty()) write_plan(inv, eps);
      } catch (const core::Error& e) {
        error = e.what();
        code = e.code();
      }
    }
    return agree(comm, error, code);
  }

  // --pma (rank 0): the fabric's error counters before the first run (suites/fabric_counters.hpp).
  std::vector<topology::PmaPort> pma_before;
  if (inv.pma) {
    error.clear();
    if (rank == 0) {
      try {
        if (!fabric) throw core::UsageError("--pma: no fabric was loaded; give a topology source");
        pma_before = suites::read_fabric_counters(*fabric);
      } catch (const core::Error& e) {
        error = e.what();
        code = e.code();
      }
    }
    if (const int rc = agree(comm, error, code); rc != 0) return rc;
  }

  // Preflight 4: rank 0 creates the results file.
  std::optional<io::ResultsWriter> writer;
  error.clear();
  if (rank == 0) {
    try {
      for (const auto& path :
           inv.attach) {  // before the file exists: a bad attachment leaves no file
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) {
          throw core::UsageError(
              fmt::format("--attach {}: not a readable regular file; give a file path", path));
        }
      }
      if (resume) {
        writer.emplace(io::ResultsWriter::reopen(inv.out));
      } else {
        io::RootInfo root{FABSCOPE_VERSION, core::utc_now_iso(), join(args, " "),
                          inv.suite_text,   comm.size(),         inv.overwrite};
        writer.emplace(inv.out.empty() ? default_out(inv.subcommand) : inv.out, root, hosts);
        writer->write_strings("/command_argv", args);
        // The Slurm job (rank 0's view; every task of a step shares it): root attributes slurm_*.
        if (const auto job = runtime::slurm_job(); job.any()) {
          writer->set_attr("/", "slurm_job_id", job.job_id);
          writer->set_attr("/", "slurm_step_id", job.step_id);
          writer->set_attr("/", "slurm_job_nodelist", job.nodelist);
          writer->set_attr("/", "slurm_job_partition", job.partition);
        }
        if (!inv.config.empty()) writer->write_strings("/config", inv.config);
        std::vector<std::string> problems;
        for (const auto& p : suites::check_hosts(host_configs, {})) problems.push_back(p.line());
        suites::write_host_configs(*writer, host_configs, problems);
      }
      for (const auto& path : resume ? std::vector<std::string>{} : inv.attach) {
        std::ifstream in(path);
        if (!in) throw core::UsageError(fmt::format("--attach {}: cannot read the file", path));
        std::stringstream text;
        text << in.rdbuf();
        writer->write_strings("/attachments/" + std::filesystem::path(path).filename().string(),
                              {text.str()});
      }
    } catch (const core::Error& e) {
      error = e.what();
      code = e.code();
    }
  }
  if (const int rc = agree(comm, error, code); rc != 0) return rc;

  suites::Context ctx{comm, writer ? &*writer : nullptr, hostnames, inv.quiet, stdout};
  ctx.transport = &transports;
  ctx.fabric = probe_ctx.fabric;
  ctx.endpoints = probe_ctx.endpoints;
  ctx.resume = resume ? &*resume : nullptr;
  try {
    if (writer && fabric && !resume)
      suites::write_topology(*writer, *fabric, endpoints ? &*endpoints : nullptr);
    if (inv.subcommand == "topo" && rank == 0) fmt::print("{}", topology::format_summary(*fabric));
    for (const auto& spec : inv.specs) suites::run(ctx, spec);
    if (writer && inv.pma && fabric) {
      const auto rose = suites::write_pma(
          *writer, *fabric, topology::pma_deltas(pma_before, topology::read_pma(*fabric, {})));
      fmt::print("# pma: {} cable end(s) with rising error counters\n", rose.size());
      for (const auto& line : rose) fmt::print("# pma: {}\n", line);
    }
    if (writer) {
      writer->finish();
      fmt::print("# results: {}\n", writer->path());
    }
  } catch (const std::exception& e) {
    // After preflight a failure on one rank must not leave its peers waiting forever.
    core::log::error("{}; aborting the job", e.what());
    comm.abort(1);
  }
  // Measurements recorded as failed (e.g. a collective --check mismatch) make the exit status 1.
  const bool all_ok = comm.all_true(ctx.failed_measurements == 0);
  return all_ok ? 0 : 1;
}
