// libFuzzer target: topology::parse_slurm_topology (Slurm topology.conf and `scontrol show
// topology` output, with hostlist expressions n[001-128,130]). Seeds: corpus/slurm_topology.
#include "fuzz_util.hpp"
#include "topology/slurm.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = fabscope::fuzz::as_text(data, size);
  fabscope::fuzz::expect_only_usage_errors([&] {
    const auto fabric = fabscope::topology::parse_slurm_topology(text, "topology.conf");
    (void)fabric;
  });
  return 0;
}
