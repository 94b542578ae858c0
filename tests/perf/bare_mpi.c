/* The reference for tests/perf/harness_overhead.sh, coll_overhead.sh and lat_clock.sh: the
 * plainest MPI ping-pong and windowed streaming loops (as osu_latency / osu_bw write them) and a
 * barrier + MPI_Allreduce (float, sum) loop whose per-iteration time is the maximum over ranks.
 * lat, bw, allreduce: timed per iteration with MPI_Wtime, printing the median.
 * lat-osu: the ping-pong timed as osu_latency times it, one MPI_Wtime before the first timed
 *   iteration and one after the last, printing latency_ns_mean = (t_end - t_start) / (2 * ITERS);
 *   with BLOCK it also reads MPI_Wtime once every BLOCK iterations (a few reads in all, none per
 *   iteration) and prints latency_ns_block_median: the median over blocks of each block's mean,
 *   which a block that lost its core to another process (a time slice, milliseconds) cannot move.
 *   With a sixth argument `store` rank 0 also writes one double per timed iteration into an
 *   ITERS-long array, as a harness that keeps per-iteration samples does, but reads no clock: a
 *   diagnostic that separates the cost of keeping samples from the cost of taking them.
 * gather: what a pairs round's harness needs of MPI alone (tests/perf/harness_bench.sh): per round a
 *   barrier and a gather of SIZE doubles from every rank to rank 0, timed on rank 0 from before the
 *   barrier to the end of the gather; prints time_ms_per_round_median.
 * usage: bare_mpi lat|lat-osu|bw|allreduce|gather SIZE ITERS WARMUP [BLOCK [store]]   (lat, lat-osu, bw: 2 ranks) */
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
  if (strcmp(argv[1], "gather") == 0) {
    int nranks;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    double* mine = calloc((size_t)size, sizeof(double));
    double* all = rank == 0 ? calloc((size_t)size * (size_t)nranks, sizeof(double)) : NULL;
    double* rt = malloc(sizeof(double) * (size_t)iters);
    for (int i = 0; i < warm + iters; ++i) {
      const double t0 = MPI_Wtime();
      MPI_Barrier(MPI_COMM_WORLD);
      mine[0] = (double)i;
      MPI_Gather(mine, size, MPI_DOUBLE, all, size, MPI_DOUBLE, 0, MPI_COMM_WORLD);
      if (i >= warm) rt[i - warm] = MPI_Wtime() - t0;
    }
    if (rank == 0) {
      qsort(rt, (size_t)iters, sizeof(double), cmp);
      const double med = iters % 2 ? rt[iters / 2] : 0.5 * (rt[iters / 2 - 1] + rt[iters / 2]);
      printf("time_ms_per_round_median %.4f\n", med * 1e3);
    }
    free(mine); free(all); free(rt);
    MPI_Finalize();
    return 0;
  }
  char *sbuf = aligned_alloc(4096, (size_t)size + 4096), *rbuf = aligned_alloc(4096, (size_t)size + 4096), ack[4];
  memset(sbuf, 0xa5, (size_t)size); memset(rbuf, 0x5a, (size_t)size);
  double* t = malloc(sizeof(double) * (size_t)iters);
  MPI_Request req[64];
  if (strcmp(argv[1], "lat-osu") == 0) {
    const int block = argc > 5 ? atoi(argv[5]) : iters, blocks = block > 0 ? iters / block : 0;
    if (blocks < 1 || iters % block != 0) {
      if (rank == 0) fprintf(stderr, "bare_mpi lat-osu: BLOCK %d must divide ITERS %d\n", block, iters);
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    double t_start = 0, t_block = 0;
    double* kept = rank == 0 && argc > 6 && strcmp(argv[6], "store") == 0 ? malloc(sizeof(double) * (size_t)iters) : NULL;
    if (kept) memset(kept, 0, sizeof(double) * (size_t)iters);  /* touched, as fabscope's samples are */
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < warm + iters; ++i) {
      if (i >= warm && (i - warm) % block == 0) {  /* one read per block boundary, none per iteration */
        const double now = MPI_Wtime();
        if (i == warm) t_start = now;
        else t[(i - warm) / block - 1] = now - t_block;
        t_block = now;
      }
      if (rank == 0) { MPI_Send(sbuf, size, MPI_BYTE, 1, 1, MPI_COMM_WORLD); MPI_Recv(rbuf, size, MPI_BYTE, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE); }
      else { MPI_Recv(rbuf, size, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE); MPI_Send(sbuf, size, MPI_BYTE, 0, 1, MPI_COMM_WORLD); }
      if (kept && i >= warm) kept[i - warm] = (double)i;
    }
    const double t_end = MPI_Wtime();
    if (kept) { volatile double sink = kept[iters - 1]; (void)sink; free(kept); }
    t[blocks - 1] = t_end - t_block;
    if (rank == 0) {
      printf("latency_ns_mean %.3f\n", (t_end - t_start) * 1e9 / (2.0 * iters));
      qsort(t, (size_t)blocks, sizeof(double), cmp);
      const double med = blocks % 2 ? t[blocks / 2] : 0.5 * (t[blocks / 2 - 1] + t[blocks / 2]);
      printf("latency_ns_block_median %.3f\n", med * 1e9 / (2.0 * block));
    }
    MPI_Finalize();
    return 0;
  }
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
