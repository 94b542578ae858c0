// fabscope-overhead: fabscope's harness and a bare MPI loop of the same operation, alternating
// inside ONE MPI job (same ranks, same placement, same moment), so launch-to-launch noise of a
// shared 2-core machine does not decide the ratio. Each round runs the harness (the real
// suites::run_lat / run_bw / run_coll, results written to an HDF5 file and read back) and the
// bare loop (below: the 20 lines osu_latency / osu_bw / an allreduce loop would have), in
// alternating order, and rank 0 prints both p50s and their ratio; then the median and spread.
// usage: mpirun -np 2 fabscope-overhead lat|bw ROUNDS     mpirun -np 4 fabscope-overhead allreduce ROUNDS
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "io/results.hpp"
#include "runtime/comm.hpp"
#include "suites/benchmark.hpp"

using namespace fabscope;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The bare loops read CLOCK_MONOTONIC directly (MPI_Wtime costs 31 ns a call here against 24 ns,
// which alone made the bare loop look slower) and use page-aligned buffers, as fabscope does, so
// the ratio isolates what the harness adds. p50 on rank 0 (allreduce: max over ranks first).
double wtime() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Aligned {
  char* p;
  explicit Aligned(std::size_t n, char fill) : p(static_cast<char*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096 + 4096))) {
    std::memset(p, fill, (n + 4095) / 4096 * 4096 + 4096);
  }
  ~Aligned() { std::free(p); }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  [[nodiscard]] char* data() const { return p; }
};

double bare(const std::string& what, int size, int iters, int warmup) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const Aligned sbuf(static_cast<std::size_t>(size), 'a'), rbuf(static_cast<std::size_t>(size), 'b');
  std::vector<double> t(static_cast<std::size_t>(iters));
  MPI_Request req[64];
  char ack[4];
  for (int i = 0; i < warmup + iters; ++i) {
    if (what == "allreduce") MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = wtime();
    if (what == "allreduce") {
      MPI_Allreduce(sbuf.data(), rbuf.data(), size / 4, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    } else if (what == "lat" && rank == 0) {
      MPI_Send(sbuf.data(), size, MPI_BYTE, 1, 1, MPI_COMM_WORLD);
      MPI_Recv(rbuf.data(), size, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (what == "lat" && rank == 1) {
      MPI_Recv(rbuf.data(), size, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(sbuf.data(), size, MPI_BYTE, 0, 1, MPI_COMM_WORLD);
    } else if (what == "bw" && rank == 0) {
      for (int w = 0; w < 64; ++w) MPI_Isend(sbuf.data(), size, MPI_BYTE, 1, 1, MPI_COMM_WORLD, &req[w]);
      MPI_Waitall(64, req, MPI_STATUSES_IGNORE);
      MPI_Recv(ack, 4, MPI_BYTE, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (what == "bw" && rank == 1) {
      for (int w = 0; w < 64; ++w) MPI_Irecv(rbuf.data(), size, MPI_BYTE, 0, 1, MPI_COMM_WORLD, &req[w]);
      MPI_Waitall(64, req, MPI_STATUSES_IGNORE);
      MPI_Send(ack, 4, MPI_BYTE, 0, 2, MPI_COMM_WORLD);
    }
    if (i >= warmup) t[static_cast<std::size_t>(i - warmup)] = wtime() - t0;
  }
  if (what == "allreduce") MPI_Reduce(rank == 0 ? MPI_IN_PLACE : t.data(), t.data(), iters, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  const double p50 = median(t);
  if (what == "lat") return p50 * 1e9 / 2;                // one-way ns
  if (what == "bw") return 64.0 * size * 8 / (p50 * 1e9);  // Gb/s
  return p50 * 1e9;                                        // ns
}

// The harness: the real benchmark code, results through the HDF5 file.
double harness(const runtime::Comm& comm, const std::string& what, int size, int iters, int warmup,
               const std::string& path) {
  std::optional<io::ResultsWriter> out;
  if (comm.rank() == 0) out.emplace(path, io::RootInfo{"perf", "", "overhead", "", comm.size(), true}, std::vector<io::HostRecord>(static_cast<std::size_t>(comm.size())));
  std::FILE* sink = std::fopen("/dev/null", "w");
  suites::Context ctx{comm, out ? &*out : nullptr, std::vector<std::string>(static_cast<std::size_t>(comm.size()), "h"), true, sink};
  transport::Transport transports(comm);
  ctx.transport = &transports;
  // Through the registry, as the command line does: the benchmark's declared defaults, then these.
  suites::BenchSpec spec(*suites::find_benchmark(what == "allreduce" ? "coll" : what));
  auto& set = spec.params();
  set.set("sizes", std::to_string(size), "sizes");
  set.set("iters", std::to_string(iters), "iters");
  set.set("warmup", std::to_string(warmup), "warmup");
  if (what == "allreduce") {
    set.set("ops", "allreduce", "ops");
    set.set("node_by", "rank", "node_by");
  }
  spec.finish({"overhead", true});
  suites::run(ctx, spec);
  std::fclose(sink);
  double v = 0;
  if (comm.rank() == 0) {
    io::ResultsReader r(path);
    const std::string run = r.runs().front();
    if (what == "lat") v = r.doubles(run + "/summary/latency_ns_p50")[0];
    else if (what == "bw") v = r.doubles(run + "/summary/bw_gbps_p50")[0];
    else v = r.doubles(run + "/allreduce/summary/time_ns_p50").back();  // the all-ranks group
  }
  MPI_Bcast(&v, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  runtime::Session session(argc, argv);
  const runtime::Comm comm = runtime::Comm::world();
  const std::string what = argc > 1 ? argv[1] : "lat";
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 9;
  const std::string path = "/tmp/fabscope-overhead-" + std::to_string(getpid()) + ".h5";
  struct Case { int size, iters, warmup; };
  std::vector<Case> cases;
  if (what == "lat") cases = {{8, 10000, 1000}, {65536, 3000, 300}};
  else if (what == "bw") cases = {{1 << 20, 100, 10}};
  else cases = {{8, 3000, 300}, {1 << 20, 200, 20}};
  const char* unit = what == "bw" ? "Gb/s" : "ns";
  for (const auto& c : cases) {
    std::vector<double> ratios, fab_all, bare_all;
    for (int r = 0; r < rounds; ++r) {
      double f = 0, b = 0;
      if (r % 2 == 0) {
        f = harness(comm, what, c.size, c.iters, c.warmup, path);
        b = bare(what, c.size, c.iters, c.warmup);
      } else {
        b = bare(what, c.size, c.iters, c.warmup);
        f = harness(comm, what, c.size, c.iters, c.warmup, path);
      }
      ratios.push_back(f / b);
      fab_all.push_back(f);
      bare_all.push_back(b);
      if (comm.rank() == 0) {
        std::printf("%s %7d B round %2d: fabscope p50 %10.2f %s, bare p50 %10.2f %s, ratio %.3f\n", what.c_str(), c.size, r + 1, f,
                    unit, b, unit, f / b);
      }
    }
    if (comm.rank() == 0) {
      std::vector<double> s = ratios;
      std::sort(s.begin(), s.end());
      std::printf("SUMMARY %s %d B, %d ranks, %d rounds in one job: ratio median %.3f [min %.3f .. max %.3f], IQR [%.3f .. %.3f]; "
                  "fabscope median %.2f %s, bare median %.2f %s\n",
                  what.c_str(), c.size, comm.size(), rounds, median(ratios), s.front(), s.back(), s[s.size() / 4],
                  s[(3 * s.size()) / 4], median(fab_all), unit, median(bare_all), unit);
      std::fflush(stdout);
    }
  }
  if (comm.rank() == 0) std::remove(path.c_str());
  return 0;
}
