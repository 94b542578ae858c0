#include "apps/cli.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli_util.hpp"
#include "core/error.hpp"

using namespace fabscope;
using testing_cli::parse;
using testing_cli::usage_error;

namespace {

bool contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

}  // namespace

TEST(Cli, LatDefaultsAndOptions) {
  const auto inv = parse({"lat", "--sizes", "8:64", "--iters", "50", "--warmup", "5", "--out",
                          "x.h5", "--label", "fw 1.2"});
  ASSERT_EQ(inv.specs.size(), 1u);
  const auto& s = inv.specs[0];
  EXPECT_EQ(s.kind(), "lat");
  EXPECT_EQ(s.as<suites::SweepParams>().sizes, (std::vector<std::size_t>{8, 16, 32, 64}));
  EXPECT_EQ(s.as<suites::SweepParams>().iters, 50);
  EXPECT_EQ(s.as<suites::SweepParams>().warmup, 5);
  EXPECT_EQ(s.as<suites::SweepParams>().common.label, "fw 1.2");
  EXPECT_EQ(transport::kind_name(s.as<suites::SweepParams>().common.transport), "mpi");
  EXPECT_EQ(inv.out, "x.h5");
  const auto bw = parse({"bw"});
  EXPECT_EQ(bw.specs[0].as<suites::SweepParams>().iters, 20);
  EXPECT_EQ(bw.specs[0].as<suites::SweepParams>().sizes.back(), 4u << 20);
}

TEST(Cli, PairsOptions) {
  const auto inv =
      parse({"pairs", "--lat-size", "64", "--bw-size", "4M", "--iters", "10", "--bw-iters", "3"});
  const auto& p = inv.specs[0].as<suites::PairsParams>();
  EXPECT_EQ(inv.specs[0].kind(), "pairs");
  EXPECT_EQ(p.lat_size, 64u);
  EXPECT_EQ(p.bw_size, 4u << 20);
  EXPECT_EQ(p.lat_iters, 10);
  EXPECT_EQ(p.bw_iters, 3);
}

TEST(Cli, HelpIsNotAnError) {
  const auto inv = parse({"pairs", "--help"});
  EXPECT_TRUE(inv.help);
  EXPECT_TRUE(contains(inv.help_text, "--bw-size"));
}

TEST(Cli, BadInputNamesTheFlag) {
  EXPECT_TRUE(contains(usage_error({"lat", "--sizes", "1:3"}), "--sizes"));
  EXPECT_TRUE(contains(usage_error({"lat", "--iters", "0"}), "--iters must be at least 1"));
  EXPECT_TRUE(contains(usage_error({"lat", "--iters", "-1"}), "--iters"));
  EXPECT_TRUE(contains(usage_error({"bw", "--transport", "carrier-pigeon"}),
                       "unknown transport 'carrier-pigeon'"));
  EXPECT_TRUE(contains(usage_error({"pairs", "--bw-size", "lots"}), "--bw-size"));
  EXPECT_TRUE(contains(usage_error({"lat", "--frobnicate"}), "--frobnicate"));
  EXPECT_TRUE(contains(usage_error({}), "subcommand"));
  EXPECT_TRUE(contains(usage_error({"run", "/nonexistent/suite.yaml"}), "/nonexistent/suite.yaml"));
}

TEST(Suite, ParsesEveryKind) {
  const auto specs = apps::parse_suite(R"(
name: t
description: test
benchmarks:
  - {name: l, kind: lat, sizes: "1:8", iters: 7, warmup: 1}
  - {kind: bibw, sizes: 1M}
  - {name: p, kind: pairs, lat_size: 8, bw_size: 64K, iters: 9, bw_iters: 2}
)",
                                       "t.yaml");
  ASSERT_EQ(specs.size(), 3u);
  EXPECT_EQ(specs[0].as<suites::SweepParams>().common.name, "l");
  EXPECT_EQ(specs[0].as<suites::SweepParams>().sizes.size(), 4u);
  EXPECT_EQ(specs[0].as<suites::SweepParams>().iters, 7);
  EXPECT_EQ(specs[1].kind(), "bibw");
  EXPECT_EQ(specs[1].as<suites::SweepParams>().common.name, "bibw");
  EXPECT_EQ(specs[2].as<suites::PairsParams>().bw_size, 65536u);
  EXPECT_EQ(specs[2].as<suites::PairsParams>().lat_iters, 9);
}

TEST(Suite, ErrorsNameFileLineAndField) {
  auto err = [](const std::string& text) {
    try {
      (void)apps::parse_suite(text, "s.yaml");
    } catch (const core::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_TRUE(contains(err("benchmarks:\n  - {kind: lat, iters: many}\n"),
                       "s.yaml:2: benchmarks[0].iters: expected an integer"));
  EXPECT_TRUE(contains(err("benchmarks:\n  - kind: lat\n    sizze: 8\n"),
                       "s.yaml:3: benchmarks[0].sizze: unknown field"));
  EXPECT_TRUE(contains(err("benchmarks:\n  - kind: allreduce\n"),
                       "benchmarks[0].kind: unknown benchmark 'allreduce'"));
  EXPECT_TRUE(contains(err("benchmarks: []\n"), "'benchmarks' must be a non-empty list"));
  EXPECT_TRUE(contains(err("benchmarks:\n  - {kind: lat\n"), "s.yaml:"));
  EXPECT_TRUE(
      contains(err("benchmarks:\n  - {kind: lat, iters: 0}\n"), "iters must be at least 1"));
  EXPECT_TRUE(
      contains(err("benchmarks:\n  - {kind: pairs, bw_size: 3X}\n"), "benchmarks[0].bw_size"));
  EXPECT_TRUE(
      contains(err("benchmarks:\n  - {kind: lat, name: \"a b\"}\n"), "may use only letters"));
  EXPECT_TRUE(
      contains(err("nme: x\nbenchmarks:\n  - {kind: lat}\n"), "unknown top-level field 'nme'"));
}

TEST(Cli, RunAppliesGivenTransportFlagsToEverySuiteEntry) {
  const std::string path = testing::TempDir() + "/cli-run-suite.yaml";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(
        "benchmarks:\n  - {name: lat, kind: lat, sizes: '8'}\n"
        "  - {name: pairs, kind: pairs, timeout: 5s, repeat: 2, round_timeout: 2m}\n",
        f);
    std::fclose(f);
  }
  const auto inv = parse({"run", path, "--transport", "verbs", "--cm", "rdmacm", "--qps", "2"});
  ASSERT_EQ(inv.specs.size(), 2u);
  for (const auto& s : inv.specs) {
    const auto& c = suites::common_of(s);
    EXPECT_EQ(transport::kind_name(c.transport), "verbs");
    EXPECT_EQ(c.options.cm, "rdmacm");
    EXPECT_EQ(c.options.qps, 2);
    EXPECT_EQ(c.options.tx_depth, 128);  // not given: the default
  }
  EXPECT_DOUBLE_EQ(inv.specs[1].as<suites::PairsParams>().common.options.timeout_s,
                   5);  // suite value kept
  EXPECT_EQ(inv.specs[1].as<suites::PairsParams>().repeat, 2);
  EXPECT_DOUBLE_EQ(inv.specs[1].as<suites::PairsParams>().common.options.round_timeout_s, 120);
  EXPECT_TRUE(contains(usage_error({"run", path, "--verb", "fetch_add"}), "atomics"));
  EXPECT_TRUE(contains(usage_error({"run", path, "--cm", "ucx"}), "--cm"));
}

// `run SUITE --plan new-rack --new r4 --refs 3`: the suite's pairs entries take the plan; a flag no
// entry takes is an error (it would be silently ignored).
TEST(Cli, RunAppliesPlanFlagsToThePairsEntries) {
  const std::string path = testing::TempDir() + "/cli-run-plan.yaml";
  const std::string lat_only = testing::TempDir() + "/cli-run-lat.yaml";
  for (const auto& [p, text] :
       {std::pair{
            path,
            "benchmarks:\n  - {kind: lat, sizes: '8'}\n  - {kind: pairs, plan: hop-class, k: 3}\n"},
        std::pair{lat_only, "benchmarks:\n  - {kind: lat, sizes: '8'}\n"}}) {
    std::FILE* f = std::fopen(p.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text, f);
    std::fclose(f);
  }
  const auto inv = parse({"run", path, "--plan", "new-rack", "--new", "r4", "--refs", "3",
                          "--uplink-coverage", "0.5"});
  const auto& p = inv.specs[1].as<suites::PairsParams>();
  EXPECT_EQ(p.plan, "new-rack");
  EXPECT_EQ(p.plan_options.new_hosts, std::vector<std::string>{"r4"});
  EXPECT_EQ(p.plan_options.new_rack_samples, 3);
  EXPECT_DOUBLE_EQ(p.plan_options.new_uplink_coverage, 0.5);
  EXPECT_EQ(p.plan_options.k, 3);  // the suite's value, not given on the command line
  EXPECT_EQ(parse({"run", path}).specs[1].as<suites::PairsParams>().plan, "hop-class");
  EXPECT_TRUE(contains(usage_error({"run", lat_only, "--plan", "new-rack"}),
                       "--plan applies to no benchmark of this suite"));
  EXPECT_TRUE(contains(usage_error({"run", path, "--uplink-coverage", "2"}), "--uplink-coverage"));
}

TEST(Cli, TimeoutsTakeDurations) {
  EXPECT_DOUBLE_EQ(parse({"pairs", "--timeout", "3s"})
                       .specs[0]
                       .as<suites::PairsParams>()
                       .common.options.timeout_s,
                   3);
  EXPECT_DOUBLE_EQ(parse({"pairs", "--timeout", "500ms"})
                       .specs[0]
                       .as<suites::PairsParams>()
                       .common.options.timeout_s,
                   0.5);
  EXPECT_DOUBLE_EQ(parse({"pairs", "--timeout", "7"})
                       .specs[0]
                       .as<suites::PairsParams>()
                       .common.options.timeout_s,
                   7);
  EXPECT_DOUBLE_EQ(parse({"pairs", "--pair-timeout", "2m"})
                       .specs[0]
                       .as<suites::PairsParams>()
                       .common.options.pair_timeout_s,
                   120);
  EXPECT_DOUBLE_EQ(
      parse({"pairs"}).specs[0].as<suites::PairsParams>().common.options.round_timeout_s,
      -1);  // derived at run time
  EXPECT_DOUBLE_EQ(parse({"pairs", "--round-timeout", "90s"})
                       .specs[0]
                       .as<suites::PairsParams>()
                       .common.options.round_timeout_s,
                   90);
  EXPECT_DOUBLE_EQ(parse({"pairs", "--round-timeout", "0"})
                       .specs[0]
                       .as<suites::PairsParams>()
                       .common.options.round_timeout_s,
                   0);
  EXPECT_TRUE(contains(usage_error({"pairs", "--round-timeout", "later"}), "--round-timeout"));
  EXPECT_TRUE(contains(usage_error({"pairs", "--timeout", "soon"}), "--timeout"));
  EXPECT_TRUE(contains(usage_error({"pairs", "--timeout", "0"}), "--timeout"));
}

// The registry: one declaration drives the flags, the suite fields and the help of every benchmark.
TEST(Registry, EveryDeclaredSettingIsAFlagAndASuiteField) {
  ASSERT_GE(suites::benchmarks().size(), 8u);
  for (const auto& info : suites::benchmarks()) {
    suites::BenchSpec spec(info);
    const auto help = parse({info.name, "--help"}).help_text;
    for (const auto& p : spec.params().params()) {
      if (p.hidden) {
        EXPECT_FALSE(contains(help, suites::flag_of(p.name) + " "))
            << info.name << " shows hidden " << p.name;
        continue;
      }
      EXPECT_TRUE(contains(help, suites::flag_of(p.name)))
          << info.name << " --help lacks " << p.name;
      if (p.cli_only || p.is_flag) continue;
      // The default, given back as a suite field, parses and validates (over verbs where the
      // benchmark runs over verbs: the defaults of verbs-only sweeps are the verbs ones).
      if (p.default_text.empty()) continue;
      const std::string transport =
          info.traits.verbs && p.name != "transport" ? "transport: verbs, " : "";
      const auto specs =
          apps::parse_suite(fmt::format("benchmarks:\n  - {{kind: {}, {}{}: \"{}\"}}\n", info.name,
                                        transport, p.name, p.default_text),
                            "r.yaml");
      ASSERT_EQ(specs.size(), 1u);
      EXPECT_EQ(specs[0].kind(), info.name);
    }
  }
}

TEST(Registry, SubcommandsShowOnlyTheFlagsTheyTake) {
  const auto plan = parse({"plan", "--help"}).help_text;
  for (const char* flag : {"--verb", "--qps", "--device", "--cm", "--transport", "--tx-depth"})
    EXPECT_FALSE(contains(plan, flag)) << "plan --help lists " << flag;
  EXPECT_TRUE(contains(plan, "--budget"));
  const auto coll = parse({"coll", "--help"}).help_text;
  EXPECT_FALSE(contains(coll, "--verb"));
  EXPECT_TRUE(contains(coll, "--transport"));
  EXPECT_TRUE(contains(parse({"lat", "--help"}).help_text, "--sizes SIZES=1:4M"));
  EXPECT_TRUE(contains(usage_error({"plan", "--verb", "write"}), "--verb"));
  EXPECT_TRUE(parse({"--version"}).help);
  EXPECT_TRUE(contains(parse({"--version"}).help_text, "fabscope"));
}

TEST(Registry, ParametersRecordedForTheFile) {
  const auto inv = parse({"pairs", "--bw-size", "64K", "--repeat", "3"});
  const auto& values = inv.specs[0].common().parameters;
  auto has = [&](const std::string& kv) {
    return std::find(values.begin(), values.end(), kv) != values.end();
  };
  EXPECT_TRUE(has("bw_size=65536"));
  EXPECT_TRUE(has("repeat=3"));
  EXPECT_TRUE(has("iters=1000"));
  EXPECT_TRUE(has("transport=mpi"));
  EXPECT_FALSE(has("test_stall=-1,-1"));  // test hooks are not stored
}

TEST(Rate, PointsPerTransport) {
  const auto mpi = parse({"rate"}).specs[0];
  EXPECT_EQ(mpi.kind(), "rate");
  EXPECT_TRUE(contains(fmt::format("{}", fmt::join(mpi.common().parameters, " ")),
                       "qp_counts=1 post_lists=1"));
  const auto verbs = parse({"rate", "--transport", "verbs"}).specs[0];
  EXPECT_TRUE(contains(fmt::format("{}", fmt::join(verbs.common().parameters, " ")),
                       "qp_counts=1,2,4,8 post_lists=1,4,16"));
  EXPECT_TRUE(contains(usage_error({"rate", "--qp-counts", "2,4"}),
                       "--qp-counts 2,4: queue pairs and post lists exist over verbs only"));
  EXPECT_TRUE(contains(usage_error({"rate", "--transport", "verbs", "--post-lists", "1,65"}),
                       "--post-lists 65"));
  EXPECT_TRUE(contains(usage_error({"rate", "--transport", "verbs", "--qp-counts", "x"}),
                       "--qp-counts: expected an integer"));
}

// Issue 18's command-line rows: one line, exit 2, naming what to fix.
TEST(Cli, HostileInputIsAUsageError) {
  EXPECT_TRUE(
      contains(usage_error({"pairs", "--pair-timeout", "99999999999999999s"}), "--pair-timeout"));
  EXPECT_TRUE(contains(usage_error({"pairs", "--pair-timeout", "10000000000s"}), "out of range"));
  EXPECT_TRUE(
      contains(usage_error({"pairs", "--round-timeout", "99999999999999999s"}), "--round-timeout"));
  EXPECT_TRUE(contains(usage_error({"pairs", "--timeout", "99999999999999999s"}), "--timeout"));
  EXPECT_TRUE(contains(usage_error({"pairs", "--round-timeout", "1s", "--pair-timeout", "10s"}),
                       "--round-timeout 1s must be longer than --pair-timeout 10s"));
  EXPECT_TRUE(contains(usage_error({"frobnicate"}), "unknown subcommand 'frobnicate'"));
  EXPECT_TRUE(
      contains(usage_error({"pairs", "--qps", "2"}), "--qps applies to --transport verbs only"));
  EXPECT_TRUE(
      contains(usage_error({"lat", "--cm", "rdmacm"}), "--cm applies to --transport verbs only"));
  EXPECT_EQ(parse({"lat", "--transport", "verbs", "--cm", "rdmacm"}).specs[0].common().options.cm,
            "rdmacm");
  EXPECT_TRUE(parse({"lat", "--overwrite"}).overwrite);
  EXPECT_TRUE(contains(usage_error({"topo", "--hostname-pattern", ""}), "--hostname-pattern"));
  EXPECT_EQ(parse({"lat", "--config", "ar=on", "--config", "fw=31.2"}).config,
            (std::vector<std::string>{"ar=on", "fw=31.2"}));
  EXPECT_TRUE(contains(usage_error({"lat", "--config", "adaptive"}),
                       "--config 'adaptive': give KEY=VALUE"));
  std::string big = "benchmarks:\n";
  for (int i = 0; i < 1001; ++i) big += "  - {kind: lat}\n";
  try {
    (void)apps::parse_suite(big, "big.yaml");
    ADD_FAILURE() << "1001 entries accepted";
  } catch (const core::UsageError& e) {
    EXPECT_TRUE(contains(e.what(), "at most 1000"));
  }
  const std::string path = testing::TempDir() + "/cli-huge-suite.yaml";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(big.c_str(), f);
    for (int i = 0; i < 20000; ++i)
      std::fputs("# padding to make the file larger than the limit\n", f);
    std::fclose(f);
  }
  EXPECT_TRUE(contains(usage_error({"run", path}), "at most 256 KiB"));
}

// Every shipped suite parses. The real-fabric suites (configs/suites/*.yaml, not emulated/) meet
// the shipped criteria: those judge bandwidth from 1 MiB messages (min_size: 1M in ndr400, hdr200
// and roce400), so a suite measuring pairs or bw below that would never be judged; and their RDMA
// benchmarks run over verbs so the port counters are collected.
TEST(Suite, ShippedSuitesParseAndMeetTheShippedCriteria) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(FABSCOPE_SOURCE_DIR) / "configs" / "suites";
  int files = 0, real = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::ifstream in(entry.path());
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<suites::BenchSpec> specs;
    ASSERT_NO_THROW(specs = apps::parse_suite(text, entry.path().string())) << entry.path();
    ASSERT_FALSE(specs.empty()) << entry.path();
    const bool emulated = entry.path().parent_path().filename() == "emulated";
    const bool quick_or_load = entry.path().stem() == "quick" || entry.path().stem() == "load";
    if (emulated || quick_or_load) continue;
    ++real;
    bool judged_bw = false;
    for (const auto& s : specs) {
      const bool rdma = s.kind() != "coll";
      if (rdma) {
        EXPECT_EQ(s.common().transport, transport::Kind::kVerbs)
            << entry.path() << ": " << s.kind() << " not over verbs";
      }
      if (s.kind() == "pairs") {
        EXPECT_GE(s.as<suites::PairsParams>().bw_size, std::size_t{1} << 20) << entry.path();
        judged_bw = true;
      }
      if (s.kind() == "bw" || s.kind() == "bibw") {
        const auto& sizes = s.as<suites::SweepParams>().sizes;
        EXPECT_GE(*std::max_element(sizes.begin(), sizes.end()), std::size_t{8} << 20)
            << entry.path() << ": the criteria's sweep rules judge 8M";
      }
    }
    EXPECT_TRUE(judged_bw) << entry.path() << " measures no pairs bandwidth";
  }
  EXPECT_GE(files, 6);
  EXPECT_EQ(real, 2);  // acceptance.yaml and nightly.yaml
}

// --slurm-topology takes an optional FILE: given bare, Slurm's own tree (scontrol, then
// SLURM_TOPOLOGY_ADDR); it is one topology source among the others.
TEST(Cli, SlurmTopologyOptionalFile) {
  const auto bare = parse({"pairs", "--slurm-topology", "--quiet"});
  EXPECT_TRUE(bare.topology.slurm);
  EXPECT_TRUE(bare.topology.slurm_topology.empty());
  EXPECT_TRUE(bare.topology.any());
  EXPECT_TRUE(bare.quiet);
  const auto last = parse({"topo", "--slurm-topology"});
  EXPECT_TRUE(last.topology.slurm);
  const auto file = parse({"plan", "--slurm-topology=site/topology.conf"});
  EXPECT_TRUE(file.topology.slurm);
  EXPECT_EQ(file.topology.slurm_topology, "site/topology.conf");
  const auto spaced = parse({"topo", "--slurm-topology", "t.conf"});
  EXPECT_EQ(spaced.topology.slurm_topology, "t.conf");
  const auto none = parse({"pairs"});
  EXPECT_FALSE(none.topology.slurm);
  EXPECT_FALSE(none.topology.any());
  const std::string both = usage_error({"topo", "--slurm-topology", "--topology", "x.yaml"});
  EXPECT_NE(both.find("--slurm-topology"), std::string::npos) << both;
}
