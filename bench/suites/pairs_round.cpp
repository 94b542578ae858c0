#include "suites/pairs_round.hpp"

#include <algorithm>

#include "io/schema.hpp"

namespace fabscope::suites {

void summarize_own(std::span<double> record, const RoundLayout& layout,
                   std::vector<double>& scratch) {
  const auto lat = record.subspan(layout.samples(), layout.lat);
  const auto bw = record.subspan(layout.samples() + layout.lat, layout.bw);
  io::summarize_side(lat, bw, scratch)
      .pack(record.subspan(RoundLayout::kSummary, io::SideSummary::kDoubles));
}

void assemble_round(std::span<const double> all, const std::vector<std::string>& errors,
                    const RoundLayout& layout, int n, std::int64_t round, std::int64_t repeat,
                    io::KeepSamples keep, RoundResult& out) {
  out.records.clear();
  out.measure_seconds = 0;
  out.failed = 0;
  const auto ok = static_cast<std::int8_t>(io::schema::PairStatus::kOk);
  const std::size_t size = layout.size();
  for (int r = 0; r < n; ++r) {
    const double* rec = all.data() + static_cast<std::size_t>(r) * size;
    const auto q = static_cast<int>(rec[0]);
    if (q < 0) continue;
    out.measure_seconds = std::max(out.measure_seconds, rec[1]);
    if (q < r || q >= n) continue;
    const double* peer = all.data() + static_cast<std::size_t>(q) * size;
    io::PairRecord& pr = out.records.emplace_back();
    pr.a = r;
    pr.b = q;
    pr.round = static_cast<int>(round);
    pr.repeat = static_cast<int>(repeat);
    // The worse of the two sides' verdicts (failed > timeout > ok in the enum's order).
    pr.status = static_cast<std::int8_t>(std::max(rec[2], peer[2]));
    pr.fwd = io::SideSummary::unpack({rec + RoundLayout::kSummary, io::SideSummary::kDoubles});
    pr.rev = io::SideSummary::unpack({peer + RoundLayout::kSummary, io::SideSummary::kDoubles});
    if (!errors.empty()) {
      for (const int side : {r, q}) {
        const auto& msg = errors[static_cast<std::size_t>(side)];
        if (!msg.empty()) pr.error += (pr.error.empty() ? "" : " | ") + msg;
      }
    }
    if (pr.status != ok) ++out.failed;
  }
  out.kept = io::mark_suspects(out.records, keep);
  if (out.kept == 0) return;
  for (auto& pr : out.records) {
    if (!pr.keep_samples) continue;
    const double* rec = all.data() + static_cast<std::size_t>(pr.a) * size + layout.samples();
    const double* peer = all.data() + static_cast<std::size_t>(pr.b) * size + layout.samples();
    pr.latency_ns.assign(rec, rec + layout.lat);
    pr.bw_gbps_fwd.assign(rec + layout.lat, rec + layout.lat + layout.bw);
    pr.bw_gbps_rev.assign(peer + layout.lat, peer + layout.lat + layout.bw);
  }
}

}  // namespace fabscope::suites
