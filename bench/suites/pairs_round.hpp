// One round of `fabscope pairs` as rank 0 sees it after the gather: every rank's fixed-size record
// turned into the round's PairRecords (pairs.cpp; tests/perf/scale_bench drives the same code).
// A rank's record: [partner, measure_seconds, status, error text bytes, its side's summary
// (io::SideSummary, computed on that rank), its latency samples, its bandwidth windows]; the part
// before the samples is its head. Two phases (pairs.cpp): rank 0 gathers every rank's head
// (layout.samples() doubles), builds the records and applies --keep-samples (assemble_heads), then
// asks only the ranks it needs for their raw samples (the pairs kept) and error texts (the pairs
// that failed) (payload_requests / make_payload / apply_payloads). So the gather per round is
// bounded (53 doubles a rank: 42 MB at 100,000 ranks, not 853 MB) and rank 0's work is
// O(pairs in the round), never O(samples) for pairs not kept.
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
  static constexpr std::size_t kHead = 4;
  static constexpr std::size_t kErrorBytes = 3;  // the length of the rank's error text
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

// Rank 0, phase 1: the round's records from every rank's head (`heads`: n records of `stride`
// doubles, each starting with the rank's head): status, summaries, keep_samples marked; no raw
// samples, no error texts yet.
void assemble_heads(std::span<const double> heads, std::size_t stride, const RoundLayout& layout,
                    int n, std::int64_t round, std::int64_t repeat, io::KeepSamples keep,
                    RoundResult& out);

// Phase 2: what rank 0 asks of each rank, as (rank, what) pairs in rank order; what holds
// kWantSamples (its raw samples: it is in a kept pair) and/or kWantError (its error text).
inline constexpr int kWantSamples = 1, kWantError = 2;
[[nodiscard]] std::vector<int> payload_requests(const RoundResult& result,
                                                std::span<const double> heads, std::size_t stride);
// A rank's answer to `what`: its samples (latency then windows, doubles), then its error text.
[[nodiscard]] std::size_t payload_bytes(int what, const RoundLayout& layout,
                                        std::size_t error_bytes);
[[nodiscard]] std::vector<char> make_payload(int what, std::span<const double> record,
                                             const RoundLayout& layout, const std::string& error);
// Rank 0: the records' raw samples and error texts from the answers (payloads[k] answers the
// k-th request).
void apply_payloads(RoundResult& result, const std::vector<int>& requests,
                    const std::vector<std::vector<char>>& payloads, const RoundLayout& layout);

// Rank 0, both phases on records already all in one place (`all`, n x layout.size(), and every
// rank's error text): tests/perf/scale_bench drives this.
void assemble_round(std::span<const double> all, const std::vector<std::string>& errors,
                    const RoundLayout& layout, int n, std::int64_t round, std::int64_t repeat,
                    io::KeepSamples keep, RoundResult& out);

}  // namespace fabscope::suites
