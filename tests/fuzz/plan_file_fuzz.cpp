// libFuzzer target: topology::parse_plan_file (the format in topology/PLANS.md).
// Seeds: corpus/plan_file.
#include "fuzz_util.hpp"
#include "topology/plan_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = fabscope::fuzz::as_text(data, size);
  fabscope::fuzz::expect_only_usage_errors([&] {
    const auto file = fabscope::topology::parse_plan_file(text, "fuzz.plan");
    (void)file;
  });
  return 0;
}
