// The arithmetic of PMA readings (topology/pma.hpp) without a fabric: deltas of saturating error
// counters and of PortCountersExtended's traffic counters, and the text form the topo tool saves.
#include "topology/pma.hpp"

#include <gtest/gtest.h>

#include "core/error.hpp"

namespace fabscope::topology {
namespace {

PmaPort reading(bool ok, bool ext_ok, std::uint64_t base) {
  PmaPort p;
  p.link = 3;
  p.side = 1;
  p.lid = 7;
  p.port = 5;
  p.ok = ok;
  p.ext_ok = ext_ok;
  for (std::size_t c = 0; c < p.values.size(); ++c) p.values[c] = ok ? base + c : 0;
  if (!ext_ok) {
    for (std::size_t c = kPmaExtFirst; c < p.values.size(); ++c) p.values[c] = 0;
  }
  return p;
}

TEST(Pma, CountersAreTheErrorsThenXmitWaitThenTheExtendedTrafficCounters) {
  EXPECT_EQ(kPmaCounters.size(), 13u);
  EXPECT_EQ(kPmaCounters[kPmaErrorCounters], "PortXmitWait");
  EXPECT_EQ(kPmaCounters[kPmaExtFirst], "PortXmitData");
  EXPECT_EQ(kPmaCounters.back(), "PortRcvPkts");
}

TEST(Pma, DeltasPerCounterKind) {
  auto before = reading(true, true, 10);
  auto after = reading(true, true, 10);
  after.values[0] = 52;                      // SymbolErrorCounter 10 -> 52
  after.values[3] = 1;                       // PortRcvErrors 13 -> 1: reset in between
  after.values[kPmaExtFirst] = 1ULL << 40;   // PortXmitData grows past 32 bits
  const auto d = pma_deltas({before}, {after});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_TRUE(d[0].ok && d[0].ext_ok);
  EXPECT_EQ(d[0].values[0], 42u);
  EXPECT_EQ(d[0].values[3], 1u);
  EXPECT_EQ(d[0].values[kPmaExtFirst], (1ULL << 40) - (10 + kPmaExtFirst));
  EXPECT_EQ(d[0].values[1], 0u);
  // PortCountersExtended unanswered on either reading: its deltas are 0 and say so; the error
  // counters still count.
  const auto no_ext = pma_deltas({reading(true, false, 10)}, {after});
  EXPECT_TRUE(no_ext[0].ok);
  EXPECT_FALSE(no_ext[0].ext_ok);
  EXPECT_EQ(no_ext[0].values[0], 42u);
  EXPECT_EQ(no_ext[0].values[kPmaExtFirst], 0u);
  // An end that did not answer at all: nothing.
  const auto none = pma_deltas({reading(false, false, 0)}, {after});
  EXPECT_FALSE(none[0].ok || none[0].ext_ok);
  EXPECT_EQ(none[0].values[0], 0u);
}

TEST(Pma, TextFormRoundTripsAndNamesABadLine) {
  auto a = reading(true, true, 1ULL << 35);
  auto b = reading(true, false, 4);
  const auto back = decode_pma(encode_pma({a, b}), "before.txt");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].values, a.values);
  EXPECT_TRUE(back[0].ext_ok);
  EXPECT_FALSE(back[1].ext_ok);
  EXPECT_EQ(back[1].values, b.values);
  EXPECT_EQ(back[1].lid, 7);
  try {
    (void)decode_pma("3 1 7 5 1 1 0 0 0\n", "before.txt");  // a reading of fewer counters
    FAIL() << "no error";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("before.txt:1: expected 'link side lid port ok ext_ok' and 13"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace fabscope::topology
