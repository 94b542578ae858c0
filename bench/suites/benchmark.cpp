#include "suites/benchmark.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/units.hpp"
#include "runtime/comm.hpp"
#include "transport/link.hpp"

namespace fabscope::suites {

void register_all_benchmarks();  // generated from bench/suites/CMakeLists.txt
                                 // (registry_list.cpp.in)

namespace {

std::vector<BenchmarkInfo>& registry() {
  static std::vector<BenchmarkInfo> list;
  return list;
}

const std::vector<BenchmarkInfo>& registered() {
  static const bool once = [] {
    register_all_benchmarks();
    return true;
  }();
  (void)once;
  return registry();
}

}  // namespace

void register_benchmark(BenchmarkInfo info) { registry().push_back(std::move(info)); }

const std::vector<BenchmarkInfo>& benchmarks() { return registered(); }

const BenchmarkInfo* find_benchmark(std::string_view name) {
  for (const auto& b : registered())
    if (b.name == name) return &b;
  return nullptr;
}

std::string benchmark_names() {
  std::string out;
  const auto& all = registered();
  for (std::size_t i = 0; i < all.size(); ++i)
    out += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + all[i].name;
  return out;
}

void declare_transport(ParamSet& set, Common& common, const Traits& traits) {
  transport::Options& o = common.options;
  common.transport = transport::Kind::kMpi;
  set.custom(
      "transport", "mpi",
      traits.verbs ? "mpi or verbs (RDMA through libibverbs)"
                   : "mpi (collectives run over MPI only)",
      [&common, verbs = traits.verbs](const std::string& text, const std::string& where) {
        const auto kind = transport::parse_kind(text);
        if (!kind) {
          throw core::UsageError(fmt::format("{}: unknown transport '{}'; use {}", where, text,
                                             verbs ? "mpi or verbs" : "mpi"));
        }
        common.transport = *kind;
      },
      [&common] { return std::string(transport::kind_name(common.transport)); });

  if (traits.verbs) {
    const std::size_t first = set.params().size();
    set.text("device", o.device, "",
             "verbs: RDMA device NAME[:PORT] (default: the first active port)");
    set.list("devices", o.devices, "",
             "verbs: comma list; local rank i uses the i-th (one rank per NIC)");
    set.integer("gid_index", o.gid_index, -1,
                "verbs: GID index (default: RoCEv2 IPv4-mapped GID on RoCE, LID on IB)")
        .shown_default("");
    set.integer(
           "mtu", o.mtu, 0,
           "verbs: force the path MTU (256..4096; default: the smaller active MTU of both ends)")
        .shown_default("");
    set.text("verb", o.verb, "write",
             traits.atomics ? "verbs: write, send, read, fetch_add, cmp_swap"
                            : "verbs: write, send or read");
    set.integer("tx_depth", o.tx_depth, 128, "verbs: operations in flight per QP").at_least(1);
    set.integer("qps", o.qps, 1,
                "verbs: queue pairs per connection (bandwidth windows spread over them)")
        .at_least(1);
    set.integer("post_list", o.post_list, 1, "verbs: work requests per ibv_post_send call (1..64)")
        .at_least(1);
    set.integer("cq_mod", o.cq_mod, 1, "verbs: request a completion every N operations (bandwidth)")
        .at_least(1);
    o.inline_size = -1;
    set.custom(
        "inline", "", "verbs: max inline bytes (default 220 where the device allows)",
        [&o](const std::string& text, const std::string& where) {
          o.inline_size = static_cast<int>(core::parse_size(text, where));
        },
        [&o] { return std::to_string(o.inline_size); });
    set.text("cm", o.cm, "oob",
             "verbs: connect RC QPs by oob (exchange over MPI) or rdmacm (librdmacm)");
    for (std::size_t i = first; i < set.params().size(); ++i) set.params()[i].verbs_only = true;
  }
  if (traits.timeout) {
    set.duration("timeout", o.timeout_s, "30s",
                 "how long a peer may stay silent in one operation before the pair fails (e.g. "
                 "30s, 500ms; a plain "
                 "number is seconds)");
  }
}

namespace {

// The transport settings' checks that involve more than one value.
void validate_transport(const Common& common, const Traits& traits, const std::string& kind,
                        const Where& where) {
  if (!traits.verbs && common.transport != transport::Kind::kMpi) {
    where.fail(fmt::format("{}: {} runs over MPI only (collectives); use mpi",
                           where.name("transport"), kind));
  }
  const auto& o = common.options;
  if (!transport::is_known_verb(o.verb)) {
    where.fail(
        fmt::format("{}: unknown operation '{}'; use write, send, read, fetch_add or cmp_swap",
                    where.name("verb"), o.verb));
  }
  if ((o.verb == "fetch_add" || o.verb == "cmp_swap") && !traits.atomics) {
    where.fail(fmt::format("{}: atomics are measured by lat only", where.name("verb")));
  }
  if (o.mtu != 0 && o.mtu != 256 && o.mtu != 512 && o.mtu != 1024 && o.mtu != 2048 &&
      o.mtu != 4096) {
    where.fail(fmt::format("{} {}: use 256, 512, 1024, 2048 or 4096", where.name("mtu"), o.mtu));
  }
  if (o.post_list > 64) where.fail(fmt::format("{} must be at most 64", where.name("post_list")));
  if (!(o.timeout_s > 0)) where.fail(fmt::format("{} must be positive", where.name("timeout")));
  if (o.pair_timeout_s < 0)
    where.fail(
        fmt::format("{} must be positive (e.g. 10s), or 0 for none", where.name("pair_timeout")));
  if (o.round_timeout_s < 0 && o.round_timeout_s != -1) {
    where.fail(
        fmt::format("{} must be positive (e.g. 2m), or 0 for none", where.name("round_timeout")));
  }
  if (o.cm != "oob" && o.cm != "rdmacm") {
    where.fail(fmt::format("{}: unknown connection method '{}'; use oob or rdmacm",
                           where.name("cm"), o.cm));
  }
}

}  // namespace

BenchSpec::BenchSpec(const BenchmarkInfo& info) : state_(std::make_shared<State>()) {
  state_->info = &info;
  state_->bench = info.make();
  Common& common = state_->bench->common();
  common.name = info.name;
  declare_transport(state_->params, common, info.traits);
  state_->bench->declare(state_->params);
}

void BenchSpec::finish(const Where& where) {
  Benchmark& b = *state_->bench;
  b.resolve(state_->params, where);
  // The shared checks first: a bad transport or verb says so before any benchmark rule.
  validate_transport(b.common(), info().traits, kind(), where);
  state_->params.check(where);
  b.validate(where);
  b.common().parameters = state_->params.values();
}

void BenchSpec::check_verbs_settings(const Where& where) const {
  // Verbs settings given for an MPI run would be silently ignored: say so instead.
  if (common().transport == transport::Kind::kMpi) {
    for (const auto& p : state_->params.params()) {
      if (p.verbs_only && p.given > 0) {
        where.fail(fmt::format(
            "{} applies to --transport verbs only ({} runs over mpi here); drop it or add "
            "--transport verbs",
            where.name(p.name), kind()));
      }
    }
  }
}

void preflight(const runtime::Comm& comm, const BenchSpec& spec, const std::string& subcommand,
               const Context& ctx) {
  const int min_ranks = spec.info().traits.min_ranks;
  if (comm.size() < min_ranks) {
    throw core::UsageError(fmt::format(
        "{} needs at least {} ranks (got {}); launch with e.g. 'mpirun -np {} fabscope {} ...'",
        spec.kind(), min_ranks, comm.size(), min_ranks, subcommand));
  }
  spec.bench().preflight(comm, ctx);
  const Common& c = spec.common();
  if (c.transport == transport::Kind::kVerbs) {
    // Opens this rank's device and port: no device, a wrong name, a down port or a bad GID index
    // is reported here, before anything runs.
    (void)ctx.transport->port_counters(c.transport, c.options);
  }
}

void run(Context& ctx, const BenchSpec& spec) { spec.bench().run(ctx); }

}  // namespace fabscope::suites
