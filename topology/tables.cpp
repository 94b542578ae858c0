#include "topology/tables.hpp"

#include <fmt/format.h>

namespace fabscope::topology {
namespace {

using I64 = std::vector<std::int64_t>;
using F64 = std::vector<double>;
using Str = std::vector<std::string>;

std::size_t uz(Index i) { return static_cast<std::size_t>(i); }

template <typename T, typename F>
Column col(std::string name, std::string units, std::size_t n, F&& f) {
  T v;
  v.reserve(n);
  for (std::size_t i = 0; i < n; ++i) v.push_back(f(i));
  return Column{std::move(name), std::move(units), std::move(v)};
}

std::string guid_hex(std::uint64_t g) {
  return g == 0 ? std::string() : fmt::format("0x{:016x}", g);
}

}  // namespace

std::vector<Table> topology_tables(const Fabric& f) {
  std::vector<Table> t;
  const auto& H = f.hosts();
  const auto& N = f.nics();
  const auto& S = f.switches();
  const auto& L = f.links();
  const auto sw_name = [&](Index s) { return s == kNone ? std::string() : S[uz(s)].name; };
  const auto order = f.host_order();
  std::vector<std::int64_t> position(H.size());
  for (std::size_t i = 0; i < order.size(); ++i)
    position[uz(order[i])] = static_cast<std::int64_t>(i);

  t.push_back(
      {"hosts",
       {col<Str>("name", "", H.size(), [&](std::size_t i) { return H[i].name; }),
        col<I64>("rack", "", H.size(), [&](std::size_t i) { return H[i].rack; }),
        col<I64>("leaf", "", H.size(),
                 [&](std::size_t i) { return f.host_leaf(static_cast<Index>(i)); }),
        col<I64>("pod", "", H.size(),
                 [&](std::size_t i) { return f.host_pod(static_cast<Index>(i)); }),
        col<Str>("rack_name", "", H.size(),
                 [&](std::size_t i) {
                   return H[i].rack == kNone ? std::string() : f.racks()[uz(H[i].rack)];
                 }),
        col<Str>("leaf_name", "", H.size(),
                 [&](std::size_t i) { return sw_name(f.host_leaf(static_cast<Index>(i))); }),
        col<Str>("pod_name", "", H.size(),
                 [&](std::size_t i) {
                   const Index p = f.host_pod(static_cast<Index>(i));
                   return p == kNone ? std::string() : f.pods()[uz(p)];
                 }),
        col<I64>("topo_order", "", H.size(), [&](std::size_t i) { return position[i]; }),
        col<I64>("first_nic", "", H.size(), [&](std::size_t i) { return H[i].first_nic; }),
        col<I64>("nic_count", "", H.size(), [&](std::size_t i) { return H[i].nic_count; })}});
  t.push_back(
      {"nics",
       {col<I64>("host", "", N.size(), [&](std::size_t i) { return N[i].host; }),
        col<Str>("device", "", N.size(), [&](std::size_t i) { return N[i].device; }),
        col<I64>("port", "", N.size(), [&](std::size_t i) { return N[i].port; }),
        col<Str>("node_guid", "", N.size(),
                 [&](std::size_t i) { return guid_hex(N[i].node_guid); }),
        col<Str>("port_guid", "", N.size(),
                 [&](std::size_t i) { return guid_hex(N[i].port_guid); }),
        col<I64>("lid", "", N.size(), [&](std::size_t i) { return N[i].lid; }),
        col<Str>("link_layer", "", N.size(),
                 [&](std::size_t i) { return std::string(to_string(N[i].link_layer)); }),
        col<F64>("rate_gbps", "Gb/s", N.size(), [&](std::size_t i) { return N[i].rate_gbps; }),
        col<I64>("width", "lanes", N.size(), [&](std::size_t i) { return N[i].width; }),
        col<Str>("state", "", N.size(),
                 [&](std::size_t i) { return std::string(to_string(N[i].state)); }),
        col<I64>("mtu_bytes", "bytes", N.size(), [&](std::size_t i) { return N[i].mtu_bytes; }),
        col<I64>("numa_node", "", N.size(), [&](std::size_t i) { return N[i].numa_node; }),
        col<Str>("pci_address", "", N.size(), [&](std::size_t i) { return N[i].pci_address; }),
        col<Str>("netdev", "", N.size(), [&](std::size_t i) { return N[i].netdev; }),
        col<I64>("rail", "", N.size(), [&](std::size_t i) { return N[i].rail; }),
        col<I64>("leaf", "", N.size(), [&](std::size_t i) { return N[i].leaf; }),
        col<I64>("leaf_port", "", N.size(), [&](std::size_t i) { return N[i].leaf_port; })}});
  t.push_back({"switches",
               {col<Str>("name", "", S.size(), [&](std::size_t i) { return S[i].name; }),
                col<Str>("guid", "", S.size(), [&](std::size_t i) { return guid_hex(S[i].guid); }),
                col<I64>("lid", "", S.size(), [&](std::size_t i) { return S[i].lid; }),
                col<I64>("level", "", S.size(), [&](std::size_t i) { return S[i].level; }),
                col<I64>("pod", "", S.size(), [&](std::size_t i) { return S[i].pod; }),
                col<I64>("ports", "", S.size(), [&](std::size_t i) { return S[i].ports; })}});
  const auto kind = [](const LinkEnd& e) {
    return std::string(e.kind == NodeKind::kNic ? "nic" : "switch");
  };
  t.push_back(
      {"links",
       {col<Str>("a_kind", "", L.size(), [&](std::size_t i) { return kind(L[i].a); }),
        col<I64>("a_index", "", L.size(), [&](std::size_t i) { return L[i].a.index; }),
        col<I64>("a_port", "", L.size(), [&](std::size_t i) { return L[i].a.port; }),
        col<Str>("b_kind", "", L.size(), [&](std::size_t i) { return kind(L[i].b); }),
        col<I64>("b_index", "", L.size(), [&](std::size_t i) { return L[i].b.index; }),
        col<I64>("b_port", "", L.size(), [&](std::size_t i) { return L[i].b.port; }),
        col<F64>("rate_gbps", "Gb/s", L.size(), [&](std::size_t i) { return L[i].rate_gbps; }),
        col<I64>("width", "lanes", L.size(), [&](std::size_t i) { return L[i].width; }),
        col<F64>("max_rate_gbps", "Gb/s", L.size(),
                 [&](std::size_t i) { return L[i].max_rate_gbps; })}});
  t.push_back({"racks", {col<Str>("name", "", f.racks().size(), [&](std::size_t i) {
                 return f.racks()[i];
               })}});
  t.push_back({"pods", {col<Str>("name", "", f.pods().size(), [&](std::size_t i) {
                 return f.pods()[i];
               })}});
  return t;
}

std::vector<std::pair<std::string, std::string>> topology_attributes(const Fabric& f) {
  return {{"source", f.source()},
          {"name", f.name()},
          {"n_hosts", std::to_string(f.hosts().size())},
          {"n_nics", std::to_string(f.nics().size())},
          {"n_switches", std::to_string(f.switches().size())},
          {"n_links", std::to_string(f.links().size())},
          {"rails", std::to_string(f.rails())},
          {"routes_known", f.has_routes() ? "1" : "0"},
          {"hop_class_names", "same_host,same_leaf,same_pod,cross_spine,unknown"},
          {"hop_definition",
           "links on the path between two NIC ports, host links included: same leaf 2, same pod 4, "
           "via cores 6; hop class from the hosts' leaf and pod columns: same leaf -> same_leaf, "
           "same pod -> same_pod, else cross_spine"}};
}

Table rank_table(const Endpoints& e) {
  return {"ranks",
          {col<I64>("host", "", e.size(), [&](std::size_t i) { return e[i].host; }),
           col<I64>("nic", "", e.size(), [&](std::size_t i) { return e[i].nic; })}};
}

}  // namespace fabscope::topology
