// What the launcher tells a process about where it runs: Slurm's node name, job, step and switch
// path, and whether this MPI can start at all under the launcher that started it. Read from the
// environment only; nothing here calls MPI except the library-path probe in launch_problem().
#pragma once

#include <string>

namespace fabscope::runtime {

// The Slurm job this process belongs to; every field is empty when not launched by Slurm.
struct SlurmJob {
  std::string job_id;     // SLURM_JOB_ID
  std::string step_id;    // SLURM_STEP_ID (absent for a batch script's own processes)
  std::string nodelist;   // SLURM_JOB_NODELIST, a hostlist expression: n[001-004]
  std::string partition;  // SLURM_JOB_PARTITION
  [[nodiscard]] bool any() const { return !job_id.empty(); }
};
[[nodiscard]] SlurmJob slurm_job();

// The node name Slurm gives this task (SLURMD_NODENAME), "" when not under Slurm. Several slurmd
// on one machine ("pretend nodes", containers) share gethostname() but not this name.
[[nodiscard]] std::string slurm_node_name();

// SLURM_TOPOLOGY_ADDR ("spine1.leaf2.n3" with TopologyPlugin=topology/tree), "" when unset.
[[nodiscard]] std::string slurm_topology_addr();

// gethostname() of this machine.
[[nodiscard]] std::string system_hostname();

// The name fabscope records and lays out: the Slurm node name when Slurm gives one, else
// gethostname().
[[nodiscard]] std::string node_name();

// Called before MPI_Init. "" when the launch can work; otherwise the one line to show the user
// and the process should exit 2 without calling MPI_Init. Today: a task started by srun without
// PMIx (plain srun with MpiDefault=none, --mpi=none, --mpi=pmi2) under an Open MPI that has no
// PMI-1/PMI-2 support (no mca_pmix_s1/s2 component beside libmpi, as in Debian 12's OpenMPI),
// where MPI_Init would fail with "OMPI was not built with SLURM's PMI support".
[[nodiscard]] std::string launch_problem();

}  // namespace fabscope::runtime
