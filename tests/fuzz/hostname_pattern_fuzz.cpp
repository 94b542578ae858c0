// libFuzzer target: host-name patterns. The first line of the input is the pattern (NamedRegex
// syntax, named_regex.hpp); every further line is a host name, cut to NamedRegex::kMaxTextLength
// (255, a DNS name is at most 253) as fabscope never sees longer ones. Both the regex alone
// (NamedRegex::match) and the whole fallback topology (fabric_from_hostnames) are exercised, so a
// pattern that the backtracking guard lets through but that runs long shows up as a timeout.
// Seeds: corpus/hostname_pattern.
#include <string_view>
#include <vector>

#include "fuzz_util.hpp"
#include "topology/named_regex.hpp"
#include "topology/sources.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text = fabscope::fuzz::as_text(data, size);
  const std::size_t eol = text.find('\n');
  const std::string pattern = text.substr(0, eol);
  std::vector<std::string> hosts;
  if (eol != std::string::npos) {
    std::string_view rest = std::string_view(text).substr(eol + 1);
    while (!rest.empty() && hosts.size() < 64) {
      const std::size_t end = rest.find('\n');
      const std::string_view line = rest.substr(0, end);
      hosts.emplace_back(line.substr(0, fabscope::topology::NamedRegex::kMaxTextLength));
      rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    }
  }
  fabscope::fuzz::expect_only_usage_errors([&] {
    const fabscope::topology::NamedRegex re(pattern, "--hostname-pattern");
    std::vector<std::string> groups;
    for (const auto& h : hosts) (void)re.match(h, groups);
  });
  if (!hosts.empty()) {
    fabscope::fuzz::expect_only_usage_errors([&] {
      const auto fabric = fabscope::topology::fabric_from_hostnames(hosts, pattern);
      (void)fabric;
    });
  }
  return 0;
}
