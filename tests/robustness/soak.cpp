// soak.cpp: long stress of the whole allocator through the prefixed API, for a given time.
// Worker threads allocate with every allocation call (random sizes from 0 B to 4 MiB, random
// alignments), check and refill their blocks, realloc them, and hand blocks to one another
// through a mailbox (cross-thread frees); workers retire (handing their blocks on, so those are
// freed after their thread exited) and are replaced (thread churn); some call malloc_trim and
// mallard_check_heap while the others run. The main thread forks now and then: the child
// allocates, frees, checks the heap and exits; a child that hangs is a deadlock. At the end
// every block is freed, the heap checker must pass, and the live-byte statistics must be back
// to their starting figures exactly.
// Usage: soak [SECONDS [THREADS [SEED]]] (default 5 s, 4 threads). Runs for hours as well.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdint>

#include "rb_common.h"

namespace {

using rb::Rng;

constexpr int kMaxWorkers = 16;
constexpr int kSlots = 384;
constexpr std::size_t kMaxLiveBytes = std::size_t{48} << 20;  // per worker
constexpr int kMailbox = 1024;
constexpr std::size_t kStack = 256 * 1024;

#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#elif defined(__has_feature)
constexpr bool kTsan = __has_feature(thread_sanitizer);
#else
constexpr bool kTsan = false;
#endif

struct Block {
  void* p;
  std::size_t n;
  std::uint64_t tag;
};

// ---- the mailbox: blocks in transit between threads (fixed storage, a plain mutex) ----
pthread_mutex_t g_mail_lock = PTHREAD_MUTEX_INITIALIZER;
Block g_mail[kMailbox];
int g_mail_count = 0;

bool mail_put(const Block& b) {
  pthread_mutex_lock(&g_mail_lock);
  bool ok = g_mail_count < kMailbox;
  if (ok) g_mail[g_mail_count++] = b;
  pthread_mutex_unlock(&g_mail_lock);
  return ok;
}

bool mail_take(Rng& r, Block* out) {
  pthread_mutex_lock(&g_mail_lock);
  bool ok = g_mail_count > 0;
  if (ok) {
    int i = static_cast<int>(r.below(static_cast<std::size_t>(g_mail_count)));
    *out = g_mail[i];
    g_mail[i] = g_mail[--g_mail_count];
  }
  pthread_mutex_unlock(&g_mail_lock);
  return ok;
}

// The mailbox lock is held across fork() (pthread_atfork), so the child finds it free and the
// mailbox consistent.
void mail_lock_before_fork() {
  pthread_mutex_lock(&g_mail_lock);
}
void mail_unlock_after_fork() {
  pthread_mutex_unlock(&g_mail_lock);
}

void release(const Block& b, const char* what) {
  rb::check_pattern(b.p, b.n, b.tag, what);
  mallard_free(b.p);
}

// ---- workers ----
struct Worker {
  pthread_t thread;
  std::atomic<bool> running{false};
  std::atomic<bool> retire{false};
  std::uint64_t seed = 0;
  Block slots[kSlots];
  std::size_t live_bytes = 0;
};

Worker g_workers[kMaxWorkers];
std::atomic<bool> g_stop{false};
std::atomic<std::uint64_t> g_ops{0};
std::atomic<std::uint64_t> g_next_tag{1};

std::size_t random_size(Rng& r) {
  unsigned k = static_cast<unsigned>(r.below(1000));
  if (k < 10) return 0;
  if (k < 700) return 1 + r.below(512);
  if (k < 900) return 512 + r.below(16 * 1024);
  if (k < 985) return 16 * 1024 + r.below(240 * 1024);  // biggest small classes, large spans
  return (256 << 10) + r.below(4 << 20);                // huge blocks
}

std::size_t random_alignment(Rng& r) {
  static const std::size_t kAligns[] = {8, 16, 32, 64, 128, 4096, 16384, 65536, 1 << 20};
  return kAligns[r.below(sizeof kAligns / sizeof kAligns[0])];
}

bool allocate(Rng& r, Block* b) {
  std::size_t n = random_size(r);
  std::size_t align = 16;
  void* p = nullptr;
  switch (r.below(8)) {
    case 0:
      p = mallard_calloc(1, n);
      RB_CHECK(p == nullptr || rb::all_zero(p, n), "calloc(1, %zu) not zeroed", n);
      break;
    case 1:
      align = random_alignment(r);
      p = mallard_aligned_alloc(align, n);
      break;
    case 2:
      align = random_alignment(r);
      if (mallard_posix_memalign(&p, align, n) != 0) p = nullptr;
      break;
    case 3:
      align = random_alignment(r);
      p = mallard_memalign(align, n);
      break;
    case 4:
      p = mallard_realloc(nullptr, n);
      break;
    default:
      p = mallard_malloc(n);
      break;
  }
  RB_CHECK(p != nullptr, "allocation of %zu bytes (alignment %zu) failed: errno %d", n, align,
           errno);
  RB_CHECK(rb::aligned(p, align < 16 ? 16 : align), "%p not aligned to %zu", p, align);
  std::size_t usable = mallard_malloc_usable_size(p);
  RB_CHECK(usable >= n, "usable size %zu < %zu", usable, n);
  *b = Block{p, n, g_next_tag.fetch_add(1, std::memory_order_relaxed)};
  rb::fill(p, n, b->tag);
  return true;
}

void resize(Rng& r, Block* b) {
  std::size_t n = random_size(r);
  if (n == 0) n = 1;
  void* q = mallard_realloc(b->p, n);
  RB_CHECK(q != nullptr, "realloc(%p, %zu) failed", b->p, n);
  std::size_t keep = n < b->n ? n : b->n;
  std::size_t bad = rb::find_damage(q, keep, b->n, b->tag);
  RB_CHECK(bad == SIZE_MAX, "realloc(%p [%zu], %zu) = %p lost the contents at %zu", b->p, b->n, n,
           q, bad);
  b->p = q;
  b->n = n;
  rb::fill(q, n, b->tag);
}

void* worker_main(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  Rng r{w->seed};
  while (!g_stop.load(std::memory_order_relaxed) && !w->retire.load(std::memory_order_relaxed)) {
    Block& s = w->slots[r.below(kSlots)];
    unsigned k = static_cast<unsigned>(r.below(1000));
    if (k < 2) {
      mallard_malloc_trim(0);
    } else if (k < 3) {
      mallard_check_heap();  // while the other threads run
    } else if (k < 150) {    // a cross-thread free, or a block handed on
      Block b;
      if (mail_take(r, &b)) release(b, "block from the mailbox");
      if (s.p != nullptr && mail_put(s)) {
        w->live_bytes -= s.n;
        s.p = nullptr;
      }
    } else if (s.p == nullptr) {
      if (w->live_bytes < kMaxLiveBytes) {
        allocate(r, &s);
        w->live_bytes += s.n;
      }
    } else if (k < 600) {
      w->live_bytes -= s.n;
      release(s, "own block");
      s.p = nullptr;
    } else if (k < 800) {
      w->live_bytes -= s.n;
      resize(r, &s);
      w->live_bytes += s.n;
    } else {
      rb::check_pattern(s.p, s.n, s.tag, "live block");
    }
    g_ops.fetch_add(1, std::memory_order_relaxed);
  }
  // Retiring (or stopping): hand every block on, or free it if the mailbox is full. Blocks in the
  // mailbox are freed by others after this thread has exited (frees into abandoned pages).
  for (Block& s : w->slots) {
    if (s.p != nullptr && !mail_put(s)) release(s, "own block at exit");
    s.p = nullptr;
  }
  w->live_bytes = 0;
  return nullptr;
}

void start_worker(int i, std::uint64_t seed) {
  Worker& w = g_workers[i];
  w.seed = seed;
  w.retire.store(false);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStack);
  RB_CHECK(pthread_create(&w.thread, &attr, worker_main, &w) == 0, "pthread_create");
  pthread_attr_destroy(&attr);
  w.running.store(true);
}

void stop_worker(int i) {
  Worker& w = g_workers[i];
  w.retire.store(true);
  pthread_join(w.thread, nullptr);
  w.running.store(false);
}

// ---- fork ----
// The child has only this thread: it frees blocks it inherited from the mailbox, allocates and
// frees on its own, checks the heap and exits. A child that does not exit is a deadlock.
void fork_once(Rng& r) {
  std::uint64_t seed = r.next();
  pid_t pid = fork();
  RB_CHECK(pid >= 0, "fork: errno %d", errno);
  if (pid == 0) {
    // The opt-in purger would start in the child (TSan does not support new threads in the
    // child of a multi-threaded process); it is off by default, and stays off here.
    if (kTsan) mallard_option_set("background_purge", "0");
    Rng cr{seed};
    Block b;
    for (int i = 0; i < 16 && mail_take(cr, &b); ++i) release(b, "inherited block in the child");
    Block mine[64];
    for (Block& m : mine) allocate(cr, &m);
    for (Block& m : mine) release(m, "child block");
    mallard_check_heap();
    _exit(0);
  }
  double deadline = rb::now_s() + 20;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (rb::now_s() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      rb::fail("forked child %d did not exit within 20 s (deadlock after fork?)", pid);
    }
    usleep(1000);
  }
  RB_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child failed (status 0x%x)",
           status);
}

// glibc caches thread stacks with their TLS vectors, allocated with the process's calloc
// (Mallard's, when it owns the standard names). They are made before the starting figures are
// taken, so they do not count as leaks at the end.
void* park(void* b) {
  pthread_barrier_wait(static_cast<pthread_barrier_t*>(b));
  return nullptr;
}
void prewarm(int threads) {
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, nullptr, static_cast<unsigned>(threads + 1));
  pthread_t t[kMaxWorkers + 2];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kStack);
  for (int i = 0; i < threads; ++i)
    RB_CHECK(pthread_create(&t[i], &attr, park, &barrier) == 0, "pthread_create");
  pthread_barrier_wait(&barrier);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], nullptr);
  pthread_attr_destroy(&attr);
  pthread_barrier_destroy(&barrier);
  void* big[6];
  for (void*& p : big) p = mallard_malloc(2 << 20);
  for (void* p : big) mallard_free(p);  // huge blocks freed: the dynamic thresholds settle
}

}  // namespace

int main(int argc, char** argv) {
  rb::g_prog = "soak";
  double seconds = static_cast<double>(rb::arg(argc, argv, 1, 5));
  int threads = static_cast<int>(rb::arg(argc, argv, 2, 4));
  auto seed = static_cast<std::uint64_t>(rb::arg(argc, argv, 3, 42));
  RB_CHECK(seconds > 0 && threads >= 1 && threads <= kMaxWorkers - 1,
           "usage: soak [SECONDS [THREADS (1..%d) [SEED]]]", kMaxWorkers - 1);
  pthread_atfork(mail_lock_before_fork, mail_unlock_after_fork, mail_unlock_after_fork);
  prewarm(threads + 2);
  mallard_malloc_trim(0);
  const rb::InUse start = rb::in_use();
  const std::size_t threads_live_start = rb::stats().threads_live;

  Rng r{seed};
  for (int i = 0; i < threads; ++i) start_worker(i, r.next());
  double t0 = rb::now_s(), next_fork = t0 + 0.2, next_churn = t0 + 0.05;
  std::uint64_t forks = 0, churned = 0, last_ops = 0;
  double last_progress = t0;
  while (rb::now_s() - t0 < seconds) {
    usleep(5000);
    double now = rb::now_s();
    if (now >= next_churn) {  // one worker retires, a new thread takes its place
      int i = static_cast<int>(r.below(static_cast<std::size_t>(threads)));
      stop_worker(i);
      start_worker(i, r.next());
      ++churned;
      next_churn = now + 0.02 + 0.001 * static_cast<double>(r.below(60));
    }
    if (now >= next_fork) {
      fork_once(r);
      ++forks;
      next_fork = now + 0.1 + 0.001 * static_cast<double>(r.below(300));
    }
    std::uint64_t ops = g_ops.load(std::memory_order_relaxed);
    if (ops != last_ops) {
      last_ops = ops;
      last_progress = now;
    }
    RB_CHECK(now - last_progress < 60, "no progress for 60 s (deadlock?)");
  }
  g_stop.store(true);
  for (int i = 0; i < threads; ++i) stop_worker(i);
  Block b;
  while (mail_take(r, &b)) release(b, "block left in the mailbox");
  mallard_malloc_trim(0);  // returns the abandoned pages of the exited workers
  mallard_check_heap();
  rb::check_in_use(start, "after freeing everything");
  std::size_t threads_live = rb::stats().threads_live;
  RB_CHECK(threads_live == threads_live_start, "threads_live %zu, expected %zu", threads_live,
           threads_live_start);
  mallard_stats s = rb::stats();
  rb::say(
      "soak: ok: %.1f s, %d threads, %llu operations, %llu threads replaced, %llu forks; "
      "%zu bytes mapped, %zu resident at the end",
      rb::now_s() - t0, threads, static_cast<unsigned long long>(g_ops.load()),
      static_cast<unsigned long long>(churned), static_cast<unsigned long long>(forks),
      s.bytes_mapped, s.bytes_resident);
  return 0;
}
