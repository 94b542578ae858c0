// One round of `fabscope pairs` as rank 0 sees it after the gather: every rank's fixed-size record
// turned into the round's PairRecords (pairs.cpp; tests/perf/scale_bench drives the same code).
// A rank's record: [partner, measure_seconds, status, its side's summary (io::SideSummary,
// computed on that rank), its latency samples, its bandwidth windows]. Rank 0 copies summaries,
// applies --keep-samples, and copies raw samples only for the pairs kept: its work per round is
// O(pairs in the round) with a small constant, never O(samples) for pairs not kept.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/pair_rows.hpp"
#include "io/results.hpp"

namespace fabscope::suites {

struct RoundLayout {
  std::size_t lat = 0, bw = 0;
  static constexpr std::size_t kHead = 3;
  static constexpr std::size_t kSummary = kHead;  // offset of the side summary
  [[nodiscard]] std::size_t samples() const { return kHead + io::SideSummary::kDoubles; }
  [[nodiscard]] std::size_t size() const { return samples() + lat + bw; }
};

// A rank's record: fills record[kSummary ..] from the samples already in it (each rank, after
// measuring; `scratch` is reused).
void summarize_own(std::span<double> record, const RoundLayout& layout,
                   std::vector<double>& scratch);

struct RoundResult {
  std::vector<io::PairRecord> records;
  double measure_seconds = 0;  // slowest rank's
  std::size_t failed = 0;
  std::size_t kept = 0;  // records whose raw samples are kept
};

// Rank 0: the round's records from all ranks' records (`all`, n x layout.size()) and error texts.
void assemble_round(std::span<const double> all, const std::vector<std::string>& errors,
                    const RoundLayout& layout, int n, std::int64_t round, std::int64_t repeat,
                    io::KeepSamples keep, RoundResult& out);

}  // namespace fabscope::suites
