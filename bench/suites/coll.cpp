// coll: how collectives scale with node count and message size.
//
// Groups: nodes are found with Comm::split_shared() (or, with node_per_rank, every rank is
// a node) and ordered by their lowest world rank; group g holds the first g nodes (g = 2, 4, 8,
// ... and N), ranks_per_node ranks of each. Ranks outside the group wait without spinning.
// One sample = one iteration: a barrier on the group, then the collective, timed on every rank;
// the sample is the maximum of that iteration's time over the group's ranks.
// Sizes follow nccl-tests: `size` is the per-rank buffer of allreduce and bcast, the total
// (gathered) output of allgather, the total input of reduce_scatter, and the whole per-rank
// send buffer of alltoall; counts are rounded down to whole elements (per peer), `bytes` records
// the size actually moved.
//   algbw_gbps = bytes * 8 / time_p50_ns
//   busbw_gbps = algbw_gbps * factor, n = ranks in the group:
//     allreduce 2(n-1)/n; allgather, reduce_scatter, alltoall (n-1)/n; bcast 1; barrier: none
//   scaling_efficiency = busbw_gbps(group) / busbw_gbps(2-node group), same size
// --check fills inputs with known per-rank patterns, runs one more (untimed) collective and
// counts wrong elements on every rank; any error marks that (group, size) failed.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/stats.hpp"
#include "core/units.hpp"
#include "io/schema.hpp"
#include "suites/benchmark.hpp"
#include "suites/sweep.hpp"
#include "transport/buffer.hpp"

namespace fabscope::suites {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct NodeLayout {
  std::vector<int> node_of_rank;  // world rank -> node index
  std::vector<int> local_rank;    // world rank -> rank within its node
  int n_nodes = 0;
};

NodeLayout find_nodes(bool node_per_rank) {
  const runtime::Comm world = runtime::Comm::world();
  const int rank = world.rank(), size = world.size();
  std::int32_t mine[2] = {rank, 0};  // node index, local rank
  if (!node_per_rank) {
    const runtime::Comm node = world.split_shared(rank);
    const int local = node.rank();
    // Node index = rank of the node's leader among leaders (leaders ordered by world rank).
    std::int32_t index = 0;
    if (const auto leaders = world.split(local == 0 ? 0 : -1, rank)) index = leaders->rank();
    node.bcast(&index, 1, runtime::DataType::kInt32, 0);
    mine[0] = index;
    mine[1] = local;
  }
  std::vector<std::int32_t> all(2 * static_cast<std::size_t>(size));
  world.allgather(mine, all.data(), 2, runtime::DataType::kInt32);
  NodeLayout out;
  for (int r = 0; r < size; ++r) {
    out.node_of_rank.push_back(all[2 * static_cast<std::size_t>(r)]);
    out.local_rank.push_back(all[2 * static_cast<std::size_t>(r) + 1]);
    out.n_nodes = std::max(out.n_nodes, out.node_of_rank.back() + 1);
  }
  return out;
}

std::vector<int> group_node_counts(int n_nodes) {
  std::vector<int> g;
  for (int k = 2; k < n_nodes; k *= 2) g.push_back(k);
  if (n_nodes >= 2) g.push_back(n_nodes);
  return g;
}

runtime::DataType data_type(const std::string& dtype) {
  if (dtype == "int32") return runtime::DataType::kInt32;
  if (dtype == "int64") return runtime::DataType::kInt64;
  if (dtype == "double") return runtime::DataType::kDouble;
  return runtime::DataType::kFloat;
}

std::size_t type_bytes(const std::string& dtype) { return runtime::size_of(data_type(dtype)); }

runtime::Reduction reduction(const std::string& op) {
  if (op == "prod") return runtime::Reduction::kProd;
  if (op == "min") return runtime::Reduction::kMin;
  if (op == "max") return runtime::Reduction::kMax;
  return runtime::Reduction::kSum;
}

double busbw_factor(const std::string& op, int n) {
  const double nn = n;
  if (op == "allreduce") return 2.0 * (nn - 1) / nn;
  if (op == "allgather" || op == "reduce_scatter" || op == "alltoall") return (nn - 1) / nn;
  if (op == "bcast") return 1.0;
  return kNaN;  // barrier moves no payload
}

// Element counts for one (op, size, n): what each rank sends and receives.
struct Shape {
  std::size_t send_count = 0, recv_count = 0;  // elements in the send / receive buffer
  std::size_t block = 0;                       // per-peer block (allgather, reduce_scatter, alltoall)
  std::size_t bytes = 0;                       // the `size` actually moved (nccl-tests convention)
};

Shape shape_of(const std::string& op, std::size_t size, std::size_t tb, std::size_t n) {
  Shape s;
  if (op == "allreduce" || op == "bcast") {
    s.send_count = s.recv_count = size / tb;
    s.bytes = s.send_count * tb;
  } else if (op == "allgather") {
    s.block = size / (tb * n);
    s.send_count = s.block;
    s.recv_count = s.block * n;
    s.bytes = s.recv_count * tb;
  } else if (op == "reduce_scatter") {
    s.block = size / (tb * n);
    s.send_count = s.block * n;
    s.recv_count = s.block;
    s.bytes = s.send_count * tb;
  } else if (op == "alltoall") {
    s.block = size / (tb * n);
    s.send_count = s.recv_count = s.block * n;
    s.bytes = s.send_count * tb;
  }
  return s;
}

// Known inputs: small integers, exact in every dtype, so sums compare exactly.
double pattern(int rank, std::size_t i) { return static_cast<double>((rank % 13 + 1) * static_cast<int>(i % 7 + 1)); }
double prod_pattern(int rank, std::size_t i, int n) { return static_cast<int>(i % static_cast<std::size_t>(n)) == rank ? 2.0 : 1.0; }
double a2a_pattern(int from, int to, std::size_t i) { return static_cast<double>((from * 7 + to * 3 + static_cast<int>(i % 1000)) % 1000); }

double reduce_expected(const std::string& op, int n, std::size_t i) {
  if (op == "prod") return 2.0;
  double acc = op == "min" ? std::numeric_limits<double>::infinity() : (op == "max" ? -std::numeric_limits<double>::infinity() : 0.0);
  for (int r = 0; r < n; ++r) {
    const double v = pattern(r, i);
    if (op == "min") acc = std::min(acc, v);
    else if (op == "max") acc = std::max(acc, v);
    else acc += v;
  }
  return acc;
}

template <typename T>
struct Typed {
  static void fill(void* buf, std::size_t count, const auto& f) {
    T* p = static_cast<T*>(buf);
    for (std::size_t i = 0; i < count; ++i) p[i] = static_cast<T>(f(i));
  }
  static std::int64_t mismatches(const void* buf, std::size_t count, const auto& f) {
    const T* p = static_cast<const T*>(buf);
    std::int64_t bad = 0;
    for (std::size_t i = 0; i < count; ++i) bad += p[i] != static_cast<T>(f(i)) ? 1 : 0;
    return bad;
  }
};

template <typename F>
void fill(const std::string& dtype, void* buf, std::size_t count, const F& f) {
  if (dtype == "int32") Typed<std::int32_t>::fill(buf, count, f);
  else if (dtype == "int64") Typed<std::int64_t>::fill(buf, count, f);
  else if (dtype == "double") Typed<double>::fill(buf, count, f);
  else Typed<float>::fill(buf, count, f);
}

template <typename F>
std::int64_t mismatches(const std::string& dtype, const void* buf, std::size_t count, const F& f) {
  if (dtype == "int32") return Typed<std::int32_t>::mismatches(buf, count, f);
  if (dtype == "int64") return Typed<std::int64_t>::mismatches(buf, count, f);
  if (dtype == "double") return Typed<double>::mismatches(buf, count, f);
  return Typed<float>::mismatches(buf, count, f);
}

class Runner {
 public:
  Runner(const CollParams& p, const runtime::Comm& comm, void* sbuf, void* rbuf)
      : p_(p),
        comm_(comm),
        sbuf_(sbuf),
        rbuf_(rbuf),
        type_(data_type(p.dtype)),
        op_(reduction(p.op)),
        rank_(comm.rank()),
        n_(comm.size()) {}

  // One collective of `op` on these buffers, resolved once; a non-blocking form is started and
  // waited for at once by each run().
  runtime::Collective prepare(const std::string& op, const Shape& s) const {
    using Kind = runtime::CollectiveSpec::Kind;
    runtime::CollectiveSpec c{.kind = Kind::kBarrier,
                              .send = sbuf_,
                              .recv = rbuf_,
                              .count = s.send_count,
                              .type = type_,
                              .op = op_,
                              .root = 0,
                              .nonblocking = p_.nonblocking};
    if (op == "allreduce") {
      c.kind = Kind::kAllreduce;
    } else if (op == "allgather") {
      c.kind = Kind::kAllgather;
      c.count = s.block;
    } else if (op == "reduce_scatter") {
      c.kind = Kind::kReduceScatterBlock;
      c.count = s.recv_count;
    } else if (op == "alltoall") {
      c.kind = Kind::kAlltoall;
      c.count = s.block;
    } else if (op == "bcast") {
      c.kind = Kind::kBcast;
    }
    return comm_.prepare(c);
  }

  // Timed samples (ns) on every rank: barrier, collective.
  void time(const std::string& op, const Shape& s, std::span<double> out) {
    runtime::Collective coll = prepare(op, s);
    for (int i = 0; i < p_.warmup + static_cast<int>(out.size()); ++i) {
      comm_.barrier();
      const std::int64_t t0 = core::now_ns();
      coll.run();
      const std::int64_t t1 = core::now_ns();
      if (i >= p_.warmup) out[static_cast<std::size_t>(i - p_.warmup)] = static_cast<double>(t1 - t0);
    }
  }

  // Wrong elements on this rank after one collective on known inputs.
  std::int64_t check(const std::string& op, const Shape& s) {
    const std::string& dt = p_.dtype;
    const int r = rank_, n = n_;
    const std::size_t block = s.block;
    if (op == "barrier") return 0;
    if (op == "alltoall") {
      fill(dt, sbuf_, s.send_count, [&](std::size_t k) { return a2a_pattern(r, static_cast<int>(k / block), k % block); });
    } else if (op == "bcast") {
      fill(dt, rbuf_, s.send_count, [&](std::size_t k) { return r == 0 ? static_cast<double>(k % 1000 + 1) : -1.0; });
    } else {
      const bool product = p_.op == "prod" && op != "allgather";  // products stay exact with 1s and 2s
      fill(dt, sbuf_, s.send_count, [&](std::size_t k) { return product ? prod_pattern(r, k, n) : pattern(r, k); });
    }
    prepare(op, s).run();
    if (rank_ == p_.test_corrupt_rank && s.recv_count > 0) fill(dt, rbuf_, 1, [](std::size_t) { return 12345.0; });
    if (op == "allreduce") {
      return mismatches(dt, rbuf_, s.recv_count, [&](std::size_t k) { return reduce_expected(p_.op, n, k); });
    }
    if (op == "reduce_scatter") {
      return mismatches(dt, rbuf_, s.recv_count, [&](std::size_t k) { return reduce_expected(p_.op, n, static_cast<std::size_t>(r) * block + k); });
    }
    if (op == "allgather") {
      return mismatches(dt, rbuf_, s.recv_count, [&](std::size_t k) { return pattern(static_cast<int>(k / block), k % block); });
    }
    if (op == "alltoall") {
      return mismatches(dt, rbuf_, s.recv_count, [&](std::size_t k) { return a2a_pattern(static_cast<int>(k / block), r, k % block); });
    }
    return mismatches(dt, rbuf_, s.recv_count, [&](std::size_t k) { return static_cast<double>(k % 1000 + 1); });
  }

 private:
  const CollParams& p_;
  const runtime::Comm& comm_;
  void* sbuf_;
  void* rbuf_;
  runtime::DataType type_;
  runtime::Reduction op_;
  int rank_ = 0, n_ = 1;
};

std::size_t mem_available_bytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return static_cast<std::size_t>(kb) * 1024;
}

struct Group {
  int nodes = 0;
  std::vector<int> ranks;  // world ranks, ascending
  std::optional<runtime::Comm> comm;  // members only; freed with the group
  bool member = false;
};

}  // namespace

namespace {
int coll_node_count(bool node_per_rank) { return find_nodes(node_per_rank).n_nodes; }
const std::vector<std::string>& coll_op_names() {
  static const std::vector<std::string> names{"allreduce", "allgather", "reduce_scatter", "alltoall", "bcast", "barrier"};
  return names;
}
}  // namespace

void run_coll(Context& ctx, const CollParams& p);  // the harness below runs it
void run_coll(Context& ctx, const CollParams& p) {
  const int me = ctx.comm.rank();
  const NodeLayout layout = find_nodes(p.node_per_rank);
  // Groups and their communicators, made once.
  std::vector<Group> groups;
  for (int g : group_node_counts(layout.n_nodes)) {
    Group grp;
    grp.nodes = g;
    for (int r = 0; r < ctx.comm.size(); ++r) {
      const auto ur = static_cast<std::size_t>(r);
      if (layout.node_of_rank[ur] < g && layout.local_rank[ur] < p.ranks_per_node) grp.ranks.push_back(r);
    }
    grp.member = std::find(grp.ranks.begin(), grp.ranks.end(), me) != grp.ranks.end();
    grp.comm = ctx.comm.split(grp.member ? 0 : -1, me);
    groups.push_back(std::move(grp));
  }
  const std::size_t tb = type_bytes(p.dtype);
  const std::size_t n_groups = groups.size(), iters = static_cast<std::size_t>(p.iters);
  const std::size_t world = static_cast<std::size_t>(ctx.comm.size());

  const std::string run = begin_run(ctx, "coll", p.common, p.iters, p.warmup,
                                    {{"ranks_per_node", p.ranks_per_node},
                                     {"n_nodes", layout.n_nodes},
                                     {"nonblocking", p.nonblocking ? 1 : 0},
                                     {"check", p.check ? 1 : 0}});
  if (ctx.out) {
    ctx.out->set_attr(run, "dtype", p.dtype);
    ctx.out->set_attr(run, "reduction", p.op);
    ctx.out->set_attr(run, "node_by", p.node_per_rank ? "rank" : "host");
    std::vector<std::int64_t> counts, sizes_ranks, members(n_groups * world, -1), node_of(world);
    for (std::size_t g = 0; g < n_groups; ++g) {
      counts.push_back(groups[g].nodes);
      sizes_ranks.push_back(static_cast<std::int64_t>(groups[g].ranks.size()));
      for (std::size_t k = 0; k < groups[g].ranks.size(); ++k) members[g * world + k] = groups[g].ranks[k];
    }
    for (std::size_t r = 0; r < world; ++r) node_of[r] = layout.node_of_rank[r];
    ctx.out->write_ints(run + "/node_counts", counts, {n_groups}, "nodes");
    ctx.out->write_ints(run + "/group_size_ranks", sizes_ranks, {n_groups}, "ranks");
    ctx.out->write_ints(run + "/group_ranks", members, {n_groups, world}, "");
    ctx.out->write_ints(run + "/node_of_rank", node_of, {world}, "");
    fmt::print(ctx.table, "# fabscope coll: {} nodes ({} rank(s) per node), groups of {} nodes; dtype {}, op {}, {}{} iterations, {} warm-up\n",
               layout.n_nodes, p.ranks_per_node, fmt::join(counts, ", "), p.dtype, p.op,
               p.nonblocking ? "non-blocking, " : "", p.iters, p.warmup);
  }

  // Buffers big enough for the largest size within the memory cap: --max-buffer, and a third of
  // this node's available memory shared by its ranks (the same verdict on every rank).
  std::size_t cap = p.max_buffer_bytes;
  {
    const auto local = static_cast<std::size_t>(std::count(layout.node_of_rank.begin(), layout.node_of_rank.end(),
                                                           layout.node_of_rank[static_cast<std::size_t>(me)]));
    const std::size_t avail = mem_available_bytes();
    if (avail > 0) cap = std::min(cap, avail / (3 * 2 * std::max<std::size_t>(local, 1)));  // two buffers
    const auto c = static_cast<std::int64_t>(
        std::min<std::size_t>(cap, std::numeric_limits<std::int64_t>::max()));
    std::int64_t all_min = 0;
    ctx.comm.allreduce(&c, &all_min, 1, runtime::DataType::kInt64, runtime::Reduction::kMin);
    cap = static_cast<std::size_t>(all_min);
  }
  std::size_t max_bytes = 0;
  for (const auto& op : p.ops) {
    for (std::size_t s : p.sizes) {
      const Shape sh = shape_of(op, s, tb, world);
      const std::size_t need = std::max({sh.send_count, sh.recv_count, s / tb}) * tb;
      if (need <= cap) max_bytes = std::max(max_bytes, need);
    }
  }
  transport::Buffer sbuf(max_bytes + tb), rbuf(max_bytes + tb);

  for (const auto& op : p.ops) {
    const bool barrier = op == "barrier";
    const std::vector<std::size_t> sizes = barrier ? std::vector<std::size_t>{0} : p.sizes;
    const std::size_t ns = sizes.size();
    std::vector<double> samples(n_groups * ns * iters, kNaN);
    std::vector<std::int64_t> bytes(n_groups * ns, 0), errors(n_groups * ns, 0);
    std::vector<std::int8_t> status(n_groups * ns, static_cast<std::int8_t>(io::schema::PairStatus::kNotRun));
    std::vector<double> mine(iters), maxed(iters);
    for (std::size_t g = 0; g < n_groups; ++g) {
      const Group& grp = groups[g];
      const std::size_t n = grp.ranks.size();
      if (grp.member) {
        Runner runner(p, *grp.comm, sbuf.data(), rbuf.data());
        for (std::size_t s = 0; s < ns; ++s) {
          const Shape sh = shape_of(op, sizes[s], tb, n);
          const std::size_t need = std::max({sh.send_count, sh.recv_count}) * tb;
          if (!barrier && (sh.bytes == 0 || need > max_bytes)) continue;  // same verdict on every member
          std::fill(mine.begin(), mine.end(), kNaN);
          runner.time(op, sh, mine);
          grp.comm->reduce(mine.data(), maxed.data(), iters, runtime::DataType::kDouble,
                           runtime::Reduction::kMax, 0);
          std::int64_t bad = p.check ? runner.check(op, sh) : 0, total_bad = 0;
          grp.comm->reduce(&bad, &total_bad, 1, runtime::DataType::kInt64, runtime::Reduction::kSum,
                           0);
          if (me == 0) {
            const std::size_t cell = g * ns + s;
            std::copy(maxed.begin(), maxed.end(), samples.begin() + static_cast<std::ptrdiff_t>(cell * iters));
            bytes[cell] = static_cast<std::int64_t>(sh.bytes);
            errors[cell] = total_bad;
            status[cell] = static_cast<std::int8_t>(total_bad == 0 ? io::schema::PairStatus::kOk : io::schema::PairStatus::kFailed);
            if (total_bad != 0) {
              ++ctx.failed_measurements;
              core::log::error("coll --check: {} at {} on {} nodes: {} wrong elements", op,
                               core::format_size(sizes[s]), grp.nodes, total_bad);
            }
          }
        }
      }
      ctx.comm.quiet_barrier();
    }
    if (me != 0) continue;
    // Derived metrics and the table, then this op's datasets (the file is complete per op).
    std::vector<std::vector<double>> stats(core::kStatNames.size(), std::vector<double>(n_groups * ns, kNaN));
    std::vector<double> algbw(n_groups * ns, kNaN), busbw(n_groups * ns, kNaN), eff(n_groups * ns, kNaN);
    fmt::print(ctx.table, "# {}\n# {:>6} {:>6} {:>10} {:>12} {:>12} {:>12} {:>12} {:>12} {:>10} {:>7}\n", op, "nodes", "ranks",
               "size", "time_p50_us", "time_min_us", "time_p99_us", "algbw_GB/s", "busbw_GB/s", "scaling", "check");
    for (std::size_t g = 0; g < n_groups; ++g) {
      for (std::size_t s = 0; s < ns; ++s) {
        const std::size_t cell = g * ns + s;
        if (status[cell] == 0) continue;
        const auto st = core::summarize(std::span<const double>(samples).subspan(cell * iters, iters));
        const auto vals = core::stat_values(st);
        for (std::size_t k = 0; k < vals.size(); ++k) stats[k][cell] = vals[k];
        if (!barrier) {
          algbw[cell] = static_cast<double>(bytes[cell]) * 8.0 / st.p50;
          busbw[cell] = algbw[cell] * busbw_factor(op, static_cast<int>(groups[g].ranks.size()));
          eff[cell] = busbw[cell] / busbw[s];  // group 0 is the 2-node group
        }
        fmt::print(ctx.table, "  {:>6} {:>6} {:>10} {:>12.3f} {:>12.3f} {:>12.3f} {:>12.3f} {:>12.3f} {:>10.3f} {:>7}\n",
                   groups[g].nodes, groups[g].ranks.size(), core::format_size(static_cast<std::size_t>(bytes[cell])),
                   st.p50 / 1e3, st.min / 1e3, st.p99 / 1e3, algbw[cell] / 8, busbw[cell] / 8, eff[cell],
                   !p.check ? "-" : (errors[cell] == 0 ? "ok" : "FAILED"));
      }
    }
    std::fflush(ctx.table);
    const std::string base = run + "/" + op;
    std::vector<std::int64_t> size_col(sizes.begin(), sizes.end());
    ctx.out->write_ints(base + "/size_bytes", size_col, {ns}, "bytes");
    ctx.out->write_ints(base + "/bytes", bytes, {n_groups, ns}, "bytes");
    ctx.out->write_doubles(base + "/samples/time_ns", samples, {n_groups, ns, iters}, "ns", true);
    for (std::size_t k = 0; k < core::kStatNames.size(); ++k) {
      ctx.out->write_doubles(fmt::format("{}/summary/time_ns_{}", base, core::kStatNames[k]), stats[k], {n_groups, ns}, "ns");
    }
    if (!barrier) {
      ctx.out->write_doubles(base + "/summary/algbw_gbps", algbw, {n_groups, ns}, "Gb/s");
      ctx.out->write_doubles(base + "/summary/busbw_gbps", busbw, {n_groups, ns}, "Gb/s");
      ctx.out->write_doubles(base + "/summary/scaling_efficiency", eff, {n_groups, ns}, "1");
    }
    std::vector<std::int64_t> status64(status.begin(), status.end());
    ctx.out->write_ints(base + "/status", status64, {n_groups, ns}, "");
    ctx.out->set_attr(base + "/status", std::string(io::schema::attr::kStatusNames), "not_run,ok,failed");
    if (p.check) ctx.out->write_ints(base + "/check_errors", errors, {n_groups, ns}, "elements");
  }
  groups.clear();  // frees the group communicators (an exception frees them too)
  ctx.comm.quiet_barrier();
  if (ctx.out) ctx.out->end_run(run);
}

namespace {

class Coll : public BenchmarkWith<CollParams> {
 public:
  void declare(ParamSet& set) override {
    set.sizes("sizes", p.sizes, "8:256M", "message sizes: LO:HI powers of two, or a list (8,64K,1M)");
    set.integer("iters", p.iters, 20, "timed iterations per size").at_least(1);
    set.integer("warmup", p.warmup, 5, "untimed iterations per size").at_least(0);
    auto& ops = set.list("ops", p.ops, "allreduce,allgather,reduce_scatter,alltoall,bcast,barrier",
                         "comma list of allreduce, allgather, reduce_scatter, alltoall, bcast, barrier");
    ops.choices(coll_op_names(), "operation");
    ops.check = [this, check = ops.check](const Where& where) {
      if (p.ops.empty()) where.fail(fmt::format("{}: no operations given", where.name("ops")));
      check(where);
    };
    set.text("dtype", p.dtype, "float", "int32, int64, float, double").choices({"int32", "int64", "float", "double"}, "data type");
    set.text("op", p.op, "sum", "reduction: sum, prod, min, max").choices({"sum", "prod", "min", "max"}, "reduction");
    set.flag("nonblocking", p.nonblocking, "use MPI_Iallreduce etc. followed by MPI_Wait");
    set.flag("check", p.check, "verify every result against known per-rank inputs");
    set.integer("ranks_per_node", p.ranks_per_node, 1, "ranks of each node that take part").at_least(1);
    set.custom(
        "node_by", "host", "host: ranks sharing memory form a node; rank: every rank is a node",
        [this](const std::string& text, const std::string& where) {
          if (text != "host" && text != "rank") throw core::UsageError(fmt::format("{}: '{}' is not host or rank", where, text));
          p.node_per_rank = text == "rank";
        },
        [this] { return std::string(p.node_per_rank ? "rank" : "host"); });
    set.size("max_buffer", p.max_buffer_bytes, "1G", "largest buffer per rank; larger sizes are skipped");
    set.integer("test_corrupt_rank", p.test_corrupt_rank, -1, "").hide();  // FABSCOPE_TEST_CORRUPT_RANK (tests/mpi)
  }
  void preflight(const runtime::Comm& comm, const Context& /*ctx*/) const override {
    const int nodes = coll_node_count(p.node_per_rank);  // collective: every rank takes part
    (void)comm;
    if (nodes < 2) {
      throw core::UsageError(fmt::format("coll found {} node (ranks sharing memory count as one node); scaling needs at "
                                         "least 2: launch one rank per node, or on one host pass --node-by rank",
                                         nodes));
    }
  }
  void run(Context& ctx) const override { run_coll(ctx, p); }
};

}  // namespace

void register_coll() {
  register_benchmark({"coll", "collective scaling over node counts and message sizes",
                      {.verbs = false, .timeout = false}, [] { return std::make_unique<Coll>(); }});
}

}  // namespace fabscope::suites
