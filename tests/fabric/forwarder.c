// A user-space link between two TAP devices, for the emulated fabric (tests/fabric/rig.sh).
//
// This kernel has no sch_netem, so delay and loss cannot come from tc; a link that needs them is
// two persistent TAP devices with this process in between: every frame read from one side is
// dropped with probability --loss, else written to the other side --delay-us later (one FIFO per
// direction, released by one absolute CLOCK_MONOTONIC timerfd). Rate limits stay with tc tbf on the
// TAP devices (it works here), so this program only delays and drops.
//
//   forwarder --a NETNS:IFNAME --b NETNS:IFNAME [--delay-us D] [--loss P] [--seed S]
//             [--queue FRAMES (default 512)] [--ready FILE]
//
// NETNS is a path (/run/netns/NAME) or empty for the current namespace; each TAP is attached in its
// own namespace (setns before TUNSETIFF), so one process can join a host namespace to a switch
// namespace. --ready FILE is created once both TAPs are attached (the rig waits for it). SIGTERM or
// SIGINT ends the process; it prints its counters to stderr on the way out.
//
// Timer slack (prctl PR_SET_TIMERSLACK) is set to 1 ns: the default 50 us slack is what made an
// earlier forwarder overshoot its delay by about 50 us (shared notes, fabric-emulation.md).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { kSlotBytes = 9216 + 64, kReadBatch = 64 };

struct Frame {
  int64_t release_ns;
  uint32_t len;
  unsigned char data[kSlotBytes];
};

// One direction: frames read from `in`, written to `out` when due.
struct Queue {
  int in, out;
  const char* name;
  struct Frame* ring;
  uint32_t cap, head, count;
  uint64_t frames_in, forwarded, dropped_loss, dropped_full, dropped_write, dropped_big;
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char* what, const char* detail) {
  fprintf(stderr, "forwarder: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "",
          strerror(errno));
  exit(1);
}

static void usage(const char* problem) {
  fprintf(
      stderr,
      "forwarder: %s\nusage: forwarder --a NETNS:IFNAME --b NETNS:IFNAME [--delay-us D] [--loss P] "
      "[--seed S] [--queue FRAMES] [--ready FILE]\n",
      problem);
  exit(2);
}

// xorshift64*: the drop decision needs a cheap, seedable generator, nothing more.
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static double uniform01(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

// Attaches to the persistent TAP device IFNAME of namespace NETNS (the rig created it with
// `ip tuntap add mode tap`): setns(2) into the namespace, then TUNSETIFF (tuntap.rst).
static int open_tap(const char* spec) {
  const char* colon = strrchr(spec, ':');
  if (colon == NULL || colon[1] == '\0') usage("a TAP is NETNS:IFNAME (NETNS may be empty)");
  if (colon != spec) {
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)(colon - spec), spec);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    if (ns < 0) die("open network namespace", path);
    if (setns(ns, CLONE_NEWNET) != 0) die("setns", path);
    close(ns);
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open", "/dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (strlen(colon + 1) >= IFNAMSIZ) usage("interface name too long");
  strncpy(ifr.ifr_name, colon + 1, IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) die("TUNSETIFF (attach to the persistent TAP)", spec);
  return fd;
}

static void write_frame(struct Queue* q, const unsigned char* data, uint32_t len) {
  if (write(q->out, data, len) == (ssize_t)len) {
    ++q->forwarded;
  } else {
    ++q->dropped_write;  // the far side's queue is full or it went away: a lost frame, as on a wire
  }
}

// Reads what is waiting on q->in: drops, forwards at once (no delay) or queues with a release time.
static void drain_in(struct Queue* q, int64_t delay_ns, double loss) {
  static unsigned char scratch[65536];
  for (int k = 0; k < kReadBatch; ++k) {
    unsigned char* buf = scratch;
    struct Frame* slot = NULL;
    if (delay_ns > 0 && q->count < q->cap) {
      slot = &q->ring[(q->head + q->count) % q->cap];
      buf = slot->data;
    }
    ssize_t n = read(q->in, buf, slot ? sizeof slot->data : sizeof scratch);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == EIO) return;  // the TAP has no carrier yet
      die("read", q->name);
    }
    if (n == 0) return;
    ++q->frames_in;
    if (slot == NULL && delay_ns > 0) {  // ring full: tail drop, like a switch buffer
      ++q->dropped_full;
      continue;
    }
    if (loss > 0 && uniform01() < loss) {
      ++q->dropped_loss;
      continue;
    }
    if (delay_ns == 0) {
      write_frame(q, buf, (uint32_t)n);
      continue;
    }
    if ((size_t)n > sizeof slot->data) {
      ++q->dropped_big;
      continue;
    }
    slot->len = (uint32_t)n;
    slot->release_ns = now_ns() + delay_ns;
    ++q->count;
  }
}

// Writes every frame that is due; returns the release time of the next one (0: queue empty).
static int64_t release_due(struct Queue* q, int64_t now) {
  while (q->count > 0) {
    struct Frame* f = &q->ring[q->head];
    if (f->release_ns > now) return f->release_ns;
    write_frame(q, f->data, f->len);
    q->head = (q->head + 1) % q->cap;
    --q->count;
  }
  return 0;
}

static void arm(int tfd, int64_t at_ns) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (at_ns > 0) {
    its.it_value.tv_sec = at_ns / 1000000000;
    its.it_value.tv_nsec = at_ns % 1000000000;
  }
  if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) die("timerfd_settime", NULL);
}

static void print_counters(const struct Queue* q) {
  fprintf(stderr,
          "forwarder: %s: %llu frames in, %llu forwarded, %llu dropped (loss), %llu dropped (queue "
          "full), "
          "%llu dropped (write), %llu dropped (too big)\n",
          q->name, (unsigned long long)q->frames_in, (unsigned long long)q->forwarded,
          (unsigned long long)q->dropped_loss, (unsigned long long)q->dropped_full,
          (unsigned long long)q->dropped_write, (unsigned long long)q->dropped_big);
}

int main(int argc, char** argv) {
  const char *a = NULL, *b = NULL, *ready = NULL;
  double delay_us = 0, loss = 0;
  unsigned long long seed = 1;
  long queue =
      512;  // 512 jumbo frames: ~180 ms of a 200 Mbit/s link, far beyond any delay used here
  for (int i = 1; i < argc; ++i) {
    const char* opt = argv[i];
    if (i + 1 >= argc) usage("every option takes a value");
    const char* val = argv[++i];
    char* end = NULL;
    if (strcmp(opt, "--a") == 0)
      a = val;
    else if (strcmp(opt, "--b") == 0)
      b = val;
    else if (strcmp(opt, "--ready") == 0)
      ready = val;
    else if (strcmp(opt, "--delay-us") == 0) {
      delay_us = strtod(val, &end);
      if (*end != '\0' || !(delay_us >= 0) || delay_us > 10e6)
        usage("--delay-us: a number of microseconds, 0..1e7");
    } else if (strcmp(opt, "--loss") == 0) {
      loss = strtod(val, &end);
      if (*end != '\0' || !(loss >= 0 && loss <= 1)) usage("--loss: a probability in [0, 1]");
    } else if (strcmp(opt, "--seed") == 0) {
      seed = strtoull(val, &end, 10);
      if (*end != '\0') usage("--seed: a whole number");
    } else if (strcmp(opt, "--queue") == 0) {
      queue = strtol(val, &end, 10);
      if (*end != '\0' || queue < 1 || queue > 1 << 20)
        usage("--queue: frames per direction, 1..1048576");
    } else {
      usage("unknown option");
    }
  }
  if (a == NULL || b == NULL) usage("--a and --b are required");
  rng_state ^= seed * 0x9E3779B97F4A7C15ULL;
  if (rng_state == 0) rng_state = 1;
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  int fa = open_tap(a);
  int fb = open_tap(b);
  const int64_t delay_ns = (int64_t)(delay_us * 1000.0);
  struct Queue q[2] = {{.in = fa, .out = fb, .name = "a->b"},
                       {.in = fb, .out = fa, .name = "b->a"}};
  for (int d = 0; d < 2; ++d) {
    q[d].cap = delay_ns > 0 ? (uint32_t)queue : 0;
    if (q[d].cap) {
      // Untouched pages of the ring are never made resident: the ring costs what it holds.
      q[d].ring = calloc(q[d].cap, sizeof(struct Frame));
      if (q[d].ring == NULL) die("calloc", "ring");
    }
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || tfd < 0 || ep < 0) die("signalfd/timerfd/epoll", NULL);
  int fds[4] = {fa, fb, tfd, sfd};
  for (int k = 0; k < 4; ++k) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[k], &ev) != 0) die("epoll_ctl", NULL);
  }
  if (ready != NULL) {
    int rfd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rfd < 0) die("create", ready);
    close(rfd);
  }

  int64_t armed = 0;
  for (;;) {
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait", NULL);
    }
    for (int k = 0; k < n; ++k) {
      uint32_t which = evs[k].data.u32;
      if (which < 2) {
        drain_in(&q[which], delay_ns, loss);
      } else if (which == 2) {
        uint64_t expirations;
        if (read(tfd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
          die("read", "timerfd");
        armed = 0;
      } else {
        print_counters(&q[0]);
        print_counters(&q[1]);
        return 0;
      }
    }
    if (delay_ns > 0) {
      int64_t now = now_ns();
      int64_t next = 0;
      for (int d = 0; d < 2; ++d) {
        int64_t t = release_due(&q[d], now);
        if (t > 0 && (next == 0 || t < next)) next = t;
      }
      if (next != armed) {
        arm(tfd, next);
        armed = next;
      }
    }
  }
}
