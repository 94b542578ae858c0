// std::regex with named groups. std::regex (ECMAScript) has no `(?<name>...)`; this class
// accepts that syntax, rewrites each named group to a plain numbered group, and remembers which
// number each name got. Everything else is passed to std::regex unchanged. Group numbers are
// counted the way ECMAScript counts them: every `(` that is not escaped, not inside a character
// class [...] and not followed by `?` opens a group; `(?:`, `(?=`, `(?!` open none.
//
// std::regex backtracks, and some patterns take time exponential in the length of the text:
// `(a+)+b` on thirty a's runs for minutes. Such patterns are refused when constructed: a group
// repeated more than once (`+`, `*`, `{n,}`, `{n,m}`, `{n}` with n > 1) may not contain another
// variable repetition or an alternation `|`, and backreferences are not accepted. What remains
// backtracks at most polynomially, and the text is capped at kMaxTextLength characters (a DNS name
// is at most 253), so every match ends quickly.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabscope::topology {

class NamedRegex {
 public:
  static constexpr std::size_t kMaxTextLength = 255;

  // Throws core::UsageError (naming `what` and the pattern) on an empty or malformed pattern, a
  // name used twice, a repetition count above kMaxTextLength, or a pattern that could backtrack
  // exponentially (see above).
  NamedRegex(std::string_view pattern, std::string_view what);

  // Whole-string match; fills `groups` with the text of every named group (empty when it did not
  // take part), in the order of names(). Throws core::UsageError when `text` is longer than
  // kMaxTextLength or the regex engine gives up on it.
  [[nodiscard]] bool match(const std::string& text, std::vector<std::string>& groups) const;
  [[nodiscard]] const std::vector<std::string>& names() const { return names_; }
  [[nodiscard]] int index_of(std::string_view name) const;  // position in names(), -1 if absent
  [[nodiscard]] const std::string& translated() const { return translated_; }

 private:
  std::string what_, pattern_, translated_;
  std::vector<std::string> names_;
  std::vector<int> group_numbers_;
  std::regex re_;
};

}  // namespace fabscope::topology
