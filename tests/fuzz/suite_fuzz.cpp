// libFuzzer target: apps::parse_suite (configs/suites/*.yaml): YAML, then every benchmark's
// ParamSet parsing its fields (sizes, durations, rates, lists) and range checks.
// Seeds: corpus/suite.
#include "apps/cli.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = fabscope::fuzz::as_text(data, size);
  fabscope::fuzz::expect_only_usage_errors([&] {
    const auto specs = fabscope::apps::parse_suite(text, "fuzz-suite.yaml");
    (void)specs;
  });
  return 0;
}
