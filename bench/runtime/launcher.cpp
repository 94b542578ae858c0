#include "runtime/launcher.hpp"

#include <dlfcn.h>
#include <fmt/format.h>
#include <mpi.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace fabscope::runtime {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

bool has_env(const char* name) { return std::getenv(name) != nullptr; }

#if defined(OPEN_MPI) && OPEN_MPI
// Open MPI speaks PMI-1/PMI-2 only through its mca_pmix_s1 / mca_pmix_s2 components, built with
// --with-pmi. They live in its component folder near libmpi: $libdir/openmpi (Open MPI's default)
// or, on Debian, $libdir/openmpi/lib/openmpi3. When no component folder is found, say yes: MPI_Init
// then decides.
bool open_mpi_has_slurm_pmi() {
  // dlsym finds the definition in libmpi (&MPI_Init could be a PLT stub in the executable).
  void* sym = dlsym(RTLD_DEFAULT, "MPI_Init");
  Dl_info info{};
  if (sym == nullptr || dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return true;
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dir = fs::weakly_canonical(fs::path(info.dli_fname), ec).parent_path();
  bool found_components = false;
  const auto look = [&](const fs::path& d) {
    if (!fs::exists(d / "mca_pml_ob1.so", ec)) return false;  // every Open MPI 4 has ob1
    found_components = true;
    return fs::exists(d / "mca_pmix_s1.so", ec) || fs::exists(d / "mca_pmix_s2.so", ec);
  };
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.path().filename().string().starts_with("openmpi")) continue;
    if (look(e.path())) return true;
    for (const auto& sub : fs::directory_iterator(e.path() / "lib", ec)) {
      if (sub.path().filename().string().starts_with("openmpi") && look(sub.path())) return true;
    }
  }
  return !found_components;
}
#endif

}  // namespace

SlurmJob slurm_job() {
  return {env("SLURM_JOB_ID"), env("SLURM_STEP_ID"), env("SLURM_JOB_NODELIST"),
          env("SLURM_JOB_PARTITION")};
}

std::string slurm_node_name() { return env("SLURMD_NODENAME"); }

std::string slurm_topology_addr() { return env("SLURM_TOPOLOGY_ADDR"); }

std::string system_hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string node_name() {
  std::string n = slurm_node_name();
  return n.empty() ? system_hostname() : n;
}

std::string launch_problem() {
  // A task of an srun step: SLURM_STEP_ID and SLURM_PROCID are set by slurmstepd. mpirun (also
  // when it runs inside an allocation and starts its daemons through srun) gives its ranks
  // OMPI_COMM_WORLD_RANK and PMIX_RANK; srun --mpi=pmix gives PMIX_RANK and PMIX_NAMESPACE.
  if (!has_env("SLURM_STEP_ID") || !has_env("SLURM_PROCID")) return "";
  if (has_env("PMIX_RANK") || has_env("PMIX_NAMESPACE") || has_env("OMPI_COMM_WORLD_RANK"))
    return "";
#if defined(OPEN_MPI) && OPEN_MPI
  const bool pmi2 = has_env("PMI_FD") || has_env("PMI_RANK");
  if (pmi2 && open_mpi_has_slurm_pmi()) return "";
  return fmt::format(
      "launched by srun without PMIx ({}), and this Open MPI has no PMI-1/PMI-2 support: "
      "launch with 'srun --mpi=pmix fabscope ...' (or MpiDefault=pmix in slurm.conf), or run "
      "'mpirun fabscope ...' inside the allocation",
      pmi2 ? "--mpi=pmi2" : "--mpi=none or MpiDefault=none");
#else
  return "";  // other MPIs (MPICH, Intel MPI) speak PMI-2 to srun
#endif
}

}  // namespace fabscope::runtime
