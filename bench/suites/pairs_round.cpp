#include "suites/pairs_round.hpp"

#include <algorithm>
#include <cstring>

#include "io/schema.hpp"

namespace fabscope::suites {

void summarize_own(std::span<double> record, const RoundLayout& layout,
                   std::vector<double>& scratch) {
  const auto lat = record.subspan(layout.samples(), layout.lat);
  const auto bw = record.subspan(layout.samples() + layout.lat, layout.bw);
  io::summarize_side(lat, bw, scratch)
      .pack(record.subspan(RoundLayout::kSummary, io::SideSummary::kDoubles));
}

void assemble_heads(std::span<const double> heads, std::size_t stride, const RoundLayout& layout,
                    int n, std::int64_t round, std::int64_t repeat, io::KeepSamples keep,
                    RoundResult& out) {
  (void)layout;
  out.records.clear();
  out.measure_seconds = 0;
  out.failed = 0;
  const auto ok = static_cast<std::int8_t>(io::schema::PairStatus::kOk);
  for (int r = 0; r < n; ++r) {
    const double* rec = heads.data() + static_cast<std::size_t>(r) * stride;
    const auto q = static_cast<int>(rec[0]);
    if (q < 0) continue;
    out.measure_seconds = std::max(out.measure_seconds, rec[1]);
    if (q < r || q >= n) continue;
    const double* peer = heads.data() + static_cast<std::size_t>(q) * stride;
    io::PairRecord& pr = out.records.emplace_back();
    pr.a = r;
    pr.b = q;
    pr.round = static_cast<int>(round);
    pr.repeat = static_cast<int>(repeat);
    // The worse of the two sides' verdicts (failed > timeout > ok in the enum's order).
    pr.status = static_cast<std::int8_t>(std::max(rec[2], peer[2]));
    pr.fwd = io::SideSummary::unpack({rec + RoundLayout::kSummary, io::SideSummary::kDoubles});
    pr.rev = io::SideSummary::unpack({peer + RoundLayout::kSummary, io::SideSummary::kDoubles});
    if (pr.status != ok) ++out.failed;
  }
  out.kept = io::mark_suspects(out.records, keep);
}

std::vector<int> payload_requests(const RoundResult& result, std::span<const double> heads,
                                  std::size_t stride) {
  const auto ok = static_cast<std::int8_t>(io::schema::PairStatus::kOk);
  std::vector<std::pair<int, int>> want;
  for (const auto& pr : result.records) {
    for (const int side : {pr.a, pr.b}) {
      int what = pr.keep_samples ? kWantSamples : 0;
      if (pr.status != ok &&
          heads[static_cast<std::size_t>(side) * stride + RoundLayout::kErrorBytes] > 0)
        what |= kWantError;
      if (what != 0) want.emplace_back(side, what);
    }
  }
  std::sort(want.begin(), want.end());
  std::vector<int> out;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!out.empty() && out[out.size() - 2] == want[i].first) {
      out.back() |= want[i].second;
      continue;
    }
    out.push_back(want[i].first);
    out.push_back(want[i].second);
  }
  return out;
}

std::size_t payload_bytes(int what, const RoundLayout& layout, std::size_t error_bytes) {
  return ((what & kWantSamples) != 0 ? (layout.lat + layout.bw) * sizeof(double) : 0) +
         ((what & kWantError) != 0 ? error_bytes : 0);
}

std::vector<char> make_payload(int what, std::span<const double> record, const RoundLayout& layout,
                               const std::string& error) {
  std::vector<char> out(payload_bytes(what, layout, error.size()));
  std::size_t at = 0;
  if ((what & kWantSamples) != 0) {
    const std::size_t bytes = (layout.lat + layout.bw) * sizeof(double);
    std::memcpy(out.data(), record.data() + layout.samples(), bytes);
    at = bytes;
  }
  if ((what & kWantError) != 0) std::memcpy(out.data() + at, error.data(), error.size());
  return out;
}

void apply_payloads(RoundResult& result, const std::vector<int>& requests,
                    const std::vector<std::vector<char>>& payloads, const RoundLayout& layout) {
  // The answer of `rank` (nullptr: not asked) and what it holds.
  auto answer = [&](int rank) -> std::pair<const std::vector<char>*, int> {
    std::size_t lo = 0, hi = requests.size() / 2;
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (requests[2 * mid] < rank)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo < requests.size() / 2 && requests[2 * lo] == rank) return {&payloads[lo], requests[2 * lo + 1]};
    return {nullptr, 0};
  };
  const std::size_t sample_bytes = (layout.lat + layout.bw) * sizeof(double);
  std::vector<double> a_s(layout.lat + layout.bw), b_s(layout.lat + layout.bw);
  for (auto& pr : result.records) {
    const auto [pa, wa] = answer(pr.a);
    const auto [pb, wb] = answer(pr.b);
    if (pr.keep_samples && pa != nullptr && pb != nullptr && (wa & kWantSamples) != 0 &&
        (wb & kWantSamples) != 0) {
      std::memcpy(a_s.data(), pa->data(), sample_bytes);
      std::memcpy(b_s.data(), pb->data(), sample_bytes);
      const double* a = a_s.data();
      const double* b = b_s.data();
      pr.latency_ns.assign(a, a + layout.lat);
      pr.bw_gbps_fwd.assign(a + layout.lat, a + layout.lat + layout.bw);
      pr.bw_gbps_rev.assign(b + layout.lat, b + layout.lat + layout.bw);
    }
    for (const auto& [p, w] : {std::pair{pa, wa}, std::pair{pb, wb}}) {
      if (p == nullptr || (w & kWantError) == 0) continue;
      const std::size_t at = (w & kWantSamples) != 0 ? sample_bytes : 0;
      const std::string msg(p->data() + at, p->size() - at);
      if (!msg.empty()) pr.error += (pr.error.empty() ? "" : " | ") + msg;
    }
  }
}

void assemble_round(std::span<const double> all, const std::vector<std::string>& errors,
                    const RoundLayout& layout, int n, std::int64_t round, std::int64_t repeat,
                    io::KeepSamples keep, RoundResult& out) {
  const std::size_t size = layout.size();
  assemble_heads(all, size, layout, n, round, repeat, keep, out);
  const auto ok = static_cast<std::int8_t>(io::schema::PairStatus::kOk);
  for (auto& pr : out.records) {
    if (pr.status != ok && !errors.empty()) {
      for (const int side : {pr.a, pr.b}) {
        const auto& msg = errors[static_cast<std::size_t>(side)];
        if (!msg.empty()) pr.error += (pr.error.empty() ? "" : " | ") + msg;
      }
    }
    if (!pr.keep_samples) continue;
    const double* rec = all.data() + static_cast<std::size_t>(pr.a) * size + layout.samples();
    const double* peer = all.data() + static_cast<std::size_t>(pr.b) * size + layout.samples();
    pr.latency_ns.assign(rec, rec + layout.lat);
    pr.bw_gbps_fwd.assign(rec + layout.lat, rec + layout.lat + layout.bw);
    pr.bw_gbps_rev.assign(peer + layout.lat, peer + layout.lat + layout.bw);
  }
}

}  // namespace fabscope::suites
