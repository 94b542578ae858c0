// std::regex with named groups. std::regex (ECMAScript) has no `(?<name>...)`; this class
// accepts that syntax, rewrites each named group to a plain numbered group, and remembers which
// number each name got. Everything else is passed to std::regex unchanged. Group numbers are
// counted the way ECMAScript counts them: every `(` that is not escaped, not inside a character
// class [...] and not followed by `?` opens a group; `(?:`, `(?=`, `(?!` open none.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabscope::topology {

class NamedRegex {
 public:
  // Throws core::UsageError (naming `what` and the pattern) on a malformed pattern or a name
  // used twice.
  NamedRegex(std::string_view pattern, std::string_view what);

  // Whole-string match; fills `groups` with the text of every named group (empty when it did not
  // take part), in the order of names().
  [[nodiscard]] bool match(const std::string& text, std::vector<std::string>& groups) const;
  [[nodiscard]] const std::vector<std::string>& names() const { return names_; }
  [[nodiscard]] int index_of(std::string_view name) const;  // position in names(), -1 if absent
  [[nodiscard]] const std::string& translated() const { return translated_; }

 private:
  std::string pattern_, translated_;
  std::vector<std::string> names_;
  std::vector<int> group_numbers_;
  std::regex re_;
};

}  // namespace fabscope::topology
