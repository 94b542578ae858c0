// Writer/reader round trip of the results schema, and the reader's verdict on bad files.
#include "io/results.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "io/h5.hpp"
#include "io/schema.hpp"

using namespace fabscope;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("fabscope-unit-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

io::ResultsWriter make_writer(const fs::path& path, int n) {
  std::vector<io::HostRecord> hosts;
  for (int i = 0; i < n; ++i) {
    hosts.push_back(
        {"node" + std::to_string(i), "Linux 6.1", "Test CPU", "Open MPI v4.1.4", "1.14.44.0", "",
         "machine" + std::to_string(i % 2)});
  }
  return io::ResultsWriter(path.string(), {"0.1.0", "2026-11-28T08:00:00Z", "fabscope test", "", n},
                           hosts);
}

}  // namespace

TEST(Results, SweepRoundTrip) {
  const auto path = temp_file("sweep.h5");
  auto w = make_writer(path, 2);
  const std::string run = w.begin_run({"lat", "lat", "mpi", "my <label>", 3, 1, {}});
  io::SweepData d;
  d.size_bytes = {8, 16};
  d.iters = 3;
  d.metrics.push_back({"latency_ns", "ns", {1, 2, 3, 10, 20, 30}, true});
  d.columns.push_back({"extra", "Gb/s", {5, 6}});
  w.write_sweep(run, d);
  w.end_run(run);
  w.finish();

  io::ResultsReader r(path.string());
  EXPECT_EQ(r.attr_int("/", "schema_version"), io::schema::kVersion);
  EXPECT_EQ(r.attr_int("/", "n_ranks"), 2);
  EXPECT_EQ(r.attr_int("/", "complete"), 1);
  EXPECT_EQ(r.attr_string("/", "clock"), core::clock_name());
  // Slurm node names in hostname, gethostname() in a column of its own.
  EXPECT_EQ(r.strings("/hosts/hostname"), (std::vector<std::string>{"node0", "node1"}));
  EXPECT_EQ(r.strings("/hosts/gethostname"), (std::vector<std::string>{"machine0", "machine1"}));
  {
    double hz = -1;
    const hid_t f = H5Fopen(path.string().c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t a = H5Aopen(f, "clock_tsc_hz", H5P_DEFAULT);
    ASSERT_GE(a, 0);
    EXPECT_GE(H5Aread(a, H5T_NATIVE_DOUBLE, &hz), 0);
    H5Aclose(a);
    H5Fclose(f);
    EXPECT_EQ(hz, core::clock_tsc_hz());
  }
  EXPECT_EQ(r.strings("/hosts/hostname"), (std::vector<std::string>{"node0", "node1"}));
  ASSERT_EQ(r.runs(), std::vector<std::string>{"/runs/00_lat"});
  EXPECT_EQ(r.attr_string(run, "label"), "my <label>");
  EXPECT_EQ(r.attr_int(run, "complete"), 1);
  std::vector<std::uint64_t> dims;
  EXPECT_EQ(r.doubles(run + "/samples/latency_ns", &dims),
            (std::vector<double>{1, 2, 3, 10, 20, 30}));
  EXPECT_EQ(dims, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(r.doubles(run + "/summary/latency_ns_p50"), (std::vector<double>{2, 20}));
  EXPECT_EQ(r.doubles(run + "/summary/latency_ns_max"), (std::vector<double>{3, 30}));
  EXPECT_EQ(r.doubles(run + "/summary/extra"), (std::vector<double>{5, 6}));
  EXPECT_EQ(r.attr_string(run + "/summary/latency_ns_p50", "units"), "ns");
  EXPECT_EQ(r.attr_string(run + "/size_bytes", "units"), "bytes");
  EXPECT_EQ(r.ints(run + "/size_bytes"), (std::vector<std::int64_t>{8, 16}));
}

TEST(Results, PairsRowsAppendAndStayReadable) {
  const auto path = temp_file("pairs.h5");
  auto w = make_writer(path, 3);
  const std::string run = w.begin_run({"pairs", "pairs", "mpi", "", 2, 0, {}});
  w.init_pairs(run, {3, 2, 2, 3});
  io::ResultsReader r(path.string());
  EXPECT_EQ(r.attr_int("/", "schema_version"), 2);
  EXPECT_EQ(r.attr_int(run, "rounds_done"), 0);
  EXPECT_EQ(r.attr_int(run, "rows_done"), 0);
  EXPECT_EQ(r.attr_string(run, "layout"), "rows");
  EXPECT_EQ(r.attr_string(run, "keep_samples"), "suspect");
  EXPECT_EQ(r.attr_int(run, "complete"), 0);
  // Nothing N x N is written while the run goes on.
  EXPECT_FALSE(r.exists(run + "/latency_ns_p50"));
  EXPECT_FALSE(r.exists(run + "/status"));

  std::vector<io::PairRecord> round0{{0, 2, 0, 1, {100, 300}, {50, 70}, {40, 40}, "", 0}};
  w.append_pairs(run, round0, {0, 1, 0.25});
  // After one round: one row, readable by another reader of a copy (the file was flushed).
  const auto copy = temp_file("pairs-copy.h5");
  fs::copy_file(path, copy, fs::copy_options::overwrite_existing);
  const io::ResultsReader c(copy.string());
  EXPECT_EQ(c.attr_int(run, "rounds_done"), 1);
  EXPECT_EQ(c.attr_int(run, "rows_done"), 1);
  std::vector<std::uint64_t> dims;
  EXPECT_EQ(c.ints(run + "/pairs/pair", &dims), (std::vector<std::int64_t>{0, 2}));
  EXPECT_EQ(dims, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(c.doubles(run + "/pairs/latency_ns_p50"), (std::vector<double>{200}));
  EXPECT_EQ(c.doubles(run + "/pairs/latency_ns_min"), (std::vector<double>{100}));
  EXPECT_EQ(c.doubles(run + "/pairs/bw_gbps_fwd"), (std::vector<double>{60}));  // initiator sending
  EXPECT_EQ(c.doubles(run + "/pairs/bw_gbps_rev"), (std::vector<double>{40}));
  EXPECT_EQ(c.doubles(run + "/pairs/bw_gbps_fwd_best"), (std::vector<double>{70}));
  EXPECT_EQ(c.ints(run + "/pairs/status"), (std::vector<std::int64_t>{1}));
  EXPECT_EQ(c.attr_string(run + "/pairs/status", "status_names"), "not_run,ok,failed,timeout");
  // Compact distribution: 11 latency codes (p50 = 128), 2 window codes per direction, best = 255.
  const auto lq = c.ints(run + "/pairs/latency_q", &dims);
  EXPECT_EQ(dims, (std::vector<std::uint64_t>{1, 11}));
  EXPECT_EQ(lq[5], 128);
  EXPECT_EQ(lq[0], 128 - 32);  // min 100 = p50 / 2: one octave below
  EXPECT_EQ(c.ints(run + "/pairs/bw_fwd_q", &dims),
            (std::vector<std::int64_t>{255, 182}));  // 70, 50
  const auto secs = c.doubles(run + "/round_seconds");
  EXPECT_DOUBLE_EQ(secs[0], 0.25);
  EXPECT_TRUE(std::isnan(secs[1]));

  std::vector<io::PairRecord> round1{{0, 1, 1, 1, {10, 10}, {1, 1}, {2, 2}, "", 0}};
  std::vector<io::PairRecord> round2{
      {1, 2, 2, 2, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, "retry exceeded on rxe0:1 qpn 0x11", 0}};
  round1[0].keep_samples = false;  // only the raw samples of kept records are written
  w.append_pairs(run, round1, {1, 2, 0.5});
  w.append_pairs(run, round2, {2, 3, 0.5});
  w.finish_pairs(run);
  w.end_run(run);
  EXPECT_EQ(r.ints(run + "/pairs/pair"), (std::vector<std::int64_t>{0, 2, 0, 1, 1, 2}));
  EXPECT_EQ(r.ints(run + "/pair_samples/pair"), (std::vector<std::int64_t>{0, 2, 1, 2}));
  EXPECT_EQ(r.ints(run + "/pair_samples/row"), (std::vector<std::int64_t>{0, 2}));
  EXPECT_EQ(r.doubles(run + "/pair_samples/latency_ns")[1], 300);
  // The dense views, derived at the end from the rows (small fabric).
  const auto lat = r.doubles(run + "/latency_ns_p50", &dims);
  EXPECT_EQ(dims, (std::vector<std::uint64_t>{3, 3}));
  EXPECT_DOUBLE_EQ(lat[0 * 3 + 2], 200);
  EXPECT_DOUBLE_EQ(lat[2 * 3 + 0], 200);
  EXPECT_DOUBLE_EQ(r.doubles(run + "/bw_gbps")[2 * 3 + 0], 40);
  EXPECT_EQ(r.ints(run + "/round"), (std::vector<std::int64_t>{-1, 1, 0, 1, -1, 2, 0, 2, -1}));
  EXPECT_EQ(r.ints(run + "/status"), (std::vector<std::int64_t>{0, 1, 1, 1, 0, 2, 1, 2, 0}));
  EXPECT_EQ(r.attr_int(run, "complete"), 1);
  EXPECT_EQ(r.ints(run + "/errors/pair"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(r.strings(run + "/errors/message"),
            std::vector<std::string>{"retry exceeded on rxe0:1 qpn 0x11"});
}

TEST(Results, DenseViewsHoldEachPairsBestRepeat) {
  const auto path = temp_file("pairs-repeat.h5");
  auto w = make_writer(path, 3);
  const std::string run = w.begin_run({"pairs", "pairs", "mpi", "", 2, 0, {}});
  w.init_pairs(run, {3, 2, 2, 4});
  std::vector<io::PairRecord> a{{0, 2, 0, 1, {10, 10}, {5, 5}, {9, 9}, "", 0}};
  std::vector<io::PairRecord> b{{0, 2, 1, 2, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, "flap", 1}};
  std::vector<io::PairRecord> c{{0, 2, 2, 1, {8, 8}, {7, 7}, {6, 6}, "", 2}};
  w.append_pairs(run, a, {0, 1, 0.1});
  w.append_pairs(run, b, {1, 2, 0.1});
  w.append_pairs(run, c, {2, 3, 0.1});
  w.finish_pairs(run);
  const io::ResultsReader r(path.string());
  EXPECT_EQ(r.ints(run + "/pairs/repeat"), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_DOUBLE_EQ(r.doubles(run + "/latency_ns_p50")[0 * 3 + 2], 8);  // lowest of the ok repeats
  EXPECT_DOUBLE_EQ(r.doubles(run + "/bw_gbps")[0 * 3 + 2], 7);         // highest fwd
  EXPECT_DOUBLE_EQ(r.doubles(run + "/bw_gbps")[2 * 3 + 0], 9);         // highest rev
  EXPECT_EQ(r.ints(run + "/status")[0 * 3 + 2], 2);                    // the worst status
  EXPECT_EQ(r.ints(run + "/round")[0 * 3 + 2], 2);                     // its last row's round
}

TEST(Results, ReopenedPairsRunCutsARoundCutShortAndAppendsAfterIt) {
  const auto path = temp_file("resume.h5");
  std::string run;
  {
    auto w = make_writer(path, 4);
    run = w.begin_run({"pairs", "pairs", "mpi", "", 2, 0, {}});
    w.init_pairs(run, {4, 2, 2, 3});
    std::vector<io::PairRecord> bad{
        {1, 2, 0, 3, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, "peer silent", 0}};
    w.append_pairs(run, bad, {0, 1, 0.1});
    // Round 1 dies after a few of its appends: some datasets are longer than rows_done.
    std::vector<io::PairRecord> cut{{0, 3, 1, 1, {1, 1}, {1, 1}, {1, 1}, "", 0}};
    io::h5::testing::fail_writes_after(5);
    EXPECT_THROW(w.append_pairs(run, cut, {1, 2, 0.1}), core::Error);
    io::h5::testing::fail_writes_after(-1);
  }  // the process that wrote round 0 is gone
  {
    const io::ResultsReader r(path.string());
    EXPECT_EQ(r.attr_int(run, "rounds_done"), 1);
    EXPECT_EQ(r.attr_int(run, "rows_done"), 1);
    EXPECT_EQ(r.ints(run + "/pairs/pair"), (std::vector<std::int64_t>{1, 2, 0, 3}));  // the cut row
  }
  auto w = io::ResultsWriter::reopen(path.string());
  w.resume_pairs(run);
  io::ResultsReader r(path.string());
  EXPECT_EQ(r.attr_int(run, "resumed"), 1);
  EXPECT_EQ(r.ints(run + "/pairs/pair"), (std::vector<std::int64_t>{1, 2}));  // cut back
  std::vector<io::PairRecord> worse{
      {0, 1, 1, 2, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, "retry exceeded", 0},
      {2, 3, 1, 1, {100, 100}, {5, 5}, {6, 6}, "", 0}};
  w.append_pairs(run, worse, {1, 2, 0.2});
  EXPECT_EQ(r.ints(run + "/pairs/pair"), (std::vector<std::int64_t>{1, 2, 0, 1, 2, 3}));
  EXPECT_EQ(r.ints(run + "/pairs/round"), (std::vector<std::int64_t>{0, 1, 1}));
  EXPECT_EQ(r.doubles(run + "/pairs/latency_ns_p50").size(), 3U);
  EXPECT_EQ(r.ints(run + "/pairs/latency_q").size(), 33U);
  EXPECT_EQ(r.ints(run + "/errors/pair"), (std::vector<std::int64_t>{1, 2, 0, 1}));
  EXPECT_EQ(r.strings(run + "/errors/message"),
            (std::vector<std::string>{"peer silent", "retry exceeded"}));
  EXPECT_EQ(r.ints(run + "/errors/status"), (std::vector<std::int64_t>{3, 2}));
  EXPECT_EQ(r.ints(run + "/pair_samples/row"), (std::vector<std::int64_t>{0, 1, 2}));
  EXPECT_EQ(r.attr_int(run, "rounds_done"), 2);
  EXPECT_EQ(r.attr_int(run, "rows_done"), 3);
}

TEST(Results, SummaryCountsEveryCommittedRoundAndIsRebuiltWhenItLags) {
  const auto path = temp_file("summary.h5");
  std::string run;
  {
    auto w = make_writer(path, 4);
    run = w.begin_run({"pairs", "pairs", "mpi", "", 2, 0, {}});
    w.init_pairs(run, {4, 2, 2, 3});
    std::vector<io::PairRecord> r0{{0, 1, 0, 1, {100, 300}, {50, 70}, {40, 40}, "", 0},
                                   {2, 3, 0, 3, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, "silent", 0}};
    w.append_pairs(run, r0, {0, 1, 0.1});
    const io::ResultsReader r(path.string());
    EXPECT_EQ(r.attr_int(run + "/summary", "rows"), 2);
    EXPECT_EQ(r.ints(run + "/summary/status_rows"), (std::vector<std::int64_t>{0, 1, 0, 1}));
    // A round that fails part way is not counted.
    std::vector<io::PairRecord> cut{{0, 2, 1, 1, {1, 1}, {1, 1}, {1, 1}, "", 0}};
    io::h5::testing::fail_writes_after(3);
    EXPECT_THROW(w.append_pairs(run, cut, {1, 2, 0.1}), core::Error);
    io::h5::testing::fail_writes_after(-1);
    EXPECT_EQ(r.attr_int(run + "/summary", "rows"), 2);
  }
  {  // A summary that lags its rows (a writer killed between the two) is rebuilt on resume.
    io::h5::Handle f = io::h5::open_file(path.string(), true);
    io::h5::Handle g = io::h5::open_group(f.id(), run + "/summary");
    io::h5::set_attr(g.id(), "rows", std::int64_t{7});
  }
  auto w = io::ResultsWriter::reopen(path.string());
  w.resume_pairs(run);
  std::vector<io::PairRecord> r1{{0, 2, 1, 1, {1000, 1000}, {5, 5}, {6, 6}, "", 0}};
  w.append_pairs(run, r1, {1, 2, 0.2});
  const io::ResultsReader r(path.string());
  EXPECT_EQ(r.attr_int(run + "/summary", "rows"), 3);
  EXPECT_EQ(r.ints(run + "/summary/status_rows"), (std::vector<std::int64_t>{0, 2, 0, 1}));
  const auto lat = r.ints(run + "/summary/latency_ns_p50_hist");
  const auto bw = r.ints(run + "/summary/bw_gbps_hist");
  ASSERT_EQ(lat.size(), io::PairsSummary::kBins);
  EXPECT_EQ(lat[io::PairsSummary::bin(200, io::PairsSummary::kLatLowNs)], 1);
  EXPECT_EQ(lat[io::PairsSummary::bin(1000, io::PairsSummary::kLatLowNs)], 1);
  std::int64_t bw_total = 0;
  for (const auto c : bw) bw_total += c;
  EXPECT_EQ(bw_total, 4);  // fwd and rev of the two ok rows
  io::h5::Handle f = io::h5::open_file(path.string(), false);
  io::h5::Handle g = io::h5::open_group(f.id(), run + "/summary");
  EXPECT_DOUBLE_EQ(io::h5::get_attr_double(g.id(), "bw_gbps_min"), 5);
  EXPECT_DOUBLE_EQ(io::h5::get_attr_double(g.id(), "bw_gbps_max"), 60);
  EXPECT_DOUBLE_EQ(io::h5::get_attr_double(g.id(), "latency_ns_p50_max"), 1000);
}

TEST(Results, ReaderRejectsBadFilesWithOneClearLine) {
  auto expect_usage = [](const fs::path& p, const std::string& needle) {
    try {
      io::ResultsReader r(p.string());
      FAIL() << "accepted " << p;
    } catch (const core::UsageError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(p.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  };
  expect_usage(temp_file("missing.h5"), "no such file");
  const auto text = temp_file("text.h5");
  std::ofstream(text) << "not hdf5\n";
  expect_usage(text, "not an HDF5 file");

  // A real results file cut in half.
  const auto full = temp_file("full.h5");
  {
    auto w = make_writer(full, 2);
    w.finish();
  }
  const auto cut = temp_file("cut.h5");
  fs::copy_file(full, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(full) / 2);
  EXPECT_THROW(io::ResultsReader r(cut.string()), core::UsageError);

  // Another schema version.
  const auto other = temp_file("v7.h5");
  { auto w = make_writer(other, 2); }
  hid_t f = H5Fopen(other.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t a = H5Aopen(f, "schema_version", H5P_DEFAULT);
  const std::int64_t seven = 7;
  H5Awrite(a, H5T_NATIVE_INT64, &seven);
  H5Aclose(a);
  H5Fclose(f);
  expect_usage(other, "schema_version 7 is not supported");
}

TEST(Results, UnwritableOutputIsAUsageError) {
  try {
    auto w = make_writer("/proc/fabscope-cannot-write/x.h5", 2);
    FAIL() << "wrote into /proc";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--out /proc/fabscope-cannot-write/x.h5"),
              std::string::npos)
        << e.what();
  }
}

// Results already measured are never lost, and no other file is replaced (issue 18: `--out
// notes.txt` replaced the text file by HDF5; `--out keep.h5` destroyed the earlier run).
TEST(Results, NeverReplacesOtherFilesOrResultsWithoutOverwrite) {
  const auto text = temp_file("notes.txt");
  {
    std::FILE* f = std::fopen(text.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("my notes\n", f);
    std::fclose(f);
  }
  try {
    (void)make_writer(text, 2);
    ADD_FAILURE() << "a text file was replaced";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("not a fabscope results file"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(fs::file_size(text), 9u);  // untouched

  const auto kept = temp_file("keep.h5");
  fs::remove(kept);
  {
    auto w = make_writer(kept, 2);
    w.finish();
  }
  try {
    (void)make_writer(kept, 2);
    ADD_FAILURE() << "an existing results file was replaced";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--overwrite"), std::string::npos) << e.what();
  }
  EXPECT_EQ(io::ResultsReader(kept.string()).attr_int("/", "complete"),
            1);  // still the earlier run
  std::vector<io::HostRecord> hosts(2);
  io::ResultsWriter replaced(kept.string(), {"0.1.0", "now", "again", "", 2, true}, hosts);
  replaced.finish();
  EXPECT_EQ(io::ResultsReader(kept.string()).attr_string("/", "command_line"), "again");
  try {
    (void)make_writer(fs::temp_directory_path(), 2);
    ADD_FAILURE() << "a folder was accepted";
  } catch (const core::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
}

// A round cut short inside append_pairs (a failed write: full disk, killed writer) must not count
// as done: rounds_done is written after every row and sample of the round (issue 18 (f)), so
// --resume measures that round again and the file still reads; a retry in the same process cuts
// the partial rows first, so the columns stay aligned.
TEST(Results, RoundsDoneOnlyAfterTheWholeRound) {
  const auto path = temp_file("pairs-cut.h5");
  fs::remove(path);
  auto w = make_writer(path, 4);
  const std::string run = w.begin_run({"pairs", "pairs", "mpi", "", 2, 0, {}, {}});
  w.init_pairs(run, {4, 2, 2, 3});
  std::vector<io::PairRecord> a{{0, 1, 0, 1, {100, 300}, {50, 70}, {40, 40}, "", 0}};
  w.append_pairs(run, a, {0, 1, 0.25});
  std::vector<io::PairRecord> b{{2, 3, 1, 1, {10, 10}, {1, 1}, {2, 2}, "", 0}};
  // the first row column, the middle, the samples, the last append
  for (long after : {0L, 6L, 15L, 20L}) {
    io::h5::testing::fail_writes_after(after);
    EXPECT_THROW(w.append_pairs(run, b, {1, 2, 0.5}), core::Error)
        << "failure after " << after << " writes";
    io::h5::testing::fail_writes_after(-1);
    const io::ResultsReader r(path.string());
    EXPECT_EQ(r.attr_int(run, "rounds_done"), 1) << "failure after " << after << " writes";
    EXPECT_EQ(r.attr_int(run, "rows_done"), 1) << "failure after " << after << " writes";
  }
  w.append_pairs(run, b, {1, 2, 0.5});  // the retry completes the round
  const io::ResultsReader r(path.string());
  EXPECT_EQ(r.attr_int(run, "rounds_done"), 2);
  EXPECT_EQ(r.ints(run + "/pairs/pair"), (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(r.ints(run + "/pairs/bw_rev_q").size(), 4U);
  EXPECT_EQ(r.ints(run + "/pair_samples/pair"), (std::vector<std::int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(r.ints(run + "/pair_samples/row"), (std::vector<std::int64_t>{0, 1}));
}
