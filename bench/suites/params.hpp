// A benchmark's parameters, declared once: name, type, default and help text, bound to a field of
// the benchmark's typed parameters. The declaration drives the command-line flags (--kebab-case),
// the suite-file fields (snake_case), the help text, the range checks and the `parameters` dataset
// of the run in the results file (results/SCHEMA.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabscope::suites {

// "bw_iters" -> "--bw-iters"
[[nodiscard]] std::string flag_of(std::string_view field);

// Where a setting came from, for error messages: a command line names it as a flag, a suite file
// as a field. `prefix` starts every message ("fabscope pairs", "suite.yaml:3: benchmarks[0]").
struct Where {
  std::string prefix;
  bool cli = true;
  [[nodiscard]] std::string name(std::string_view field) const;
  // Throws core::UsageError "<prefix>: <message>".
  [[noreturn]] void fail(const std::string& message) const;
};

class ParamSet {
 public:
  struct Param {
    std::string name;  // snake_case field; the flag is flag_of(name)
    std::string help;
    std::string default_text;   // shown in --help; "" = nothing shown
    bool is_flag = false;       // a switch: given = true
    bool hidden = false;        // test hooks: not in --help and not stored
    bool cli_only = false;      // not a suite-file field (e.g. --resume)
    bool verbs_only = false;    // a --transport verbs setting (an MPI run refuses it)
    bool bytes = false;         // a size: range messages say bytes
    std::string type = "TEXT";  // what --help shows after the flag
    int given = 0;              // times set from a command line or suite file
    std::function<void(const std::string& text, const std::string& where)> set{};
    std::function<std::string()> get{};               // the value as stored in the results file
    std::function<void(const Where& where)> check{};  // range check (validate)

    Param& at_least(long long lo);  // integers: "must be at least lo"; sizes: "at least lo byte(s)"
    Param& choices(std::vector<std::string> allowed, std::string noun);  // text and lists
    Param& unique();                                                     // lists: no value twice
    Param& shown_default(std::string text) {
      default_text = std::move(text);
      return *this;
    }
    Param& hide() {
      hidden = true;
      return *this;
    }
    Param& command_line_only() {
      cli_only = true;
      return *this;
    }

    std::function<long long()> int_value{};                   // integers and sizes: for at_least
    std::function<std::vector<std::string>()> text_values{};  // text and lists: for choices/unique
  };

  // Typed binders: the field gets the default now; set() parses text into it later.
  Param& integer(std::string name, int& field, int def, std::string help);
  Param& seed(std::string name, std::uint64_t& field, std::uint64_t def, std::string help);
  Param& number(std::string name, double& field, double def, std::string help);
  Param& size(std::string name, std::size_t& field, std::string def, std::string help);
  Param& sizes(std::string name, std::vector<std::size_t>& field, std::string def,
               std::string help);
  // Durations as users type them (30s, 500ms, 2m; a plain number is seconds), in seconds. An empty
  // default leaves the field as it is (a sentinel such as 0 or -1) and shows no default.
  Param& duration(std::string name, double& field_s, std::string def, std::string help);
  Param& text(std::string name, std::string& field, std::string def, std::string help);
  Param& list(std::string name, std::vector<std::string>& field, std::string def, std::string help);
  Param& flag(std::string name, bool& field, std::string help);
  // Link rates (100G, 400Gb/s, 800M, 1.6T; bare number: Gb/s) in Gb/s; unset: 0.
  Param& rate(std::string name, double& gbps, std::string help);
  // Anything else: the caller parses. `get` returns the stored text.
  Param& custom(std::string name, std::string def, std::string help,
                std::function<void(const std::string& text, const std::string& where)> set,
                std::function<std::string()> get);

  // Sets a declared parameter from text ("" where = the flag / field name). Throws
  // core::UsageError naming `where` when the text does not parse.
  void set(std::string_view name, const std::string& text, const std::string& where);
  [[nodiscard]] Param* find(std::string_view name);
  [[nodiscard]] const Param* find(std::string_view name) const;
  [[nodiscard]] bool given(std::string_view name) const;
  [[nodiscard]] std::deque<Param>& params() { return params_; }
  [[nodiscard]] const std::deque<Param>& params() const { return params_; }
  // Every declared range and choice check, in declaration order.
  void check(const Where& where) const;
  // name=value of every parameter that is not hidden, in declaration order (the run's
  // `parameters` dataset).
  [[nodiscard]] std::vector<std::string> values() const;

 private:
  Param& add(Param p);
  std::deque<Param> params_;  // a deque: references returned by the binders stay valid
};

// A link rate as users type it ("100G", "400Gb/s", "800M", "1.6T"; a bare number is Gb/s), in
// Gb/s. Throws core::UsageError naming `what`.
[[nodiscard]] double parse_rate_gbps(const std::string& text, const std::string& what);

// A whole int ("12"; "12x", "" and out-of-range values are errors naming `where`).
[[nodiscard]] int parse_int(const std::string& text, const std::string& where);

// "a, b,c" -> {"a", "b", "c"}
[[nodiscard]] std::vector<std::string> split_list(const std::string& text);

}  // namespace fabscope::suites
