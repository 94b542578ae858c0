// libFuzzer target: topology::parse_topology_yaml (configs/topologies/*.yaml). yaml-cpp itself is
// the Debian library, not instrumented: coverage guides through fabscope's reading of the tree.
// Seeds: corpus/topology_yaml.
#include "fuzz_util.hpp"
#include "topology/sources.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = fabscope::fuzz::as_text(data, size);
  fabscope::fuzz::expect_only_usage_errors([&] {
    const auto fabric = fabscope::topology::parse_topology_yaml(text, "fuzz.yaml");
    (void)fabric;
  });
  return 0;
}
