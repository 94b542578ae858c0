// The benchmark registry. A benchmark is one file, bench/suites/<name>.cpp, plus its name in
// bench/suites/CMakeLists.txt: it declares its parameters once (name, default, help: params.hpp),
// its checks, its preflight and its run, and registers itself in register_<name>(). The command
// line, suite files, --help and the run's `parameters` in the results file all come from that one
// declaration; apps/ never lists benchmarks or their settings.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "suites/params.hpp"
#include "suites/suite.hpp"

namespace fabscope::runtime {
class Comm;
}

namespace fabscope::suites {

// The shared settings a benchmark takes besides its own.
struct Traits {
  bool verbs =
      true;  // runs over --transport verbs too (and takes the verbs flags); false: MPI only
  bool atomics = false;  // --verb fetch_add / cmp_swap allowed
  bool timeout = true;   // --timeout (how long a peer may stay silent)
  int min_ranks = 2;
};

class Benchmark {
 public:
  Benchmark() = default;
  Benchmark(const Benchmark&) = delete;
  Benchmark& operator=(const Benchmark&) = delete;
  virtual ~Benchmark() = default;

  [[nodiscard]] virtual Common& common() = 0;
  // Its own parameters, bound to its fields, with defaults and help (ParamSet's binders).
  virtual void declare(ParamSet& set) = 0;
  // After the settings are applied: values that depend on which ones were given (may throw
  // core::UsageError through where.fail).
  virtual void resolve(const ParamSet& /*set*/, const Where& /*where*/) {}
  // Checks beyond the declared ranges and choices; names settings with where.name(field).
  virtual void validate(const Where& /*where*/) const {}
  // Collective (every rank, same order): throws core::Error with one line saying why it cannot
  // run here and how to fix it. The harness has checked the rank count and opened the verbs port.
  virtual void preflight(const runtime::Comm& /*comm*/, const Context& /*ctx*/) const {}
  virtual void run(Context& ctx) const = 0;
};

// A benchmark over a typed parameter struct P (which has a `Common common` member).
template <class P>
class BenchmarkWith : public Benchmark {
 public:
  P p;
  Common& common() override { return p.common; }
};

struct BenchmarkInfo {
  std::string name;     // subcommand and suite `kind`
  std::string summary;  // one line for --help
  Traits traits;
  std::function<std::unique_ptr<Benchmark>()> make;
};

// Every benchmark, in the order of bench/suites/CMakeLists.txt.
[[nodiscard]] const std::vector<BenchmarkInfo>& benchmarks();
[[nodiscard]] const BenchmarkInfo* find_benchmark(std::string_view name);
// "lat, bw, ... or rate"
[[nodiscard]] std::string benchmark_names();
// Called by each benchmark's register_<name>() (the generated registry calls those once).
void register_benchmark(BenchmarkInfo info);

// One configured benchmark (a subcommand or a suite entry): the benchmark, and its declared
// parameters (the shared ones from its traits, then its own). Copies share the benchmark.
class BenchSpec {
 public:
  explicit BenchSpec(const BenchmarkInfo& info);

  [[nodiscard]] const std::string& kind() const { return state_->info->name; }
  [[nodiscard]] const BenchmarkInfo& info() const { return *state_->info; }
  [[nodiscard]] Benchmark& bench() { return *state_->bench; }
  [[nodiscard]] const Benchmark& bench() const { return *state_->bench; }
  [[nodiscard]] ParamSet& params() { return state_->params; }
  [[nodiscard]] const ParamSet& params() const { return state_->params; }
  [[nodiscard]] Common& common() { return state_->bench->common(); }
  [[nodiscard]] const Common& common() const { return state_->bench->common(); }
  // The typed parameters of a benchmark declared as BenchmarkWith<P>.
  template <class P>
  [[nodiscard]] P& as() {
    return dynamic_cast<BenchmarkWith<P>&>(*state_->bench).p;
  }
  template <class P>
  [[nodiscard]] const P& as() const {
    return dynamic_cast<const BenchmarkWith<P>&>(*state_->bench).p;
  }
  // After every setting is applied: resolve, declared checks, shared transport checks, the
  // benchmark's own checks; then records the parameters for the results file. Throws
  // core::UsageError starting with where.prefix.
  void finish(const Where& where);
  // Verbs settings given to an MPI run would be silently ignored: throws core::UsageError naming
  // the first (after every entry's own checks, so those speak first).
  void check_verbs_settings(const Where& where) const;

 private:
  struct State {
    const BenchmarkInfo* info = nullptr;
    std::unique_ptr<Benchmark> bench;
    ParamSet params;  // bound to bench's fields: declared after it, destroyed before it
  };
  std::shared_ptr<State> state_;
};

// The Common part of a spec (the name, label, transport and its options).
[[nodiscard]] inline Common& common_of(BenchSpec& spec) { return spec.common(); }
[[nodiscard]] inline const Common& common_of(const BenchSpec& spec) { return spec.common(); }

// Declares the transport settings (--transport and, for benchmarks that run over verbs, the verbs
// flags; --timeout) bound to `common`. `run` uses it for the flags that apply to every entry.
void declare_transport(ParamSet& set, Common& common, const Traits& traits);

// Collective preflight of one benchmark (every rank calls it, in the same order): rank count,
// the verbs port, then the benchmark's own. Throws a core::Error with one line saying why it cannot
// run and how to fix it (for verbs: no device -> Unsupported, exit 77; wrong device, port or GID ->
// UsageError).
void preflight(const runtime::Comm& comm, const BenchSpec& spec, const std::string& subcommand,
               const Context& ctx);

void run(Context& ctx, const BenchSpec& spec);

}  // namespace fabscope::suites
