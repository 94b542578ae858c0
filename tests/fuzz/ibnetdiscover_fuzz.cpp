// libFuzzer target: topology::parse_ibnetdiscover over arbitrary text (ibnetdiscover dumps and
// ibsim net files). Seeds: corpus/ibnetdiscover (tests/topology/data).
#include "fuzz_util.hpp"
#include "topology/sources.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = fabscope::fuzz::as_text(data, size);
  fabscope::fuzz::expect_only_usage_errors([&] {
    const auto fabric = fabscope::topology::parse_ibnetdiscover(text, "fuzz.ibnetdiscover");
    (void)fabric;
  });
  return 0;
}
