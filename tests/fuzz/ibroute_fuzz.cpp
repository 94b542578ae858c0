// libFuzzer target: topology::parse_ibroute_dump (`ibroute` / dump_lfts.sh output).
// Seeds: corpus/ibroute.
#include "fuzz_util.hpp"
#include "topology/sources.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = fabscope::fuzz::as_text(data, size);
  fabscope::fuzz::expect_only_usage_errors([&] {
    const auto lfts = fabscope::topology::parse_ibroute_dump(text, "fuzz.ibroute");
    (void)lfts;
  });
  return 0;
}
