// fabscope-topo-tool: a command-line driver of the topology library for the script-driven tests
// (ibsim, plan scale) until `fabscope topo` / `fabscope plan` exist. Exit codes as fabscope's:
// 0 ok, 1 check failed, 2 usage, 77 unsupported.
//
//   gen-net      --spec SPEC --out NET            ibsim net file of a generated fat tree
//   show         SOURCE                           hierarchy summary
//   canon        SOURCE [--local-fields] [--out F] canonical model text
//   check-gen    SOURCE --spec SPEC               compare with the generated fabric (names, tiers,
//                                                 pods, leaf ports, hop counts of every host pair)
//   check-routes SOURCE [--compare-lfts IBROUTE]  every host pair's route: reaches the peer, as
//   long
//                                                 as the hop count, through a spine of the right
//                                                 pod
//   plan         SOURCE [plan options]            plan summaries, wall time and peak RSS
//   local        [--sysfs ROOT]                   local discovery (sysfs, verbs, hwloc)
// SOURCE: --ibnetdiscover F | --topology F.yaml | --cache F | --live [--ca C] [--save-cache F]
//         [--no-routes] | --generate SPEC | --hostnames F --pattern RE;  [--routes IBROUTE_FILE]
#include <fmt/format.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/units.hpp"
#include "topology/generator.hpp"
#include "topology/ibnd.hpp"
#include "topology/local.hpp"
#include "topology/plan.hpp"
#include "topology/plan_file.hpp"
#include "topology/pma.hpp"
#include "topology/sources.hpp"

using namespace fabscope;
using namespace fabscope::topology;

namespace {

struct SourceOpts {
  std::string ibnetdiscover, yaml, cache, generate, hostnames, pattern, routes, ca, save_cache;
  bool live = false, no_routes = false;

  void add(CLI::App* app) {
    app->add_option("--ibnetdiscover", ibnetdiscover, "ibnetdiscover dump");
    app->add_option("--topology", yaml, "topology YAML");
    app->add_option("--cache", cache, "ibnd cache file");
    app->add_flag("--live", live, "libibnetdisc live discovery");
    app->add_option("--ca", ca, "CA for live discovery");
    app->add_option("--save-cache", save_cache, "write an ibnd cache during live discovery");
    app->add_flag("--no-routes", no_routes, "do not read forwarding tables live");
    app->add_option("--generate", generate, "generated fat tree, e.g. hosts=128,nics-per-leaf=8");
    app->add_option("--hostnames", hostnames, "file with one host name per line");
    app->add_option("--pattern", pattern, "host-name pattern with (?<rack>...)");
    app->add_option("--routes", routes, "ibroute dump to attach as forwarding tables");
  }

  Fabric load() const {
    const int n = !ibnetdiscover.empty() + !yaml.empty() + !cache.empty() + live +
                  !generate.empty() + !hostnames.empty();
    if (n != 1)
      throw core::UsageError(
          "give exactly one source: --ibnetdiscover, --topology, --cache, --live, --generate or "
          "--hostnames");
    Fabric f;
    if (!ibnetdiscover.empty()) f = load_ibnetdiscover(ibnetdiscover);
    if (!yaml.empty()) f = load_topology_yaml(yaml);
    if (!cache.empty()) f = load_ibnd_cache(cache);
    if (!generate.empty()) f = generate_fat_tree(parse_fat_tree_spec(generate, "--generate"));
    if (live) {
      LiveOptions o;
      o.ca = ca;
      o.read_routes = !no_routes;
      o.cache_path = save_cache;
      f = discover_fabric_live(o);
    }
    if (!hostnames.empty()) {
      std::vector<std::string> names;
      std::istringstream in(read_text_file(hostnames, "--hostnames"));
      for (std::string l; std::getline(in, l);) {
        if (!l.empty()) names.push_back(l);
      }
      f = fabric_from_hostnames(names, pattern, "--pattern");
    }
    if (!routes.empty())
      f.set_routes(parse_ibroute_dump(read_text_file(routes, "--routes"), routes));
    return f;
  }
};

std::size_t uz(Index i) { return static_cast<std::size_t>(i); }

int check_gen(const Fabric& got, const FatTreeSpec& spec) {
  const Fabric want = generate_fat_tree(spec);
  std::vector<std::string> errs;
  const auto err = [&](std::string s) {
    if (errs.size() < 30) errs.push_back(std::move(s));
  };
  if (got.hosts().size() != want.hosts().size())
    err(fmt::format("{} hosts, want {}", got.hosts().size(), want.hosts().size()));
  if (got.switches().size() != want.switches().size())
    err(fmt::format("{} switches, want {}", got.switches().size(), want.switches().size()));
  if (got.links().size() != want.links().size())
    err(fmt::format("{} links, want {}", got.links().size(), want.links().size()));
  // Switch tiers by name, pods as a partition.
  std::map<Index, Index> pod_map, pod_back;
  for (const Switch& w : want.switches()) {
    const Index g = got.find_switch(w.name);
    if (g == kNone) {
      err(fmt::format("switch '{}' missing", w.name));
      continue;
    }
    const Switch& s = got.switches()[uz(g)];
    if (s.level != w.level)
      err(fmt::format("switch '{}' level {}, want {}", w.name, s.level, w.level));
    if ((s.pod == kNone) != (w.pod == kNone))
      err(fmt::format("switch '{}' pod presence differs", w.name));
    if (w.pod != kNone && s.pod != kNone) {
      const auto [it, ins] = pod_map.emplace(w.pod, s.pod);
      const auto [it2, ins2] = pod_back.emplace(s.pod, w.pod);
      if (it->second != s.pod || it2->second != w.pod)
        err(fmt::format("switch '{}' is in the wrong pod", w.name));
    }
  }
  // Hosts: leaf, leaf port, and hops of every pair (also against a BFS over the cables).
  std::vector<Index> g_of(want.hosts().size(), kNone);
  for (std::size_t h = 0; h < want.hosts().size(); ++h) {
    const Index g = got.find_host(want.hosts()[h].name);
    if (g == kNone) {
      err(fmt::format("host '{}' missing", want.hosts()[h].name));
      continue;
    }
    g_of[h] = g;
    const Nic& wn = want.nics()[uz(want.primary_nic(static_cast<Index>(h)))];
    const Index gn_i = got.primary_nic(g);
    if (gn_i == kNone) {
      err(fmt::format("host '{}' has no NIC", want.hosts()[h].name));
      continue;
    }
    const Nic& gn = got.nics()[uz(gn_i)];
    if (gn.leaf == kNone || got.switches()[uz(gn.leaf)].name != want.switches()[uz(wn.leaf)].name ||
        gn.leaf_port != wn.leaf_port) {
      err(fmt::format("host '{}' on {}[{}], want {}[{}]", want.hosts()[h].name,
                      gn.leaf == kNone ? "-" : got.switches()[uz(gn.leaf)].name, gn.leaf_port,
                      want.switches()[uz(wn.leaf)].name, wn.leaf_port));
    }
  }
  std::map<int, std::int64_t> hist;
  for (std::size_t a = 0; a < want.hosts().size(); ++a) {
    for (std::size_t b = a + 1; b < want.hosts().size(); ++b) {
      if (g_of[a] == kNone || g_of[b] == kNone) continue;
      const int w = want.host_hops(static_cast<Index>(a), static_cast<Index>(b));
      const int g = got.host_hops(g_of[a], g_of[b]);
      const int bfs = got.shortest_nic_hops(got.primary_nic(g_of[a]), got.primary_nic(g_of[b]));
      if (g != w || bfs != w)
        err(fmt::format("hops {} - {}: model {}, bfs {}, want {}", want.hosts()[a].name,
                        want.hosts()[b].name, g, bfs, w));
      if (to_string(got.host_hop_class(g_of[a], g_of[b])) !=
          to_string(want.host_hop_class(static_cast<Index>(a), static_cast<Index>(b)))) {
        err(fmt::format("hop class {} - {} differs", want.hosts()[a].name, want.hosts()[b].name));
      }
      ++hist[g];
    }
  }
  std::string h;
  for (const auto& [k, v] : hist) h += fmt::format(" {}:{}", k, v);
  if (!errs.empty()) {
    for (const auto& e : errs) std::cout << "MISMATCH " << e << "\n";
    return 1;
  }
  std::cout << fmt::format(
      "OK {} hosts, {} switches ({} leaves, {} spines, {} cores), {} pods, {} links; pair hop "
      "counts:{}\n",
      got.hosts().size(), got.switches().size(), got.count_switches(1), got.count_switches(2),
      got.count_switches(3), got.pods().size(), got.links().size(), h);
  return 0;
}

int check_routes(const Fabric& f, const std::string& compare) {
  if (!f.has_routes()) {
    std::cout << "FAIL no forwarding tables (did a subnet manager run? --no-routes?)\n";
    return 1;
  }
  int bad = 0;
  if (!compare.empty()) {  // the live tables must equal what ibroute printed
    const auto ref = parse_ibroute_dump(read_text_file(compare, "--compare-lfts"), compare);
    std::size_t compared = 0;
    for (const SwitchLft& t : ref) {
      const Index s = f.find_switch_guid(t.guid);
      if (s == kNone) {
        std::cout << fmt::format("MISMATCH ibroute switch 0x{:016x} unknown\n", t.guid);
        ++bad;
        continue;
      }
      const auto& mine = f.lfts()[uz(s)];
      for (std::size_t lid = 1; lid < std::max(mine.size(), t.ports.size()); ++lid) {
        const int a = lid < mine.size() ? mine[lid] : kNoPort,
                  b = lid < t.ports.size() ? t.ports[lid] : kNoPort;
        if (a != b && b != kNoPort) {
          if (bad++ < 20)
            std::cout << fmt::format("MISMATCH switch {} lid {}: libibmad {} ibroute {}\n",
                                     f.switches()[uz(s)].name, lid, a, b);
        }
      }
      ++compared;
    }
    std::cout << fmt::format("compared the LFTs of {} switches with ibroute\n", compared);
  }
  std::map<std::string, std::int64_t> spine_use;
  std::int64_t pairs = 0;
  for (std::size_t a = 0; a < f.hosts().size(); ++a) {
    for (std::size_t b = 0; b < f.hosts().size(); ++b) {
      if (a == b) continue;
      const Index na = f.primary_nic(static_cast<Index>(a)),
                  nb = f.primary_nic(static_cast<Index>(b));
      const auto r = f.route(na, nb);
      const auto label = fmt::format("{} -> {}", f.hosts()[a].name, f.hosts()[b].name);
      if (!r) {
        if (bad++ < 20) std::cout << "MISMATCH no route " << label << "\n";
        continue;
      }
      const int hops = f.nic_hops(na, nb);
      if (static_cast<int>(r->links.size()) != hops) {
        if (bad++ < 20)
          std::cout << fmt::format("MISMATCH {}: route of {} links, hops {}\n", label,
                                   r->links.size(), hops);
      }
      const Index la = f.nics()[uz(na)].leaf, lb = f.nics()[uz(nb)].leaf;
      const Index pa = f.switches()[uz(la)].pod, pb = f.switches()[uz(lb)].pod;
      const Index sp = f.route_spine(na, nb);
      if (la != lb) {
        if (sp == kNone || f.switches()[uz(sp)].pod != pa) {
          if (bad++ < 20)
            std::cout << fmt::format("MISMATCH {}: climbs through no spine of its pod\n", label);
        } else {
          ++spine_use[f.switches()[uz(sp)].name];
        }
        bool core = false;
        for (const Index s : r->switches) core |= f.switches()[uz(s)].level >= 3;
        if (core != (pa != pb)) {
          if (bad++ < 20)
            std::cout << fmt::format("MISMATCH {}: {} a core across pods\n", label,
                                     core ? "uses" : "misses");
        }
      }
      ++pairs;
    }
  }
  if (bad > 0) {
    std::cout << fmt::format("FAIL {} problems\n", bad);
    return 1;
  }
  std::string use;
  for (const auto& [k, v] : spine_use) use += fmt::format(" {}:{}", k, v);
  std::cout << fmt::format(
      "OK routes of {} ordered host pairs follow the hierarchy; first spine used:{}\n", pairs, use);
  return 0;
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int run(int argc, char** argv) {
  CLI::App app{"fabscope topology test driver"};
  app.require_subcommand(1);
  SourceOpts src;

  auto* gen = app.add_subcommand("gen-net", "write the ibsim net file of a generated fat tree");
  std::string spec, out;
  gen->add_option("--spec", spec, "fat-tree spec")->required();
  gen->add_option("--out", out, "net file")->required();

  auto* show = app.add_subcommand("show", "hierarchy summary");
  src.add(show);
  auto* canon = app.add_subcommand("canon", "canonical model text");
  src.add(canon);
  bool local_fields = false;
  canon->add_flag("--local-fields", local_fields);
  canon->add_option("--out", out);
  auto* cgen = app.add_subcommand("check-gen", "compare with a generated fat tree");
  src.add(cgen);
  cgen->add_option("--spec", spec)->required();
  auto* croutes = app.add_subcommand("check-routes", "check every host pair's route");
  src.add(croutes);
  std::string compare;
  croutes->add_option("--compare-lfts", compare, "ibroute output to compare the tables with");

  auto* plan = app.add_subcommand("plan", "plan summaries with wall time and peak RSS");
  src.add(plan);
  bool per_nic = false;
  std::string pair_time = "1s", budget, write_plan, new_hosts;
  PlanOptions po;
  plan->add_flag("--per-nic", per_nic, "one endpoint per NIC");
  plan->add_option("--pair-time", pair_time);
  plan->add_option("--budget", budget);
  plan->add_option("--k", po.k);
  plan->add_option("--seed", po.seed);
  plan->add_option("--new", new_hosts, "new racks/hosts, comma-separated");
  plan->add_option("--write-plan", write_plan, "write this plan to --out as a plan file");
  plan->add_option("--out", out);

  auto* pma = app.add_subcommand(
      "pma", "read the PMA PortCounters of both ends of every link; with --before, the deltas");
  src.add(pma);
  std::string pma_save, pma_before;
  pma->add_option("--save", pma_save, "write this reading to a file");
  pma->add_option("--before", pma_before, "an earlier --save: print the error counters that rose");

  auto* local = app.add_subcommand("local", "local discovery");
  std::string sysfs = "/sys";
  local->add_option("--sysfs", sysfs);

  CLI11_PARSE(app, argc, argv);
  try {
    if (gen->parsed()) {
      const Fabric f = generate_fat_tree(parse_fat_tree_spec(spec, "--spec"));
      std::ofstream o(out);
      write_ibsim_net(f, o);
      if (!o) throw core::UsageError(fmt::format("cannot write '{}'", out));
      std::cout << fmt::format("wrote {}: {} hosts, {} switches\n", out, f.hosts().size(),
                               f.switches().size());
      return 0;
    }
    if (local->parsed()) {
      LocalOptions lo;
      lo.sysfs_root = sysfs;
      const LocalHost h = discover_local(lo);
      std::cout << encode_local(h);
      return 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    Fabric f = src.load();
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (show->parsed()) {
      std::cout << format_summary(f);
      std::cout << fmt::format("loaded in {:.3f} s\n", load_s);
      return 0;
    }
    if (canon->parsed()) {
      const std::string text = canonical_text(f, local_fields);
      if (out.empty()) {
        std::cout << text;
      } else {
        std::ofstream o(out);
        o << text;
      }
      return 0;
    }
    if (cgen->parsed()) return check_gen(f, parse_fat_tree_spec(spec, "--spec"));
    if (pma->parsed()) {
      const auto t1 = std::chrono::steady_clock::now();
      const auto now = read_pma(f, PmaOptions{.ca = src.ca});
      const double read_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      std::size_t ok = 0, ext = 0;
      for (const auto& p : now) {
        ok += p.ok ? 1 : 0;
        ext += p.ext_ok ? 1 : 0;
      }
      std::cout << fmt::format(
          "read {} of {} link ends ({} links), PortCountersExtended from {}, in {:.3f} s\n", ok,
          now.size(), f.links().size(), ext, read_s);
      if (!pma_save.empty()) std::ofstream(pma_save) << encode_pma(now);
      if (!pma_before.empty()) {
        std::ifstream in(pma_before);
        std::stringstream text;
        text << in.rdbuf();
        const auto lines = describe_errors(f, pma_deltas(decode_pma(text.str(), pma_before), now));
        for (const auto& l : lines) std::cout << "errors: " << l << "\n";
        std::cout << fmt::format("{} link ends with rising error counters\n", lines.size());
      }
      return ok == now.size() ? 0 : 1;
    }
    if (croutes->parsed()) return check_routes(f, compare);
    if (plan->parsed()) {
      po.pair_time_s = core::parse_duration_s(pair_time, "--pair-time");
      if (!budget.empty()) po.budget_s = core::parse_duration_s(budget, "--budget");
      for (std::size_t s = 0; s < new_hosts.size();) {
        auto c = new_hosts.find(',', s);
        if (c == std::string::npos) c = new_hosts.size();
        if (c > s) po.new_hosts.push_back(new_hosts.substr(s, c - s));
        s = c + 1;
      }
      const Endpoints e = per_nic ? Endpoints::per_nic(f) : Endpoints::per_host(f);
      const auto t1 = std::chrono::steady_clock::now();
      if (!write_plan.empty()) {
        const auto p = make_plan(write_plan, e, po);
        std::ofstream o(out);
        write_plan_file(o, *p, e);
        std::cout << fmt::format("wrote {} ({} rounds)\n", out, p->rounds());
        return 0;
      }
      const auto sums = summarize_plans(e, po);
      const double plan_s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      std::cout << fmt::format("{} hosts, {} NICs, {} endpoints ({}), pair time {}\n",
                               f.hosts().size(), f.nics().size(), e.size(),
                               per_nic ? "one per NIC" : "one per host",
                               core::format_duration(po.pair_time_s));
      std::cout << format_plan_summaries(sums);
      std::cout << fmt::format(
          "timing: topology {:.3f} s, plans {:.3f} s, total {:.3f} s; peak RSS {:.1f} MiB\n",
          load_s, plan_s, load_s + plan_s, peak_rss_mib());
      return 0;
    }
  } catch (const core::Error& e) {
    std::fprintf(stderr, "fabscope-topo-tool: %s\n", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fabscope-topo-tool: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fabscope-topo-tool: %s\n", e.what());
    return 1;
  }
}
