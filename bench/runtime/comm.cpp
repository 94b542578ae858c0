#include "runtime/comm.hpp"

#include <mpi.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace fabscope::runtime {
namespace {

constexpr auto kQuietPoll = std::chrono::milliseconds(1);
constexpr std::size_t kLocalSendBytes = 1024;

void check(int rc, const char* call) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    core::log::error("{} failed: {}", call, std::string(text, static_cast<std::size_t>(len)));
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();
  }
}

int as_count(std::size_t bytes) {
  if (bytes > static_cast<std::size_t>(INT_MAX)) {
    throw core::UsageError("message size above 2 GiB is not supported by the mpi transport");
  }
  return static_cast<int>(bytes);
}

MPI_Datatype mpi_type(DataType t) {
  switch (t) {
    case DataType::kInt32:
      return MPI_INT32_T;
    case DataType::kInt64:
      return MPI_INT64_T;
    case DataType::kDouble:
      return MPI_DOUBLE;
    case DataType::kFloat:
      break;
  }
  return MPI_FLOAT;
}

MPI_Op mpi_op(Reduction op) {
  switch (op) {
    case Reduction::kProd:
      return MPI_PROD;
    case Reduction::kMin:
      return MPI_MIN;
    case Reduction::kMax:
      return MPI_MAX;
    case Reduction::kSum:
      break;
  }
  return MPI_SUM;
}

int as_elements(std::size_t count) {
  if (count > static_cast<std::size_t>(INT_MAX)) {
    throw core::UsageError(
        fmt::format("a collective of {} elements is above MPI's int count", count));
  }
  return static_cast<int>(count);
}

// Completes a non-blocking operation without holding the CPU: test, then sleep. With a limit
// (seconds, > 0) it throws core::Timeout once that long has passed; a collective cannot be
// cancelled, so the caller must then end the job.
void wait_quietly(MPI_Request& req, double limit_s = 0, const char* what = "") {
  const std::int64_t until = limit_s > 0 ? core::now_ns() + static_cast<std::int64_t>(limit_s * 1e9) : 0;
  int done = 0;
  for (;;) {
    check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;
    if (until != 0 && core::now_ns() > until) {
      throw core::Timeout(fmt::format("not every rank reached the {} within {:g} s", what, limit_s));
    }
    std::this_thread::sleep_for(kQuietPoll);
  }
}

// Completes `count` requests by polling until `d` gives up. The clock is read only every
// kPollsPerClockRead unsuccessful polls, so a wait that finishes quickly costs no clock reads; the
// silence limit is armed at the first read. On expiry every pending request is cancelled (a
// receive always can be; a send may not, which is why the caller keeps its buffers) and freed.
void wait_with_deadline(MPI_Request* reqs, int count, const Deadline& d, int peer, const char* what) {
  if (!d.any()) {
    check(MPI_Waitall(count, reqs, MPI_STATUSES_IGNORE), "MPI_Waitall");
    return;
  }
  constexpr int kPollsPerClockRead = 256;
  std::int64_t silent_until = 0;
  int flag = 0;
  for (int polls = 1;; ++polls) {
    if (count == 1) {
      check(MPI_Test(reqs, &flag, MPI_STATUS_IGNORE), "MPI_Test");
    } else {
      check(MPI_Testall(count, reqs, &flag, MPI_STATUSES_IGNORE), "MPI_Testall");
    }
    if (flag) return;
    if (polls % kPollsPerClockRead != 0) continue;
    const std::int64_t now = core::now_ns();
    if (d.silence_ns != 0 && silent_until == 0) silent_until = now + d.silence_ns;
    const bool pair_over = d.at_ns != 0 && now > d.at_ns;
    const bool silent_over = silent_until != 0 && now > silent_until;
    if (!pair_over && !silent_over) continue;
    for (int i = 0; i < count; ++i) {
      if (reqs[i] == MPI_REQUEST_NULL) continue;
      int finished = 0;
      MPI_Request_get_status(reqs[i], &finished, MPI_STATUS_IGNORE);
      if (!finished) MPI_Cancel(&reqs[i]);
      MPI_Request_free(&reqs[i]);
    }
    throw core::Timeout(fmt::format("mpi {} with rank {}: {}", what, peer,
                                    pair_over ? "the pair's deadline (--pair-timeout) passed"
                                              : fmt::format("peer silent for {:.1f} s (--timeout)", static_cast<double>(d.silence_ns) / 1e9)));
  }
}

}  // namespace

struct Comm::Impl {
  MPI_Comm comm = MPI_COMM_WORLD;
  // Request storage for windows, allocated once so the timed loops allocate nothing.
  mutable std::array<MPI_Request, 2 * kMaxWindow> reqs{};
  int local_rank = 0;
  bool owned = false;  // made by split(): freed with the Comm
  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    // Never throws: the communicator has MPI_ERRORS_RETURN, so a failed free comes back as a code.
    if (owned && !finalized && MPI_Comm_free(&comm) != MPI_SUCCESS) {
      core::log::warn("MPI_Comm_free failed on a split communicator");
    }
  }
};

Session::Session(int& argc, char**& argv) {
  int provided = 0;
  check(MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided), "MPI_Init_thread");
  // Errors come back as codes, so check() can name the call before aborting.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  // Every rank chooses and calibrates its clock now (~40 ms, asleep), all at once, rather than at
  // its first now_ns(), which may fall inside a peer's wait or a warm-up.
  core::clock_init();
}

Session::~Session() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

std::string Session::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string v(text, static_cast<std::size_t>(len));
  if (const auto nl = v.find('\n'); nl != std::string::npos) v.resize(nl);
  while (!v.empty() && (v.back() == '\0' || v.back() == ' ')) v.pop_back();
  return v;
}

Comm::Comm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
  MPI_Comm_rank(impl_->comm, &rank_);
  MPI_Comm_size(impl_->comm, &size_);
  // Collective: every rank constructs its Comm at the same point.
  MPI_Comm node;
  check(MPI_Comm_split_type(impl_->comm, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  MPI_Comm_rank(node, &impl_->local_rank);
  MPI_Comm_free(&node);
}
Comm::~Comm() = default;
Comm::Comm(Comm&&) noexcept = default;
Comm& Comm::operator=(Comm&&) noexcept = default;

Comm Comm::world() { return Comm(std::make_unique<Impl>()); }

void Comm::quiet_barrier(double limit_s) const {
  MPI_Request req{};
  check(MPI_Ibarrier(impl_->comm, &req), "MPI_Ibarrier");
  wait_quietly(req, limit_s, "barrier");
}

void Comm::gather(std::span<const double> mine, std::span<double> all, double limit_s) const {
  MPI_Request req{};
  check(MPI_Igather(mine.data(), static_cast<int>(mine.size()), MPI_DOUBLE,
                    rank_ == 0 ? all.data() : nullptr, static_cast<int>(mine.size()), MPI_DOUBLE,
                    0, impl_->comm, &req),
        "MPI_Igather");
  wait_quietly(req, limit_s, "gather");
}

std::vector<std::string> Comm::gather_strings(const std::string& mine, double limit_s) const {
  int len = as_count(mine.size());
  std::vector<int> lens(rank_ == 0 ? static_cast<std::size_t>(size_) : 0);
  MPI_Request req{};
  check(MPI_Igather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, impl_->comm, &req),
        "MPI_Igather");
  wait_quietly(req, limit_s, "gather");
  std::vector<int> displs(lens.size());
  std::string all;
  if (rank_ == 0) {
    int total = 0;
    for (std::size_t i = 0; i < lens.size(); ++i) {
      displs[i] = total;
      total += lens[i];
    }
    all.resize(static_cast<std::size_t>(total));
  }
  check(MPI_Igatherv(mine.data(), len, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR,
                     0, impl_->comm, &req),
        "MPI_Igatherv");
  wait_quietly(req, limit_s, "gather");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < lens.size(); ++i) {
    out.push_back(all.substr(static_cast<std::size_t>(displs[i]), static_cast<std::size_t>(lens[i])));
  }
  return out;
}

std::string Comm::broadcast_string(const std::string& value, int root) const {
  int len = rank_ == root ? as_count(value.size()) : 0;
  MPI_Request req{};
  check(MPI_Ibcast(&len, 1, MPI_INT, root, impl_->comm, &req), "MPI_Ibcast");
  wait_quietly(req);
  std::string out = rank_ == root ? value : std::string(static_cast<std::size_t>(len), '\0');
  check(MPI_Ibcast(out.data(), len, MPI_CHAR, root, impl_->comm, &req), "MPI_Ibcast");
  wait_quietly(req);
  return out;
}

int Comm::scatter_int(const std::vector<int>& values, int root, double limit_s) const {
  int mine = 0;
  MPI_Request req{};
  check(MPI_Iscatter(rank_ == root ? values.data() : nullptr, 1, MPI_INT, &mine, 1, MPI_INT, root,
                     impl_->comm, &req),
        "MPI_Iscatter");
  wait_quietly(req, limit_s, "scatter");
  return mine;
}

void Comm::recv_each_quietly(const std::vector<int>& from, std::vector<std::vector<char>>& buffers,
                             int tag, double limit_s) const {
  std::vector<MPI_Request> reqs(from.size(), MPI_REQUEST_NULL);
  for (std::size_t i = 0; i < from.size(); ++i) {
    check(MPI_Irecv(buffers[i].data(), as_count(buffers[i].size()), MPI_BYTE, from[i], tag,
                    impl_->comm, &reqs[i]),
          "MPI_Irecv");
  }
  const std::int64_t until =
      limit_s > 0 ? core::now_ns() + static_cast<std::int64_t>(limit_s * 1e9) : 0;
  for (;;) {
    int done = 0;
    check(MPI_Testall(static_cast<int>(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE),
          "MPI_Testall");
    if (done) return;
    if (until != 0 && core::now_ns() > until) {
      throw core::Timeout(
          fmt::format("not every rank sent its samples to rank 0 within {:g} s", limit_s));
    }
    std::this_thread::sleep_for(kQuietPoll);
  }
}

bool Comm::all_true(bool value) const {
  int in = value ? 1 : 0;
  int out = 0;
  MPI_Request req{};
  check(MPI_Iallreduce(&in, &out, 1, MPI_INT, MPI_MIN, impl_->comm, &req), "MPI_Iallreduce");
  wait_quietly(req);
  return out == 1;
}

double Comm::max(double value) const {
  double out = 0;
  MPI_Request req{};
  check(MPI_Iallreduce(&value, &out, 1, MPI_DOUBLE, MPI_MAX, impl_->comm, &req), "MPI_Iallreduce");
  wait_quietly(req);
  return out;
}

void Comm::wait_all(int count, const Deadline& d, int peer, const char* what) const {
  wait_with_deadline(impl_->reqs.data(), count, d, peer, what);  // no deadline: MPI_Waitall
}

void Comm::send(const void* buf, std::size_t bytes, int peer, int tag, const Deadline& d) const {
  if (!d.any()) {
    check(MPI_Send(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm), "MPI_Send");
    return;
  }
  check(MPI_Isend(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[0]), "MPI_Isend");
  wait_all(1, d, peer, "send");
}

void Comm::recv(void* buf, std::size_t bytes, int peer, int tag, const Deadline& d) const {
  if (!d.any()) {
    check(MPI_Recv(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm, MPI_STATUS_IGNORE), "MPI_Recv");
    return;
  }
  check(MPI_Irecv(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[0]), "MPI_Irecv");
  wait_all(1, d, peer, "receive");
}

void Comm::send_recv(const void* sbuf, void* rbuf, std::size_t bytes, int peer, int tag, bool send_first,
                     const Deadline& d) const {
  if (!d.any()) {
    if (send_first) send(sbuf, bytes, peer, tag);
    recv(rbuf, bytes, peer, tag);
    if (!send_first) send(sbuf, bytes, peer, tag);
    return;
  }
  // The receive is posted first, so the answer lands in a posted receive. A message up to
  // kLocalSendBytes goes by a blocking MPI_Send: MPI completes it locally (eager protocol, every
  // transport's eager limit is larger), which costs less than a second request to test; larger
  // ones are non-blocking so a vanished peer cannot hold the sender.
  const int n = as_count(bytes);
  check(MPI_Irecv(rbuf, n, MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[0]), "MPI_Irecv");
  const bool local = bytes <= kLocalSendBytes;
  if (send_first) {
    if (local) {
      check(MPI_Send(sbuf, n, MPI_BYTE, peer, tag, impl_->comm), "MPI_Send");
      wait_all(1, d, peer, "ping-pong");
    } else {
      check(MPI_Isend(sbuf, n, MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[1]), "MPI_Isend");
      wait_all(2, d, peer, "ping-pong");
    }
    return;
  }
  wait_all(1, d, peer, "ping-pong receive");
  if (local) {
    check(MPI_Send(sbuf, n, MPI_BYTE, peer, tag, impl_->comm), "MPI_Send");
    return;
  }
  check(MPI_Isend(sbuf, n, MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[0]), "MPI_Isend");
  wait_all(1, d, peer, "ping-pong send");
}

void Comm::send_window(const void* buf, std::size_t bytes, int count, int peer, int tag, const Deadline& d) const {
  const int n = as_count(bytes);
  for (int i = 0; i < count; ++i) {
    check(MPI_Isend(buf, n, MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[static_cast<std::size_t>(i)]),
          "MPI_Isend");
  }
  wait_all(count, d, peer, "window send");
}

void Comm::recv_window(void* buf, std::size_t bytes, int count, int peer, int tag, const Deadline& d) const {
  const int n = as_count(bytes);
  for (int i = 0; i < count; ++i) {
    check(MPI_Irecv(buf, n, MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[static_cast<std::size_t>(i)]),
          "MPI_Irecv");
  }
  wait_all(count, d, peer, "window receive");
}

void Comm::exchange_window(const void* sbuf, void* rbuf, std::size_t bytes, int count, int peer,
                           int tag, const Deadline& d) const {
  const int n = as_count(bytes);
  for (int i = 0; i < count; ++i) {
    check(MPI_Irecv(rbuf, n, MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs[static_cast<std::size_t>(i)]),
          "MPI_Irecv");
  }
  for (int i = 0; i < count; ++i) {
    check(MPI_Isend(sbuf, n, MPI_BYTE, peer, tag, impl_->comm,
                    &impl_->reqs[static_cast<std::size_t>(count + i)]),
          "MPI_Isend");
  }
  wait_all(2 * count, d, peer, "window exchange");
}

void Comm::send_quietly(const void* buf, std::size_t bytes, int peer, int tag) const {
  MPI_Request req{};
  check(MPI_Isend(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm, &req), "MPI_Isend");
  wait_quietly(req);
}

void Comm::recv_quietly(void* buf, std::size_t bytes, int peer, int tag) const {
  MPI_Request req{};
  check(MPI_Irecv(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm, &req), "MPI_Irecv");
  wait_quietly(req);
}

int Comm::local_rank() const { return impl_->local_rank; }

std::optional<Comm> Comm::split(int color, int key) const {
  MPI_Comm sub = MPI_COMM_NULL;
  check(MPI_Comm_split(impl_->comm, color < 0 ? MPI_UNDEFINED : color, key, &sub), "MPI_Comm_split");
  if (sub == MPI_COMM_NULL) return std::nullopt;
  auto impl = std::make_unique<Impl>();
  impl->comm = sub;
  impl->owned = true;
  MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
  return Comm(std::move(impl));
}

Comm Comm::split_shared(int key) const {
  MPI_Comm sub = MPI_COMM_NULL;
  check(MPI_Comm_split_type(impl_->comm, MPI_COMM_TYPE_SHARED, key, MPI_INFO_NULL, &sub),
        "MPI_Comm_split_type");
  auto impl = std::make_unique<Impl>();
  impl->comm = sub;
  impl->owned = true;
  MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
  return Comm(std::move(impl));
}

void Comm::barrier() const { check(MPI_Barrier(impl_->comm), "MPI_Barrier"); }

void Comm::allreduce(const void* send, void* recv, std::size_t count, DataType type,
                     Reduction op) const {
  check(MPI_Allreduce(send, recv, as_elements(count), mpi_type(type), mpi_op(op), impl_->comm),
        "MPI_Allreduce");
}

void Comm::reduce(const void* send, void* recv, std::size_t count, DataType type, Reduction op,
                  int root) const {
  check(MPI_Reduce(send, recv, as_elements(count), mpi_type(type), mpi_op(op), root, impl_->comm),
        "MPI_Reduce");
}

void Comm::allgather(const void* send, void* recv, std::size_t count, DataType type) const {
  const int n = as_elements(count);
  check(MPI_Allgather(send, n, mpi_type(type), recv, n, mpi_type(type), impl_->comm),
        "MPI_Allgather");
}

void Comm::reduce_scatter_block(const void* send, void* recv, std::size_t count, DataType type,
                                Reduction op) const {
  check(MPI_Reduce_scatter_block(send, recv, as_elements(count), mpi_type(type), mpi_op(op),
                                 impl_->comm),
        "MPI_Reduce_scatter_block");
}

void Comm::alltoall(const void* send, void* recv, std::size_t count, DataType type) const {
  const int n = as_elements(count);
  check(MPI_Alltoall(send, n, mpi_type(type), recv, n, mpi_type(type), impl_->comm),
        "MPI_Alltoall");
}

void Comm::bcast(void* buf, std::size_t count, DataType type, int root) const {
  check(MPI_Bcast(buf, as_elements(count), mpi_type(type), root, impl_->comm), "MPI_Bcast");
}

struct Collective::Impl {
  CollectiveSpec::Kind kind{};
  bool nonblocking = false;
  const void* send = nullptr;
  void* recv = nullptr;
  int count = 0;
  int root = 0;
  MPI_Datatype type = MPI_DATATYPE_NULL;
  MPI_Op op = MPI_OP_NULL;
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Request req = MPI_REQUEST_NULL;
};

Collective Comm::prepare(const CollectiveSpec& spec) const {
  auto impl = std::make_unique<Collective::Impl>();
  impl->kind = spec.kind;
  impl->nonblocking = spec.nonblocking;
  impl->send = spec.send;
  impl->recv = spec.recv;
  impl->count = as_elements(spec.count);
  impl->root = spec.root;
  impl->type = mpi_type(spec.type);
  impl->op = mpi_op(spec.op);
  impl->comm = impl_->comm;
  return Collective(std::move(impl));
}

Collective::Collective(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Collective::Collective(Collective&&) noexcept = default;
Collective& Collective::operator=(Collective&&) noexcept = default;
Collective::~Collective() {
  // A pending collective may not be freed (MPI 4.0, 3.7.3): left to MPI; only reached when an
  // error is already ending the job.
  if (impl_ && impl_->req != MPI_REQUEST_NULL)
    core::log::warn("a collective was abandoned before it completed");
}

void Collective::run() {
  if (impl_->nonblocking) {
    start();
    wait();
    return;
  }
  Impl& c = *impl_;
  using Kind = CollectiveSpec::Kind;
  switch (c.kind) {
    case Kind::kAllreduce:
      check(MPI_Allreduce(c.send, c.recv, c.count, c.type, c.op, c.comm), "MPI_Allreduce");
      return;
    case Kind::kAllgather:
      check(MPI_Allgather(c.send, c.count, c.type, c.recv, c.count, c.type, c.comm),
            "MPI_Allgather");
      return;
    case Kind::kReduceScatterBlock:
      check(MPI_Reduce_scatter_block(c.send, c.recv, c.count, c.type, c.op, c.comm),
            "MPI_Reduce_scatter_block");
      return;
    case Kind::kAlltoall:
      check(MPI_Alltoall(c.send, c.count, c.type, c.recv, c.count, c.type, c.comm), "MPI_Alltoall");
      return;
    case Kind::kBcast:
      check(MPI_Bcast(c.recv, c.count, c.type, c.root, c.comm), "MPI_Bcast");
      return;
    case Kind::kBarrier:
      check(MPI_Barrier(c.comm), "MPI_Barrier");
      return;
  }
}

void Collective::start() {
  Impl& c = *impl_;
  using Kind = CollectiveSpec::Kind;
  switch (c.kind) {
    case Kind::kAllreduce:
      check(MPI_Iallreduce(c.send, c.recv, c.count, c.type, c.op, c.comm, &c.req),
            "MPI_Iallreduce");
      return;
    case Kind::kAllgather:
      check(MPI_Iallgather(c.send, c.count, c.type, c.recv, c.count, c.type, c.comm, &c.req),
            "MPI_Iallgather");
      return;
    case Kind::kReduceScatterBlock:
      check(MPI_Ireduce_scatter_block(c.send, c.recv, c.count, c.type, c.op, c.comm, &c.req),
            "MPI_Ireduce_scatter_block");
      return;
    case Kind::kAlltoall:
      check(MPI_Ialltoall(c.send, c.count, c.type, c.recv, c.count, c.type, c.comm, &c.req),
            "MPI_Ialltoall");
      return;
    case Kind::kBcast:
      check(MPI_Ibcast(c.recv, c.count, c.type, c.root, c.comm, &c.req), "MPI_Ibcast");
      return;
    case Kind::kBarrier:
      check(MPI_Ibarrier(c.comm, &c.req), "MPI_Ibarrier");
      return;
  }
}

void Collective::wait() { check(MPI_Wait(&impl_->req, MPI_STATUS_IGNORE), "MPI_Wait"); }

void Comm::allreduce_sum(const double* in, double* out, int count, const Deadline& d) const {
  check(MPI_Iallreduce(in, out, count, MPI_DOUBLE, MPI_SUM, impl_->comm, &impl_->reqs[0]), "MPI_Iallreduce");
  if (d.any()) {
    // A collective cannot be cancelled: on expiry the request is left to MPI and the caller's
    // error ends the job (every member is then stuck or gone anyway).
    constexpr int kPollsPerClockRead = 256;
    std::int64_t silent_until = 0;
    int flag = 0;
    for (int polls = 1;; ++polls) {
      check(MPI_Test(&impl_->reqs[0], &flag, MPI_STATUS_IGNORE), "MPI_Test");
      if (flag) return;
      if (polls % kPollsPerClockRead != 0) continue;
      const std::int64_t now = core::now_ns();
      if (d.silence_ns != 0 && silent_until == 0) silent_until = now + d.silence_ns;
      if ((d.at_ns != 0 && now > d.at_ns) || (silent_until != 0 && now > silent_until)) {
        throw core::Timeout(fmt::format("mpi allreduce over {} ranks: not complete after {:.1f} s (--timeout)", size_,
                                        static_cast<double>(d.silence_ns) / 1e9));
      }
    }
  }
  check(MPI_Wait(&impl_->reqs[0], MPI_STATUS_IGNORE), "MPI_Wait");
}

struct PendingBarrier::Impl {
  MPI_Request req = MPI_REQUEST_NULL;
};

PendingBarrier Comm::ibarrier() const {
  auto impl = std::make_unique<PendingBarrier::Impl>();
  check(MPI_Ibarrier(impl_->comm, &impl->req), "MPI_Ibarrier");
  return PendingBarrier(std::move(impl));
}

PendingBarrier::PendingBarrier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PendingBarrier::PendingBarrier(PendingBarrier&&) noexcept = default;
PendingBarrier& PendingBarrier::operator=(PendingBarrier&&) noexcept = default;
PendingBarrier::~PendingBarrier() {
  // A pending collective may not be freed (MPI 4.0, 3.7.3): left to MPI; only reached when an
  // error is already ending the job.
  if (impl_ && impl_->req != MPI_REQUEST_NULL) core::log::warn("a background barrier was abandoned before it completed");
}

bool PendingBarrier::test() {
  int done = 0;
  check(MPI_Test(&impl_->req, &done, MPI_STATUS_IGNORE), "MPI_Test");
  return done != 0;
}

void PendingBarrier::wait_quietly() { runtime::wait_quietly(impl_->req); }

struct Requests::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  std::vector<MPI_Request> reqs;
};

Requests::Requests(const Comm& comm, std::size_t slots) : impl_(std::make_unique<Impl>()) {
  impl_->comm = comm.impl_->comm;
  impl_->reqs.assign(slots, MPI_REQUEST_NULL);
}

Requests::~Requests() { cancel(0, impl_->reqs.size()); }

void Requests::isend(std::size_t slot, const void* buf, std::size_t bytes, int peer, int tag) {
  check(MPI_Isend(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs.at(slot)), "MPI_Isend");
}

void Requests::irecv(std::size_t slot, void* buf, std::size_t bytes, int peer, int tag) {
  check(MPI_Irecv(buf, as_count(bytes), MPI_BYTE, peer, tag, impl_->comm, &impl_->reqs.at(slot)), "MPI_Irecv");
}

bool Requests::test(std::size_t first, std::size_t count) {
  int flag = 0;
  check(MPI_Testall(static_cast<int>(count), impl_->reqs.data() + first, &flag, MPI_STATUSES_IGNORE), "MPI_Testall");
  return flag != 0;
}

void Requests::wait_quietly(std::size_t first, std::size_t count, const Deadline& d, int peer, const char* what) {
  std::int64_t silent_until = 0;
  for (;;) {
    if (test(first, count)) return;
    const std::int64_t now = core::now_ns();
    if (d.silence_ns != 0 && silent_until == 0) silent_until = now + d.silence_ns;
    const bool over = (d.at_ns != 0 && now > d.at_ns) || (silent_until != 0 && now > silent_until);
    if (over) {
      cancel(first, count);
      throw core::Timeout(fmt::format("mpi {} with rank {}: peer silent for {:.1f} s (--timeout)", what, peer,
                                      static_cast<double>(d.silence_ns) / 1e9));
    }
    std::this_thread::sleep_for(kQuietPoll);
  }
}

void Requests::cancel(std::size_t first, std::size_t count) {
  for (std::size_t i = first; i < first + count && i < impl_->reqs.size(); ++i) {
    MPI_Request& r = impl_->reqs[i];
    if (r == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&r);
    MPI_Request_free(&r);
  }
}

void Comm::abort(int code) const {
  MPI_Abort(impl_->comm, code);
  std::_Exit(code);
}

}  // namespace fabscope::runtime
