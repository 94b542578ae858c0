#include "apps/cli.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>
#include <tuple>

#include "core/error.hpp"
#include "core/strings.hpp"
#include "core/units.hpp"
#include "suites/load.hpp"
#include "transport/link.hpp"

namespace fabscope::apps {
namespace {

struct Raw {
  std::string transport = "mpi", sizes, out, label;
  int iters = -1, warmup = -1, bw_iters = -1;
  std::string lat_size = "8", bw_size = "1M", duration;
  std::string suite_file;
  bool quiet = false;
  std::vector<std::string> attach;
  // verbs
  std::string device, devices, verb = "write", inline_size;
  int gid_index = -1, mtu = 0, tx_depth = 128, qps = 1, post_list = 1, cq_mod = 1;
  std::string timeout = "30s";
  std::string cm = "oob", pair_timeout, round_timeout, resume;
  int repeat = 1;
  // topology and plans
  suites::TopologySource topo;
  bool rank_as_host = false, per_nic = false;
  std::string plan = "all-pairs", plan_file, budget, new_hosts;
  std::string pair_time = "1s";
  int k = 2;
  std::uint64_t seed = 1;
  // coll
  std::string ops = "allreduce,allgather,reduce_scatter,alltoall,bcast,barrier";
  std::string dtype = "float", reduction = "sum", node_by = "host", max_buffer = "1G";
  bool nonblocking = false, check = false;
  int ranks_per_node = 1;
  // shift and congestion
  std::string pattern = "shift", size = "1M", link_rate;
  int steps = 0;
  double victims = 0.2;
  std::string placement = "random", patterns = "incast,alltoall,flood", aggressor_size = "1M";
  std::string test_stall;  // hidden test hook: RANK,STEP (shift) or RANK,PHASE (congestion)
};


void add_common(CLI::App& sub, Raw& raw) {
  sub.add_option("--transport", raw.transport, "mpi or verbs (RDMA through libibverbs)")
      ->capture_default_str();
  if (sub.get_name() != "coll") {
    sub.add_option("--device", raw.device, "verbs: RDMA device NAME[:PORT] (default: the first active port)");
    sub.add_option("--devices", raw.devices, "verbs: comma list; local rank i uses the i-th (one rank per NIC)");
    sub.add_option("--gid-index", raw.gid_index, "verbs: GID index (default: RoCEv2 IPv4-mapped GID on RoCE, LID on IB)");
    sub.add_option("--mtu", raw.mtu, "verbs: force the path MTU (256..4096; default: the smaller active MTU of both ends)");
    sub.add_option("--verb", raw.verb, "verbs: write, send, read, fetch_add, cmp_swap (atomics: lat only)")
        ->capture_default_str();
    sub.add_option("--tx-depth", raw.tx_depth, "verbs: operations in flight per QP")->capture_default_str();
    sub.add_option("--qps", raw.qps, "verbs: queue pairs per connection (bandwidth windows spread over them)")
        ->capture_default_str();
    sub.add_option("--post-list", raw.post_list, "verbs: work requests per ibv_post_send call (1..64)")
        ->capture_default_str();
    sub.add_option("--cq-mod", raw.cq_mod, "verbs: request a completion every N operations (bandwidth)")
        ->capture_default_str();
    sub.add_option("--inline", raw.inline_size, "verbs: max inline bytes (default 220 where the device allows)");
    sub.add_option("--timeout", raw.timeout, "how long a peer may stay silent in one operation before the pair fails (e.g. 30s, 500ms; a plain number is seconds)")
        ->capture_default_str();
    sub.add_option("--cm", raw.cm, "verbs: connect RC QPs by oob (exchange over MPI) or rdmacm (librdmacm)")
        ->capture_default_str();
  }
  sub.add_option("--out", raw.out, "results file (HDF5); default results/fabscope-<cmd>-<time>.h5");
  sub.add_option("--label", raw.label, "free text stored with the results (e.g. firmware version)");
  sub.add_flag("--quiet", raw.quiet, "no progress lines");
  sub.add_option("--attach", raw.attach, "store this file verbatim under /attachments (e.g. fabscope-micro JSON)");
  auto* t = sub.add_option_group("topology", "where the fabric's topology comes from (stored under /topology)");
  t->add_option("--topology", raw.topo.yaml, "topology YAML (configs/topologies/)");
  t->add_option("--ibnetdiscover", raw.topo.ibnetdiscover, "an ibnetdiscover text dump");
  sub.add_option("--routes", raw.topo.routes, "with --ibnetdiscover: an ibroute dump of the switches' forwarding tables");
  t->add_option("--ibnd-cache", raw.topo.ibnd_cache, "a libibnetdisc cache file (ibnetdiscover --cache)");
  t->add_flag("--live", raw.topo.live, "discover the InfiniBand fabric now through libibnetdisc");
  t->add_option("--hostname-pattern", raw.topo.hostname_pattern,
                "regex with named groups (?<rack>..) and optionally (?<node>..), (?<pod>..)");
  t->add_option("--generate", raw.topo.generate, "a generated fat tree, e.g. hosts=12500,rails=8 (topology/generator.hpp)");
  sub.add_flag("--rank-as-host", raw.rank_as_host, "rank i plays the fabric's i-th host (tests on one machine)");
  t->require_option(0, 1);  // one source at most
}

void add_sweep(CLI::App& sub, Raw& raw, const char* default_sizes, int default_iters, int default_warmup) {
  // Subcommands share `raw`, so defaults are applied after parsing (see sizes_or_default).
  sub.add_option("--sizes", raw.sizes, fmt::format("message sizes: LO:HI powers of two, or a list (8,64K,1M); "
                                                   "default {}", default_sizes));
  sub.add_option("--iters", raw.iters, fmt::format("timed iterations per size (default {})", default_iters));
  sub.add_option("--warmup", raw.warmup, fmt::format("untimed iterations per size (default {})", default_warmup));
  if (sub.get_name() != "coll") {
    sub.add_option("--duration", raw.duration, "run for this long in all (e.g. 30s), split over the sizes, instead of "
                                               "--iters times per size (--iters then caps each size; default cap 100000)");
  }
}

transport::Options transport_options(const Raw& raw) {
  transport::Options o;
  o.device = raw.device;
  for (const auto& d : split_list(raw.devices)) o.devices.push_back(d);
  o.gid_index = raw.gid_index;
  o.mtu = raw.mtu;
  o.verb = raw.verb;
  o.tx_depth = raw.tx_depth;
  o.qps = raw.qps;
  o.post_list = raw.post_list;
  o.cq_mod = raw.cq_mod;
  o.inline_size = raw.inline_size.empty() ? -1 : static_cast<int>(core::parse_size(raw.inline_size, "--inline"));
  o.timeout_s = core::parse_duration_s(raw.timeout, "--timeout");
  o.cm = raw.cm;
  if (!raw.pair_timeout.empty()) o.pair_timeout_s = core::parse_duration_s(raw.pair_timeout, "--pair-timeout");
  if (!raw.round_timeout.empty()) o.round_timeout_s = core::parse_duration_s(raw.round_timeout, "--round-timeout");
  return o;
}

// --test-stall RANK,WHEN -> {rank, when}; {-1, -1} when not given.
std::pair<int, int> parse_stall(const std::string& text) {
  if (text.empty()) return {-1, -1};
  const auto parts = split_list(text);
  try {
    if (parts.size() == 2) return {std::stoi(parts[0]), std::stoi(parts[1])};
  } catch (const std::exception&) {
  }
  throw core::UsageError(fmt::format("--test-stall '{}': give RANK,STEP", text));
}

}  // namespace

double parse_rate_gbps(const std::string& text, const std::string& what) {
  // "400G", "25Gb/s", "100 Gbps", "800M", "1.6T", "10" (Gb/s): decimal units of bits per second.
  std::string t;
  for (const char c : text)
    if (c != ' ') t += c;
  for (const char* suffix : {"b/s", "bps", "bit/s"}) {
    const std::string sfx(suffix);
    if (t.size() > sfx.size() && t.compare(t.size() - sfx.size(), sfx.size(), sfx) == 0) t.resize(t.size() - sfx.size());
  }
  double scale = 1.0;  // Gb/s
  if (!t.empty() && std::string("MGT").find(static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())))) != std::string::npos) {
    const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(t.back())));
    scale = u == 'M' ? 1e-3 : u == 'G' ? 1.0 : 1e3;
    t.pop_back();
  }
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !(v > 0) || !std::isfinite(v)) {
    throw core::UsageError(fmt::format("{} '{}': give a positive link rate in bits per second, e.g. 100G, 400Gb/s, "
                                       "800M or 1.6T (a bare number is Gb/s)",
                                       what, text));
  }
  return v * scale;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  for (auto piece : core::split(text, ',')) {
    while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
    if (!piece.empty()) out.emplace_back(piece);
  }
  return out;
}

void validate(const suites::BenchSpec& spec, const std::string& where, bool cli) {
  // Suite fields are snake_case (bw_iters); the same settings on the command line are flags.
  auto name = [&](std::string field) {
    if (!cli) return field;
    for (char& c : field)
      if (c == '_') c = '-';
    return "--" + field;
  };
  const auto& common = suites::common_of(spec);
  if (!transport::is_known_transport(common.transport)) {
    throw core::UsageError(fmt::format("{}: {}: unknown transport '{}'; use mpi", where,
                                       name("transport"), common.transport));
  }
  auto at_least = [&](int v, int lo, const char* field) {
    if (v < lo) {
      throw core::UsageError(fmt::format("{}: {} must be at least {} (got {})", where, name(field), lo, v));
    }
  };
  const auto& o = common.options;
  if (!transport::is_known_verb(o.verb)) {
    throw core::UsageError(fmt::format("{}: {}: unknown operation '{}'; use write, send, read, fetch_add or cmp_swap",
                                       where, name("verb"), o.verb));
  }
  if ((o.verb == "fetch_add" || o.verb == "cmp_swap") && spec.kind != suites::Kind::kLat) {
    throw core::UsageError(fmt::format("{}: {}: atomics are measured by lat only", where, name("verb")));
  }
  if (o.mtu != 0 && o.mtu != 256 && o.mtu != 512 && o.mtu != 1024 && o.mtu != 2048 && o.mtu != 4096) {
    throw core::UsageError(fmt::format("{}: {} {}: use 256, 512, 1024, 2048 or 4096", where, name("mtu"), o.mtu));
  }
  at_least(o.tx_depth, 1, "tx_depth");
  at_least(o.qps, 1, "qps");
  at_least(o.post_list, 1, "post_list");
  at_least(o.cq_mod, 1, "cq_mod");
  if (o.post_list > 64) throw core::UsageError(fmt::format("{}: {} must be at most 64", where, name("post_list")));
  if (!(o.timeout_s > 0)) throw core::UsageError(fmt::format("{}: {} must be positive", where, name("timeout")));
  if (o.pair_timeout_s < 0) {
    throw core::UsageError(fmt::format("{}: {} must be positive (e.g. 10s), or 0 for none", where, name("pair_timeout")));
  }
  if (o.round_timeout_s < 0 && o.round_timeout_s != -1) {
    throw core::UsageError(fmt::format("{}: {} must be positive (e.g. 2m), or 0 for none", where, name("round_timeout")));
  }
  if (o.cm != "oob" && o.cm != "rdmacm") {
    throw core::UsageError(fmt::format("{}: {}: unknown connection method '{}'; use oob or rdmacm", where, name("cm"), o.cm));
  }
  if (spec.kind == suites::Kind::kColl) {
    const auto& c = spec.coll;
    if (c.common.transport != "mpi") {
      throw core::UsageError(fmt::format("{}: {}: collectives run over MPI only; use mpi", where, name("transport")));
    }
    if (c.ops.empty()) throw core::UsageError(fmt::format("{}: {}: no operations given", where, name("ops")));
    for (const auto& op : c.ops) {
      const auto& known = suites::coll_op_names();
      if (std::find(known.begin(), known.end(), op) == known.end()) {
        throw core::UsageError(fmt::format("{}: {}: unknown operation '{}'; use allreduce, allgather, reduce_scatter, "
                                           "alltoall, bcast or barrier",
                                           where, name("ops"), op));
      }
    }
    if (!suites::is_coll_dtype(c.dtype)) {
      throw core::UsageError(fmt::format("{}: {}: unknown data type '{}'; use int32, int64, float or double", where, name("dtype"), c.dtype));
    }
    if (!suites::is_coll_reduction(c.op)) {
      throw core::UsageError(fmt::format("{}: {}: unknown reduction '{}'; use sum, prod, min or max", where, name("op"), c.op));
    }
    at_least(c.iters, 1, "iters");
    at_least(c.warmup, 0, "warmup");
    at_least(c.ranks_per_node, 1, "ranks_per_node");
    return;
  }
  if (spec.kind == suites::Kind::kShift || spec.kind == suites::Kind::kCongestion) {
    if (common.transport == "verbs" && o.verb != "write") {
      throw core::UsageError(fmt::format("{}: {} {}: {} streams RDMA WRITEs only; drop the option (write is the default)",
                                         where, name("verb"), o.verb, suites::kind_name(spec.kind)));
    }
    if (o.qps != 1) {
      throw core::UsageError(fmt::format("{}: {} {}: {} runs one queue pair per flow; drop the option", where,
                                         name("qps"), o.qps, suites::kind_name(spec.kind)));
    }
  }
  if (spec.kind == suites::Kind::kShift) {
    const auto& s = spec.shift;
    if (s.pattern != "shift" && s.pattern != "permutation") {
      throw core::UsageError(fmt::format("{}: {}: unknown pattern '{}'; use shift or permutation", where, name("pattern"), s.pattern));
    }
    at_least(s.iters, 1, "iters");
    at_least(s.warmup, 0, "warmup");
    at_least(s.steps, 0, "steps");
    if (s.steps > 0 && s.pattern != "permutation") {
      throw core::UsageError(fmt::format("{}: {} applies to the permutation pattern only (shift always runs N - 1 steps)",
                                         where, name("steps")));
    }
    if (s.size == 0) throw core::UsageError(fmt::format("{}: {} must be at least 1 byte", where, name("size")));
    return;
  }
  if (spec.kind == suites::Kind::kCongestion) {
    const auto& c = spec.congestion;
    if (!(c.victim_fraction > 0 && c.victim_fraction < 1)) {
      throw core::UsageError(fmt::format("{}: {} {}: give the victims' share of the ranks, between 0 and 1 (e.g. 0.2)", where,
                                         name("victims"), c.victim_fraction));
    }
    if (c.placement != "random" && c.placement != "leaf" && c.placement != "spread") {
      throw core::UsageError(fmt::format("{}: {}: unknown placement '{}'; use random, leaf or spread", where, name("placement"),
                                         c.placement));
    }
    if (c.patterns.empty()) throw core::UsageError(fmt::format("{}: {}: no aggressor patterns given", where, name("patterns")));
    const auto& known = suites::load::pattern_names();
    for (std::size_t i = 0; i < c.patterns.size(); ++i) {
      if (std::find(known.begin(), known.end(), c.patterns[i]) == known.end()) {
        throw core::UsageError(fmt::format("{}: {}: unknown pattern '{}'; use incast, alltoall or flood", where,
                                           name("patterns"), c.patterns[i]));
      }
      if (std::find(c.patterns.begin(), c.patterns.begin() + static_cast<std::ptrdiff_t>(i), c.patterns[i]) !=
          c.patterns.begin() + static_cast<std::ptrdiff_t>(i)) {
        throw core::UsageError(fmt::format("{}: {}: '{}' is listed twice", where, name("patterns"), c.patterns[i]));
      }
    }
    at_least(c.iters, 1, "iters");
    at_least(c.bw_iters, 1, "bw_iters");
    at_least(c.warmup, 0, "warmup");
    for (const auto& [v, field] : {std::pair{c.aggressor_size, "aggressor_size"}, std::pair{c.lat_size, "lat_size"},
                                   std::pair{c.bw_size, "bw_size"}}) {
      if (v == 0) throw core::UsageError(fmt::format("{}: {} must be at least 1 byte", where, name(field)));
    }
    return;
  }
  if (spec.kind == suites::Kind::kPairs) {
    at_least(spec.pairs.lat_iters, 1, "iters");
    at_least(spec.pairs.bw_iters, 1, "bw_iters");
    at_least(spec.pairs.warmup, 0, "warmup");
    at_least(spec.pairs.repeat, 1, "repeat");
    if (spec.pairs.bw_size == 0) {
      throw core::UsageError(fmt::format("{}: {} must be at least 1 byte", where, name("bw_size")));
    }
  } else {
    at_least(spec.sweep.iters, 1, "iters");
    at_least(spec.sweep.warmup, 0, "warmup");
  }
}

Invocation parse_command_line(const std::vector<std::string>& args) {
  CLI::App app{"fabscope: RDMA fabric benchmarks (run under mpirun or srun, one rank per node or NIC)",
               "fabscope"};
  app.require_subcommand(1, 1);
  app.set_help_all_flag("--help-all", "help for every subcommand");
  Raw raw;
  auto* lat = app.add_subcommand("lat", "ping-pong latency between ranks 0 and 1 over message sizes");
  auto* bw = app.add_subcommand("bw", "unidirectional windowed bandwidth, rank 0 -> rank 1");
  auto* bibw = app.add_subcommand("bibw", "bidirectional windowed bandwidth between ranks 0 and 1");
  auto* pairs = app.add_subcommand("pairs", "all-pairs latency and bandwidth matrix over every rank");
  auto* coll = app.add_subcommand("coll", "collective scaling over node counts and message sizes");
  auto* shift = app.add_subcommand("shift", "the whole fabric loaded at once, step by step (mpiGraph): N x N bandwidth "
                                            "under load, effective throughput per step");
  auto* congestion = app.add_subcommand("congestion", "victims' latency, bandwidth and allreduce alone and under "
                                                      "aggressor traffic (GPCNeT): impact factors");
  auto* topo = app.add_subcommand("topo", "discover or load the fabric's topology, print it, store it in --out");
  auto* plan = app.add_subcommand("plan", "print the traffic plans for a fabric: rounds, time, link coverage");
  auto* run = app.add_subcommand("run", "run a suite file (e.g. configs/suites/quick.yaml)");
  for (auto* s : {lat, bw, bibw, pairs, coll, shift, congestion, run, topo, plan}) add_common(*s, raw);
  for (auto* s : {pairs, plan}) {
    s->add_option("--k", raw.k, "hop-class plan: partners per host per hop class")->capture_default_str();
    s->add_option("--budget", raw.budget, "budget plan: the time the plan may take (e.g. 30m)");
    s->add_option("--pair-time", raw.pair_time, "time one round of pairs takes, for plan estimates (e.g. 2s)")
        ->capture_default_str();
    s->add_option("--new", raw.new_hosts, "new-rack plan: comma list of new racks or hosts");
    s->add_option("--seed", raw.seed, "seed of the sampled plans")->capture_default_str();
  }
  pairs->add_option("--plan", raw.plan, "all-pairs, hop-class, new-rack, rail-aligned or budget")->capture_default_str();
  pairs->add_option("--plan-file", raw.plan_file, "run the rounds of a plan file (topology/PLANS.md)");
  plan->add_option("--plan", raw.plan, "one plan (default: every plan)");
  plan->add_flag("--per-nic", raw.per_nic, "one endpoint per NIC (rails) instead of per host");
  add_sweep(*lat, raw, "1:4M", 1000, 100);
  add_sweep(*bw, raw, "1:4M", 20, 2);
  add_sweep(*bibw, raw, "1:4M", 20, 2);
  pairs->add_option("--lat-size", raw.lat_size, "latency message size")->capture_default_str();
  pairs->add_option("--bw-size", raw.bw_size, "bandwidth message size")->capture_default_str();
  pairs->add_option("--iters", raw.iters, "latency ping-pongs per pair (default 1000)");
  pairs->add_option("--bw-iters", raw.bw_iters, "bandwidth windows per direction per pair (default 20)");
  pairs->add_option("--warmup", raw.warmup, "untimed ping-pongs per pair (default 10)");
  pairs->add_option("--repeat", raw.repeat, "measure every pair K times, repeats interleaved (the whole schedule K times)")
      ->capture_default_str();
  pairs->add_option("--pair-timeout", raw.pair_timeout,
                    "deadline for one pair (connect, latency, both bandwidth directions), e.g. 10s; a pair that misses "
                    "it is recorded as timed out and the run goes on (default: none, --timeout per operation)");
  pairs->add_option("--round-timeout", raw.round_timeout,
                    "how long a rank waits for the others between pairs before it ends the job, keeping the rounds "
                    "measured (a rank cut off from the rest would otherwise hang it; finish with --resume); "
                    "0 = forever (default: pair timeout + 2 x timeout + 30 s with --pair-timeout, else forever)");
  pairs->add_option("--resume", raw.resume,
                    "finish the pairs run of an interrupted results file (same ranks; its command line is reused)");
  add_sweep(*coll, raw, "8:256M", 20, 5);
  coll->add_option("--ops", raw.ops, "comma list of allreduce, allgather, reduce_scatter, alltoall, bcast, barrier")
      ->capture_default_str();
  coll->add_option("--dtype", raw.dtype, "int32, int64, float, double")->capture_default_str();
  coll->add_option("--op", raw.reduction, "reduction: sum, prod, min, max")->capture_default_str();
  coll->add_flag("--nonblocking", raw.nonblocking, "use MPI_Iallreduce etc. followed by MPI_Wait");
  coll->add_flag("--check", raw.check, "verify every result against known per-rank inputs");
  coll->add_option("--ranks-per-node", raw.ranks_per_node, "ranks of each node that take part")->capture_default_str();
  coll->add_option("--node-by", raw.node_by, "host: ranks sharing memory form a node; rank: every rank is a node")
      ->capture_default_str();
  coll->add_option("--max-buffer", raw.max_buffer, "largest buffer per rank; larger sizes are skipped")
      ->capture_default_str();
  shift->add_option("--pattern", raw.pattern, "shift (step d: rank i sends to i + d) or permutation (seeded random "
                                               "derangements)")->capture_default_str();
  shift->add_option("--size", raw.size, "message size")->capture_default_str();
  shift->add_option("--iters", raw.iters, "timed windows per flow and step (default 10)");
  shift->add_option("--warmup", raw.warmup, "untimed windows per flow and step (default 2)");
  shift->add_option("--steps", raw.steps, "permutation: steps (default N - 1)");
  shift->add_option("--link-rate", raw.link_rate, "the senders' link rate for effective throughput, e.g. 100G, 400Gb/s "
                                                  "(default: the verbs port's active rate; unknown on mpi)");
  congestion->add_option("--victims", raw.victims, "victims' share of the ranks (at least 2 victims and 2 aggressors)")
      ->capture_default_str();
  congestion->add_option("--placement", raw.placement, "random, leaf (victims fill whole leaves) or spread (over leaves); "
                                                       "leaf and spread need a topology")->capture_default_str();
  congestion->add_option("--patterns", raw.patterns, "aggressor patterns in order: incast, alltoall, flood")
      ->capture_default_str();
  congestion->add_option("--aggressor-size", raw.aggressor_size, "aggressors' message size")->capture_default_str();
  congestion->add_option("--lat-size", raw.lat_size, "victims' ping-pong size")->capture_default_str();
  congestion->add_option("--bw-size", raw.bw_size, "victims' bandwidth message size")->capture_default_str();
  congestion->add_option("--iters", raw.iters, "victims' ping-pongs and allreduces per phase (default 1000)");
  congestion->add_option("--bw-iters", raw.bw_iters, "victims' bandwidth windows per phase (default 20)");
  congestion->add_option("--warmup", raw.warmup, "untimed ping-pongs and allreduces per phase (default 10)");
  for (auto* s : {shift, congestion}) {
    s->add_option("--seed", raw.seed, "seed of the random choices")->capture_default_str();
    // Test hook (tests/mpi/load_runs.sh): a rank that stays silent, to show its peers time out and go on.
    s->add_option("--test-stall", raw.test_stall, "")->group("");
  }
  run->add_option("suite", raw.suite_file, "suite YAML file")->required();

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
  } catch (const CLI::ParseError& e) {
    std::string sub;
    for (auto* s : app.get_subcommands()) sub = " " + s->get_name();
    throw core::UsageError(fmt::format("{}; see 'fabscope{} --help'", e.what(), sub));
  }
  const CLI::App* chosen = app.get_subcommands().front();
  inv.subcommand = chosen->get_name();
  inv.out = raw.out;
  inv.quiet = raw.quiet;
  inv.attach = raw.attach;
  inv.topology = raw.topo;
  inv.rank_as_host = raw.rank_as_host;
  inv.resume = raw.resume;
  topology::PlanOptions plan_options;
  plan_options.k = raw.k;
  plan_options.pair_time_s = core::parse_duration_s(raw.pair_time, "--pair-time");
  plan_options.seed = raw.seed;
  plan_options.new_hosts = split_list(raw.new_hosts);
  if (!raw.budget.empty()) plan_options.budget_s = core::parse_duration_s(raw.budget, "--budget");
  if (raw.k < 1) throw core::UsageError("--k must be at least 1");
  if (!(plan_options.pair_time_s > 0)) throw core::UsageError("--pair-time must be positive (e.g. 2s)");
  if (!raw.topo.routes.empty() && raw.topo.ibnetdiscover.empty()) {
    throw core::UsageError("--routes needs --ibnetdiscover (the routes belong to that dump's switches)");
  }
  if (inv.subcommand == "topo" || inv.subcommand == "plan") {
    inv.plan_name = inv.subcommand == "plan" && chosen->count("--plan") > 0 ? raw.plan : "";
    inv.per_nic = raw.per_nic;
    inv.plan_options = plan_options;
    if (inv.subcommand == "plan" && !inv.plan_name.empty()) {
      const auto names = topology::plan_names();
      if (std::find(names.begin(), names.end(), inv.plan_name) == names.end()) {
        throw core::UsageError(fmt::format("--plan: unknown plan '{}'; use {}", inv.plan_name, fmt::join(names, ", ")));
      }
    }
    return inv;
  }
  const suites::Common common{inv.subcommand, raw.label, raw.transport, transport_options(raw)};
  if (inv.subcommand == "run") {
    std::ifstream in(raw.suite_file);
    if (!in) throw core::UsageError(fmt::format("{}: cannot read the suite file; check the path", raw.suite_file));
    std::stringstream ss;
    ss << in.rdbuf();
    inv.suite_text = ss.str();
    inv.specs = parse_suite(inv.suite_text, raw.suite_file);
    // Transport flags given on the command line apply to every benchmark of the suite (over what
    // the suite file says); the others keep the suite's values.
    const transport::Options given = transport_options(raw);
    auto has = [&](const char* flag) { return chosen->count(flag) > 0; };
    for (auto& s : inv.specs) {
      auto& c = suites::common_of(s);
      c.label = raw.label;
      if (has("--transport")) c.transport = raw.transport;
      auto& o = c.options;
      if (has("--device")) o.device = given.device;
      if (has("--devices")) o.devices = given.devices;
      if (has("--gid-index")) o.gid_index = given.gid_index;
      if (has("--mtu")) o.mtu = given.mtu;
      if (has("--verb")) o.verb = given.verb;
      if (has("--tx-depth")) o.tx_depth = given.tx_depth;
      if (has("--qps")) o.qps = given.qps;
      if (has("--post-list")) o.post_list = given.post_list;
      if (has("--cq-mod")) o.cq_mod = given.cq_mod;
      if (has("--inline")) o.inline_size = given.inline_size;
      if (has("--timeout")) o.timeout_s = given.timeout_s;
      if (has("--cm")) o.cm = given.cm;
      validate(s, fmt::format("fabscope run {}: benchmark '{}'", raw.suite_file, c.name), true);
    }
    return inv;
  }
  // An option the user did not give keeps the benchmark's default.
  auto pick = [&](const char* flag, int value, int def) { return chosen->count(flag) > 0 ? value : def; };
  suites::BenchSpec spec;
  spec.kind = *suites::parse_kind(inv.subcommand);
  if (spec.kind == suites::Kind::kColl) {
    auto& c = spec.coll;
    c.common = common;
    c.sizes = core::parse_sizes(chosen->count("--sizes") > 0 ? raw.sizes : "8:256M", "--sizes");
    c.iters = pick("--iters", raw.iters, c.iters);
    c.warmup = pick("--warmup", raw.warmup, c.warmup);
    c.ops = split_list(raw.ops);
    c.dtype = raw.dtype;
    c.op = raw.reduction;
    c.nonblocking = raw.nonblocking;
    c.check = raw.check;
    c.ranks_per_node = raw.ranks_per_node;
    if (raw.node_by != "host" && raw.node_by != "rank") {
      throw core::UsageError(fmt::format("--node-by: '{}' is not host or rank", raw.node_by));
    }
    c.node_per_rank = raw.node_by == "rank";
    c.max_buffer_bytes = core::parse_size(raw.max_buffer, "--max-buffer");
  } else if (spec.kind == suites::Kind::kShift) {
    auto& s = spec.shift;
    s.common = common;
    s.pattern = raw.pattern;
    s.size = core::parse_size(raw.size, "--size");
    s.iters = pick("--iters", raw.iters, s.iters);
    s.warmup = pick("--warmup", raw.warmup, s.warmup);
    s.steps = raw.steps;
    s.seed = raw.seed;
    if (!raw.link_rate.empty()) s.link_rate_gbps = parse_rate_gbps(raw.link_rate, "--link-rate");
    std::tie(s.test_stall_rank, s.test_stall_step) = parse_stall(raw.test_stall);
  } else if (spec.kind == suites::Kind::kCongestion) {
    auto& c = spec.congestion;
    c.common = common;
    c.victim_fraction = raw.victims;
    c.placement = raw.placement;
    c.seed = raw.seed;
    c.patterns = split_list(raw.patterns);
    c.aggressor_size = core::parse_size(raw.aggressor_size, "--aggressor-size");
    c.lat_size = core::parse_size(raw.lat_size, "--lat-size");
    c.bw_size = core::parse_size(raw.bw_size, "--bw-size");
    c.iters = pick("--iters", raw.iters, c.iters);
    c.bw_iters = pick("--bw-iters", raw.bw_iters, c.bw_iters);
    c.warmup = pick("--warmup", raw.warmup, c.warmup);
    std::tie(c.test_stall_rank, c.test_stall_phase) = parse_stall(raw.test_stall);
  } else if (spec.kind == suites::Kind::kPairs) {
    spec.pairs.common = common;
    spec.pairs.plan = raw.plan;
    spec.pairs.plan_file = raw.plan_file;
    spec.pairs.plan_options = plan_options;
    const auto names = topology::plan_names();
    if (std::find(names.begin(), names.end(), raw.plan) == names.end()) {
      throw core::UsageError(fmt::format("--plan: unknown plan '{}'; use {}", raw.plan, fmt::join(names, ", ")));
    }
    spec.pairs.lat_size = core::parse_size(raw.lat_size, "--lat-size");
    spec.pairs.bw_size = core::parse_size(raw.bw_size, "--bw-size");
    spec.pairs.lat_iters = pick("--iters", raw.iters, spec.pairs.lat_iters);
    spec.pairs.bw_iters = pick("--bw-iters", raw.bw_iters, spec.pairs.bw_iters);
    spec.pairs.warmup = pick("--warmup", raw.warmup, spec.pairs.warmup);
    spec.pairs.repeat = raw.repeat;
  } else {
    spec.sweep.common = common;
    spec.sweep.sizes = core::parse_sizes(chosen->count("--sizes") > 0 ? raw.sizes : "1:4M", "--sizes");
    const bool is_lat = spec.kind == suites::Kind::kLat;
    spec.sweep.iters = pick("--iters", raw.iters, is_lat ? 1000 : 20);
    spec.sweep.warmup = pick("--warmup", raw.warmup, is_lat ? 100 : 2);
    if (!raw.duration.empty()) {
      spec.sweep.duration_s = core::parse_duration_s(raw.duration, "--duration");
      if (!(spec.sweep.duration_s > 0)) throw core::UsageError("--duration must be longer than 0 s (e.g. 30s)");
      spec.sweep.iters = pick("--iters", raw.iters, 100000);
    }
  }
  validate(spec, "fabscope " + inv.subcommand, true);
  inv.specs.push_back(spec);
  return inv;
}

}  // namespace fabscope::apps
