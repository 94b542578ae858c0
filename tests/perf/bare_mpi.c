/* The reference for tests/perf/harness_overhead.sh and coll_overhead.sh: the plainest MPI
 * ping-pong and windowed streaming loops (as osu_latency / osu_bw write them) and a barrier +
 * MPI_Allreduce (float, sum) loop whose per-iteration time is the maximum over ranks, timed per
 * iteration with MPI_Wtime, printing the median.
 * usage: bare_mpi lat|bw|allreduce SIZE ITERS WARMUP   (lat, bw: 2 ranks) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int ar = strcmp(argv[1], "allreduce") == 0;
  const int bw = strcmp(argv[1], "bw") == 0, size = atoi(argv[2]), iters = atoi(argv[3]), warm = atoi(argv[4]);
  char *sbuf = aligned_alloc(4096, (size_t)size + 4096), *rbuf = aligned_alloc(4096, (size_t)size + 4096), ack[4];
  memset(sbuf, 0xa5, (size_t)size); memset(rbuf, 0x5a, (size_t)size);
  double* t = malloc(sizeof(double) * (size_t)iters);
  MPI_Request req[64];
  for (int i = 0; i < warm + iters; ++i) {
    if (ar) MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    if (ar) MPI_Allreduce(sbuf, rbuf, size / 4, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (!ar && !bw && rank == 0) { MPI_Send(sbuf, size, MPI_BYTE, 1, 1, MPI_COMM_WORLD); MPI_Recv(rbuf, size, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE); }
    if (!ar && !bw && rank == 1) { MPI_Recv(rbuf, size, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE); MPI_Send(sbuf, size, MPI_BYTE, 0, 1, MPI_COMM_WORLD); }
    if (bw && rank == 0) {
      for (int w = 0; w < 64; ++w) MPI_Isend(sbuf, size, MPI_BYTE, 1, 1, MPI_COMM_WORLD, &req[w]);
      MPI_Waitall(64, req, MPI_STATUSES_IGNORE);
      MPI_Recv(ack, 4, MPI_BYTE, 1, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    if (bw && rank == 1) {
      for (int w = 0; w < 64; ++w) MPI_Irecv(rbuf, size, MPI_BYTE, 0, 1, MPI_COMM_WORLD, &req[w]);
      MPI_Waitall(64, req, MPI_STATUSES_IGNORE);
      MPI_Send(ack, 4, MPI_BYTE, 0, 2, MPI_COMM_WORLD);
    }
    if (i >= warm) t[i - warm] = MPI_Wtime() - t0;
  }
  if (ar) MPI_Reduce(rank == 0 ? MPI_IN_PLACE : t, t, iters, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    qsort(t, (size_t)iters, sizeof(double), cmp);
    const double p50 = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    if (bw) printf("bw_gbps_p50 %.6f\n", 64.0 * size * 8 / (p50 * 1e9));
    else if (ar) printf("time_ns_p50 %.3f\n", p50 * 1e9);
    else printf("latency_ns_p50 %.3f\n", p50 * 1e9 / 2);
  }
  MPI_Finalize();
  return 0;
}
