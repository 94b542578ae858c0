// The MPI session and communicator, behind an interface that does not expose mpi.h: only this
// module talks to MPI directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace fabscope::runtime {

// When a point-to-point wait gives up (core::now_ns() clock). `at_ns`: an absolute deadline (a
// pair's); `silence_ns`: how long one call may wait, counted from its first unsuccessful polls.
// 0 = no limit. A call that gives up cancels what MPI can cancel and throws core::Timeout; its
// buffers must then stay allocated (an uncancellable send may still read them).
struct Deadline {
  std::int64_t at_ns = 0;
  std::int64_t silence_ns = 0;
  [[nodiscard]] bool any() const noexcept { return at_ns != 0 || silence_ns != 0; }
};

class PendingBarrier;
class Collective;

// Element types and reductions of the typed collectives; comm.cpp maps them to MPI's handles.
enum class DataType : std::uint8_t { kInt32, kInt64, kFloat, kDouble };
enum class Reduction : std::uint8_t { kSum, kProd, kMin, kMax };
[[nodiscard]] constexpr std::size_t size_of(DataType t) noexcept {
  return t == DataType::kInt64 || t == DataType::kDouble ? 8 : 4;
}

// One collective operation with everything resolved once (communicator, MPI datatype and op,
// counts), so a timed loop calls only Collective::run(). Counts are in elements:
//   kAllreduce           `count` elements from `send` reduced into `recv` on every rank
//   kAllgather           `count` elements per rank; `recv` holds size() * count
//   kReduceScatterBlock  `send` holds size() * count; rank i receives block i (count) in `recv`
//   kAlltoall            `count` elements per peer in both buffers (size() * count each)
//   kBcast               `count` elements of `recv`, from `root`
//   kBarrier             no buffers
struct CollectiveSpec {
  enum class Kind : std::uint8_t {
    kAllreduce,
    kAllgather,
    kReduceScatterBlock,
    kAlltoall,
    kBcast,
    kBarrier
  };
  Kind kind = Kind::kBarrier;
  const void* send = nullptr;
  void* recv = nullptr;
  std::size_t count = 0;
  DataType type = DataType::kFloat;
  Reduction op = Reduction::kSum;
  int root = 0;
  bool nonblocking = false;  // run() = MPI_I<op> + MPI_Wait instead of the blocking call
};

// MPI_Init_thread / MPI_Finalize. One per process, created first in main().
class Session {
 public:
  Session(int& argc, char**& argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The MPI library's own version string, first line (e.g. "Open MPI v4.1.4, ...").
  [[nodiscard]] static std::string library_version();
};

// Point-to-point and collective operations the harness needs. Collectives that the harness
// (not a benchmark) runs wait without spinning: they are non-blocking calls polled every
// ~1 ms with a sleep in between, so idle ranks leave the CPU to the ranks that measure.
class Comm {
 public:
  [[nodiscard]] static Comm world();
  ~Comm();
  Comm(Comm&&) noexcept;
  Comm& operator=(Comm&&) noexcept;

  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

  // limit_s > 0: a rank that waits longer than that (a peer stuck, or cut off from the others)
  // gets core::Timeout; a collective cannot be cancelled, so it must then end the job (abort).
  void quiet_barrier(double limit_s = 0) const;
  // Every rank passes the same number of values; rank 0 receives size() * mine.size() in `all`.
  void gather(std::span<const double> mine, std::span<double> all, double limit_s = 0) const;
  // Rank 0 receives every rank's string (rank order); other ranks get an empty vector.
  [[nodiscard]] std::vector<std::string> gather_strings(const std::string& mine, double limit_s = 0) const;
  [[nodiscard]] std::string broadcast_string(const std::string& value, int root) const;
  // Rank i gets values[i] of rank `root`'s vector (size() values there; ignored elsewhere),
  // without holding the CPU. A linear scatter: a rank waits only for the root, not for a tree of
  // sleeping ranks (a broadcast's forwarding added about 1 ms per tree level).
  [[nodiscard]] int scatter_int(const std::vector<int>& values, int root, double limit_s = 0) const;
  // Receives buffers[i] (all its bytes) from rank from[i]: every receive posted at once and
  // waited for together without holding the CPU; the senders use send_quietly with `tag`.
  void recv_each_quietly(const std::vector<int>& from, std::vector<std::vector<char>>& buffers,
                         int tag, double limit_s = 0) const;
  // True on every rank iff `value` is true on every rank.
  [[nodiscard]] bool all_true(bool value) const;
  [[nodiscard]] double max(double value) const;

  // Blocking point-to-point, used inside timed loops (see transport/). With a deadline they poll
  // (MPI_Test) instead of blocking and throw core::Timeout when it passes.
  void send(const void* buf, std::size_t bytes, int peer, int tag, const Deadline& d = {}) const;
  void recv(void* buf, std::size_t bytes, int peer, int tag, const Deadline& d = {}) const;
  // One ping-pong half: sends `sbuf` and receives into `rbuf` (initiator: send then receive;
  // responder: receive then send), both posted at once when a deadline is set.
  void send_recv(const void* sbuf, void* rbuf, std::size_t bytes, int peer, int tag, bool send_first,
                 const Deadline& d = {}) const;
  // Posts `count` non-blocking sends (receives) of `bytes` from (into) `buf` and waits for all of
  // them. Like osu_bw, the messages of one window share one buffer. `count` <= max_window().
  void send_window(const void* buf, std::size_t bytes, int count, int peer, int tag, const Deadline& d = {}) const;
  void recv_window(void* buf, std::size_t bytes, int count, int peer, int tag, const Deadline& d = {}) const;
  // Both at once: `count` receives from and `count` sends to `peer`, then waits for all.
  void exchange_window(const void* sbuf, void* rbuf, std::size_t bytes, int count, int peer,
                       int tag, const Deadline& d = {}) const;
  static constexpr int kMaxWindow = 256;
  // Point-to-point without holding the CPU (test + sleep): for a rank that only waits while its
  // peer's NIC (or a software RDMA stack sharing the cores) does the work.
  void send_quietly(const void* buf, std::size_t bytes, int peer, int tag) const;
  void recv_quietly(void* buf, std::size_t bytes, int peer, int tag) const;
  // This rank's index among the ranks on its node (MPI_COMM_TYPE_SHARED), computed once.
  [[nodiscard]] int local_rank() const;

  // The ranks that pass the same `color` (>= 0), ordered by `key`, as a communicator of their own
  // (MPI_Comm_split); nullopt where color < 0. Collective over this Comm.
  [[nodiscard]] std::optional<Comm> split(int color, int key) const;
  // The ranks of this Comm that share memory with this one (its node), ordered by `key`
  // (MPI_Comm_split_type, MPI_COMM_TYPE_SHARED). Collective over this Comm. A Comm made by split()
  // or split_shared() frees its communicator when destroyed (never throws).
  [[nodiscard]] Comm split_shared(int key) const;

  // Blocking typed collectives over raw buffers (counts in elements, as in CollectiveSpec), for
  // benchmarks and their setup: they hold the CPU like the MPI call does. MPI errors end the job.
  void barrier() const;
  void allreduce(const void* send, void* recv, std::size_t count, DataType type,
                 Reduction op) const;
  // Only `root` receives (its `recv` holds `count` elements; other ranks may pass nullptr).
  void reduce(const void* send, void* recv, std::size_t count, DataType type, Reduction op,
              int root) const;
  void allgather(const void* send, void* recv, std::size_t count, DataType type) const;
  void reduce_scatter_block(const void* send, void* recv, std::size_t count, DataType type,
                            Reduction op) const;
  void alltoall(const void* send, void* recv, std::size_t count, DataType type) const;
  void bcast(void* buf, std::size_t count, DataType type, int root) const;
  // A collective ready to run many times on this Comm (which must outlive it).
  [[nodiscard]] Collective prepare(const CollectiveSpec& spec) const;
  // Sum of `count` doubles over every rank of this Comm into `out` on every rank: a timed
  // operation (MPI_Iallreduce polled without sleeping), throws core::Timeout when `d` gives up.
  void allreduce_sum(const double* in, double* out, int count, const Deadline& d = {}) const;
  // A barrier that completes in the background (MPI_Ibarrier), see PendingBarrier.
  [[nodiscard]] PendingBarrier ibarrier() const;

  // Ends the whole job (every rank) with `code`: used after preflight when one rank fails, so no
  // peer hangs in a collective.
  [[noreturn]] void abort(int code) const;

 private:
  struct Impl;
  void wait_all(int count, const Deadline& d, int peer, const char* what) const;
  explicit Comm(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int size_ = 1;
  friend class Requests;
};

// A prepared collective (Comm::prepare): run() allocates nothing and dispatches with one switch,
// so it can sit inside a timed loop. run() is the blocking call, or for a non-blocking spec
// start() then wait(); start() (MPI_I<op>) and wait() (MPI_Wait) let a caller overlap work.
// Move-only; one operation in flight at a time.
class Collective {
 public:
  ~Collective();
  Collective(Collective&&) noexcept;
  Collective& operator=(Collective&&) noexcept;
  void run();
  void start();
  void wait();

 private:
  friend class Comm;
  struct Impl;
  explicit Collective(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A barrier every rank enters now and that completes once all have (MPI_Ibarrier): a rank that
// must keep working until the others arrive (a load generator waiting for victims to finish
// measuring) polls test() between bursts; a rank with nothing to do waits quietly.
class PendingBarrier {
 public:
  ~PendingBarrier();
  PendingBarrier(PendingBarrier&&) noexcept;
  PendingBarrier& operator=(PendingBarrier&&) noexcept;
  [[nodiscard]] bool test();  // non-blocking; true once every rank has entered
  void wait_quietly();        // test + ~1 ms sleep until complete

 private:
  friend class Comm;
  struct Impl;
  explicit PendingBarrier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A fixed pool of non-blocking point-to-point requests for patterns that keep several peers busy
// at once (transport/multi_mpi.cpp): slots are allocated once, so progress loops allocate nothing.
// A slot holds one request at a time; a completed or empty slot tests as done.
class Requests {
 public:
  Requests(const Comm& comm, std::size_t slots);
  // Cancels and frees what is still pending. A send MPI could not cancel may still read its
  // buffer afterwards, so after a failure the caller keeps its buffers allocated.
  ~Requests();
  Requests(const Requests&) = delete;
  Requests& operator=(const Requests&) = delete;

  void isend(std::size_t slot, const void* buf, std::size_t bytes, int peer, int tag);
  void irecv(std::size_t slot, void* buf, std::size_t bytes, int peer, int tag);
  // True when every request of slots [first, first + count) has completed (MPI_Testall).
  [[nodiscard]] bool test(std::size_t first, std::size_t count);
  // Waits without holding the CPU (test + ~1 ms sleep) for slots [first, first + count); throws
  // core::Timeout naming `what` and `peer` (and cancels the range) when `d` gives up.
  void wait_quietly(std::size_t first, std::size_t count, const Deadline& d, int peer, const char* what);
  // Cancels and frees the pending requests of the range.
  void cancel(std::size_t first, std::size_t count);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fabscope::runtime
