// fabscope-scale-bench: rank 0's side of `fabscope pairs` at scale, without a fabric. Drives the
// real per-round code of rank 0 (suites::assemble_round on a gathered buffer laid out as pairs.cpp
// gathers it, then io::ResultsWriter::append_pairs) for a few rounds of the circle schedule at N
// ranks, or (--layout v1) the schema-version-1 writer it replaced (scale_v1_reference.cpp), and
// prints one line of key=value figures. tests/perf/scale_bench.sh runs it and projects the full
// run.
//
// Synthetic samples, fresh for every rank and round (so compression sees real entropy): latency
// ~2 us x (1 + 2 % |normal|) with a 1 % tail at 1.5x and a per-rank-and-round level within +-5 %;
// windows ~390 Gb/s x (1 - 0.5 % |normal|) with a per-direction level within +-2 %; plus per rank
// and round: a failure (1e-4), a stalled window at 10 % of the best (5e-4), a 3x latency (1e-4).
// The per-rank summaries (io::SideSummary) are computed outside the timed part: every rank
// computes its own in a real run. Timed: what rank 0 does between the gather and the next round.
//
// Writing a whole run (tests/perf/scale_bench.sh's analysis part: --rounds N-1 --complete 1):
// --pool K draws every rank's record from K records generated (and summarized) up front, each
// scaled by a fresh level per rank and round (latency x 0.95..1.05, windows x 0.99..1.01; the
// summary scales with it), so a 12,500-rank run takes minutes instead of hours while its rows keep
// real entropy. --slow-rank R makes one host slow in every pair it is in (latency x 1.6, its
// windows and its partners' windows x 0.55): the fault accept must name. --complete 1 ends the
// run as `fabscope pairs` does (finish_pairs, end_run, finish).
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "io/results.hpp"
#include "io/schema.hpp"
#include "scale_v1_reference.hpp"
#include "suites/pairs_round.hpp"
#include "topology/schedule.hpp"

using namespace fabscope;

namespace {

struct Args {
  int ranks = 1000, rounds = 10, lat_iters = 1000, bw_windows = 12;
  std::string layout = "v2", out = "scale-bench.h5", keep = "suspect";
  unsigned seed = 1;
  int pool = 0, slow_rank = -1, complete = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--ranks")
      a.ranks = std::stoi(v);
    else if (k == "--rounds")
      a.rounds = std::stoi(v);
    else if (k == "--lat-iters")
      a.lat_iters = std::stoi(v);
    else if (k == "--bw-windows")
      a.bw_windows = std::stoi(v);
    else if (k == "--layout")
      a.layout = v;
    else if (k == "--out")
      a.out = v;
    else if (k == "--keep")
      a.keep = v;
    else if (k == "--seed")
      a.seed = static_cast<unsigned>(std::stoul(v));
    else if (k == "--pool")
      a.pool = std::stoi(v);
    else if (k == "--slow-rank")
      a.slow_rank = std::stoi(v);
    else if (k == "--complete")
      a.complete = std::stoi(v);
    else {
      std::fprintf(stderr, "fabscope-scale-bench: unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  if (a.ranks < 2 || a.rounds < 1 || (a.layout != "v1" && a.layout != "v2") ||
      !io::parse_keep_samples(a.keep) || a.pool < 0 || (a.pool > 0 && a.layout != "v2") ||
      a.slow_rank >= a.ranks) {
    std::fprintf(stderr,
                 "fabscope-scale-bench: --ranks >= 2, --rounds >= 1, --layout v1|v2, --keep "
                 "all|suspect|none, --pool K >= 0 (v2 only), --slow-rank R < ranks\n");
    std::exit(2);
  }
  return a;
}

double peak_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// This process's CPU time (user + system): on a shared machine the wall time of a round also
// holds the time spent waiting for a core or the disk.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 == 1 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const int n = a.ranks;
  const suites::RoundLayout layout{static_cast<std::size_t>(a.lat_iters),
                                   static_cast<std::size_t>(a.bw_windows)};
  const std::size_t size = layout.size();

  std::vector<double> scratch;
  // A fast generator (xorshift64*, Box-Muller): the samples of every rank and round are fresh.
  std::uint64_t state = 0x9E3779B97F4A7C15ULL ^ a.seed;
  auto next01 = [&state] {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return static_cast<double>((state * 0x2545F4914F6CDD1DULL) >> 11) * 0x1.0p-53;
  };
  auto fill_side = [&](std::span<double> rec) {
    const double lat_level = 2000.0 * (0.95 + 0.1 * next01());
    double* lat = rec.data() + layout.samples();
    for (std::size_t i = 0; i < layout.lat; i += 2) {
      const double u1 = std::max(next01(), 1e-300), u2 = next01();
      const double r = std::sqrt(-2 * std::log(u1));
      lat[i] = lat_level * (1 + 0.02 * std::abs(r * std::cos(2 * M_PI * u2)));
      if (i + 1 < layout.lat)
        lat[i + 1] = lat_level * (1 + 0.02 * std::abs(r * std::sin(2 * M_PI * u2)));
    }
    for (std::size_t i = 0; i < layout.lat; ++i)
      if (next01() < 0.01) lat[i] *= 1.5;
    const double bw_level = 390.0 * (0.98 + 0.04 * next01());
    double* bw = lat + layout.lat;
    for (std::size_t i = 0; i < layout.bw; ++i) {
      const double u1 = std::max(next01(), 1e-300), u2 = next01();
      bw[i] =
          bw_level * (1 - 0.005 * std::abs(std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2)));
    }
    rec[1] = 0.1;
    rec[2] = static_cast<double>(io::schema::PairStatus::kOk);
  };

  const std::int64_t rounds_total = topology::circle_rounds(n);
  std::vector<io::HostRecord> hosts(static_cast<std::size_t>(n));
  // Host names as tests/analysis/synth.py's topology spells them (node00042 at 12,500 hosts).
  const int width = std::max<int>(3, static_cast<int>(std::to_string(n - 1).size()));
  for (int i = 0; i < n; ++i) {
    std::string digits = std::to_string(i);
    hosts[static_cast<std::size_t>(i)].hostname =
        "node" + std::string(static_cast<std::size_t>(width) - std::min<std::size_t>(digits.size(), width), '0') + digits;
  }
  std::filesystem::remove(a.out);
  const auto t_init = std::chrono::steady_clock::now();
  io::ResultsWriter w(a.out, {"bench", "now", "fabscope-scale-bench", "", n, true}, hosts);
  const std::string run = w.begin_run({"pairs",
                                       "pairs",
                                       "mpi",
                                       "",
                                       a.lat_iters,
                                       0,
                                       // as pairs.cpp writes them (8 B latency, 64 KiB windows)
                                       {{"lat_size_bytes", 8},
                                        {"bw_size_bytes", 65536},
                                        {"lat_iters", a.lat_iters},
                                        {"bw_windows", a.bw_windows},
                                        {"window", 64},
                                        {"repeats", 1}}});
  const io::KeepSamples keep = *io::parse_keep_samples(a.keep);
  perf::v1::Writer v1(a.out);
  if (a.layout == "v2") {
    w.init_pairs(run, {n, a.lat_iters, a.bw_windows, rounds_total, keep, n / 2});
    w.set_attr(run, "schedule", "circle");
  } else {
    v1.init_pairs(run, {n, a.lat_iters, a.bw_windows, rounds_total});
  }
  const double init_s = seconds_since(t_init);
  const auto init_bytes = std::filesystem::file_size(a.out);

  std::vector<double> all(size * static_cast<std::size_t>(n));
  std::vector<double> pool(size * static_cast<std::size_t>(a.pool));
  for (int k = 0; k < a.pool; ++k) {
    std::span<double> rec(pool.data() + static_cast<std::size_t>(k) * size, size);
    fill_side(rec);
    suites::summarize_own(rec, layout, scratch);
  }
  // A pool record scaled to a fresh level (its summary's values scale with the samples; the
  // codes are relative and stay).
  auto from_pool = [&](std::span<double> rec) {
    const auto k = static_cast<std::size_t>(next01() * a.pool) % static_cast<std::size_t>(a.pool);
    std::copy_n(pool.data() + k * size, size, rec.data());
    const double lat_c = 0.95 + 0.1 * next01(), bw_c = 0.99 + 0.02 * next01();
    double* sum = rec.data() + suites::RoundLayout::kSummary;
    sum[0] *= lat_c, sum[1] *= lat_c, sum[2] *= lat_c, sum[3] *= bw_c, sum[4] *= bw_c;
    double* lat = rec.data() + layout.samples();
    for (std::size_t i = 0; i < layout.lat; ++i) lat[i] *= lat_c;
    for (std::size_t i = 0; i < layout.bw; ++i) lat[layout.lat + i] *= bw_c;
  };
  const std::vector<std::string> errors(static_cast<std::size_t>(n));
  suites::RoundResult result;
  std::vector<perf::v1::PairRecord> v1_records;
  std::vector<double> write_ms, cpu_ms, assemble_cpu_ms;
  std::size_t rows = 0, kept = 0;
  for (int round = 0; round < a.rounds; ++round) {
    // What the gather leaves on rank 0 (not timed: the ranks' part).
    for (int r = 0; r < n; ++r) {
      std::span<double> rec(all.data() + static_cast<std::size_t>(r) * size, size);
      if (a.pool > 0)
        from_pool(rec);
      else
        fill_side(rec);
      const auto partner = topology::circle_partner(n, round, r);
      rec[0] = static_cast<double>(partner);
      const double u = next01();
      bool changed = a.pool == 0;
      if (u < 1e-4) {
        rec[2] = static_cast<double>(io::schema::PairStatus::kFailed);
        std::fill(rec.begin() + static_cast<std::ptrdiff_t>(layout.samples()), rec.end(), NAN);
        changed = true;
      } else if (u < 6e-4) {
        rec[layout.samples() + layout.lat] *= 0.1;
        changed = true;
      } else if (u < 7e-4) {
        for (std::size_t i = 0; i < layout.lat; ++i) rec[layout.samples() + i] *= 3;
        changed = true;
      }
      if (a.slow_rank >= 0 && partner >= 0 && (r == a.slow_rank || partner == a.slow_rank)) {
        double* lat = rec.data() + layout.samples();
        if (r == a.slow_rank)
          for (std::size_t i = 0; i < layout.lat; ++i) lat[i] *= 1.6;
        for (std::size_t i = 0; i < layout.bw; ++i) lat[layout.lat + i] *= 0.55;
        changed = true;
      }
      if (changed) suites::summarize_own(rec, layout, scratch);
    }
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    if (a.layout == "v2") {
      suites::assemble_round(all, errors, layout, n, round, 0, keep, result);
      assemble_cpu_ms.push_back((cpu_seconds() - c0) * 1e3);
      w.append_pairs(run, result.records, {round, round + 1, result.measure_seconds});
      rows += result.records.size();
      kept += result.kept;
    } else {
      // Rank 0's part in schema version 1: every pair's samples into its record, then the writer.
      v1_records.clear();
      double measure_s = 0;
      for (int r = 0; r < n; ++r) {
        const double* rec = all.data() + static_cast<std::size_t>(r) * size;
        const auto q = static_cast<int>(rec[0]);
        if (q < 0) continue;
        measure_s = std::max(measure_s, rec[1]);
        if (q < r) continue;
        const double* peer = all.data() + static_cast<std::size_t>(q) * size;
        auto& pr = v1_records.emplace_back();
        pr.a = r;
        pr.b = q;
        pr.round = round;
        pr.status = static_cast<std::int8_t>(std::max(rec[2], peer[2]));
        pr.latency_ns.assign(rec + layout.samples(), rec + layout.samples() + layout.lat);
        pr.bw_gbps_fwd.assign(rec + layout.samples() + layout.lat, rec + size);
        pr.bw_gbps_rev.assign(peer + layout.samples() + layout.lat, peer + size);
      }
      v1.append_pairs(run, v1_records, round, round + 1, measure_s);
      rows += v1_records.size();
      kept += v1_records.size();
    }
    write_ms.push_back(seconds_since(t0) * 1e3);
    cpu_ms.push_back((cpu_seconds() - c0) * 1e3);
  }
  if (a.complete != 0 && a.layout == "v2") {
    w.finish_pairs(run);
    w.end_run(run);
    w.finish();
  }
  const auto end_bytes = std::filesystem::file_size(a.out);
  std::vector<double> sorted = write_ms;
  std::sort(sorted.begin(), sorted.end());
  const double median = median_of(write_ms);
  const double bytes_per_row =
      static_cast<double>(end_bytes - init_bytes) / static_cast<double>(rows);
  const double rows_total = static_cast<double>(n) * (n - 1) / 2.0;
  std::printf(
      "layout=%s ranks=%d rounds=%d init_s=%.3f write_ms_median=%.3f write_ms_min=%.3f "
      "write_ms_max=%.3f cpu_ms_median=%.3f assemble_cpu_ms_median=%.3f rank0_peak_mib=%.1f "
      "rows=%zu kept=%zu bytes_per_row=%.1f init_bytes=%llu "
      "projected_file_gb=%.3f projected_write_min=%.2f\n",
      a.layout.c_str(), n, a.rounds, init_s, median, sorted.front(), sorted.back(),
      median_of(cpu_ms), assemble_cpu_ms.empty() ? 0.0 : median_of(assemble_cpu_ms), peak_mib(),
      rows, kept, bytes_per_row, static_cast<unsigned long long>(init_bytes),
      (static_cast<double>(init_bytes) + bytes_per_row * rows_total) / 1e9,
      median * static_cast<double>(rounds_total) / 60e3);
  return 0;
}
