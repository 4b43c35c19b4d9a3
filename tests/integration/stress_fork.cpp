/* stress_fork: a parent with 4 busy threads (malloc/calloc/realloc/memalign/free in loops, small to
 * huge sizes) calls fork() many times. Each child checks the heap (mallard_check_heap, when the
 * library has it), checks and frees the blocks inherited from the parent's main thread and from
 * its busy threads (which do not exist in the child), allocates and frees, creates a thread that
 * allocates and frees, sometimes forks a grandchild doing the same, checks the heap again and
 * exits 0. The parent polls waitpid with a deadline: a child that does not exit in time (a lock
 * held across fork by another thread = deadlock in the allocator's fork handling) is killed and
 * the test fails. Run against libmallard_race_delays.so with MALLARD_RACE_DELAY_US=N, the busy
 * threads are often stopped inside a race window when the fork comes.
 * Usage: stress_fork LIB [forks=200] [child_timeout_seconds=10] */
#include "it_common.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include <dlfcn.h>

#include <atomic>

namespace {

struct Block {
  void* p;
  size_t size;
};

std::atomic<bool> g_stop{false};
int g_timeout = 10;

size_t pick_size(it_rng& r) {
  size_t c = r.below(1000);
  if (c < 800) return r.range(1, 1024);
  if (c < 990) return r.range(1025, 128 * 1024);
  return r.range(128 * 1024, 2 * IT_MiB);
}

/* Only the head of each block gets a pattern: the threads should spend their time in the
 * allocator (holding its locks when fork() comes), not in memset. */
constexpr size_t kStamp = 256;
size_t head(size_t size) {
  return size < kStamp ? size : kStamp;
}
void stamp(void* p, size_t size) {
  it_fill_from(p, head(size), (uintptr_t)p, size);
}
void check(const void* p, size_t size, const char* who) {
  size_t bad = it_check_from(p, head(size), (uintptr_t)p, size);
  if (bad != SIZE_MAX)
    it_fail("%s: block %p of %zu bytes corrupted at offset %zu", who, p, size, bad);
}

/* One step of random work on a small set of live blocks. */
void churn(it_rng& r, Block* slots, size_t n, const char* who) {
  Block& s = slots[r.below(n)];
  if (s.p != nullptr) {
    check(s.p, s.size, who);
    if (r.below(4) == 0) {
      size_t nsize = pick_size(r);
      uintptr_t old = (uintptr_t)s.p;
      void* q = realloc(s.p, nsize);
      if (q == nullptr) it_fail("%s: realloc(%zu) returned NULL", who, nsize);
      size_t keep = head(nsize < s.size ? nsize : s.size);
      if (it_check_from(q, keep, old, s.size) != SIZE_MAX) it_fail("%s: realloc lost data", who);
      stamp(q, nsize);
      s = Block{q, nsize};
      return;
    }
    free(s.p);
    s = Block{nullptr, 0};
    return;
  }
  size_t size = pick_size(r);
  void* p;
  switch (r.below(3)) {
    case 0:
      p = malloc(size);
      break;
    case 1:
      p = calloc(1, size);
      break;
    default:
      p = memalign((size_t)64 << r.below(8), size);
      break;
  }
  if (p == nullptr) it_fail("%s: allocation of %zu returned NULL", who, size);
  stamp(p, size);
  s = Block{p, size};
}

void free_all(Block* slots, size_t n, const char* who) {
  for (size_t i = 0; i < n; i++)
    if (slots[i].p != nullptr) {
      check(slots[i].p, slots[i].size, who);
      free(slots[i].p);
      slots[i] = Block{nullptr, 0};
    }
}

/* Blocks the busy threads hold, published for the children: a slot is cleared before its block
 * is freed and set after a new block is stamped, so at any instant a fork may copy, a non-null
 * slot names a live block of that thread. */
constexpr int kBusy = 4, kShared = 32;
struct SharedSlot {
  std::atomic<void*> p{nullptr};
  std::atomic<size_t> size{0};
};
SharedSlot g_shared[kBusy][kShared];
int (*g_check_heap)() = nullptr;

void check_heap(const char* who) {
  if (g_check_heap != nullptr && g_check_heap() != 0) it_fail("%s: heap check failed", who);
}

void shared_step(it_rng& r, SharedSlot* slots) {
  SharedSlot& s = slots[r.below(kShared)];
  void* p = s.p.load(std::memory_order_relaxed);
  if (p != nullptr) {
    check(p, s.size.load(std::memory_order_relaxed), "parent busy thread (shared)");
    s.p.store(nullptr, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    free(p);
    return;
  }
  size_t size = pick_size(r);
  p = malloc(size);
  if (p == nullptr) it_fail("busy thread: malloc(%zu) returned NULL", size);
  stamp(p, size);
  s.size.store(size, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  s.p.store(p, std::memory_order_release);
}

void* busy(void* arg) {
  int id = (int)(uintptr_t)arg;
  it_rng r{(uint64_t)id};
  Block slots[64] = {};
  while (!g_stop.load(std::memory_order_relaxed)) {
    churn(r, slots, 64, "parent busy thread");
    shared_step(r, g_shared[id - 1]);
  }
  free_all(slots, 64, "parent busy thread");
  for (SharedSlot& s : g_shared[id - 1]) {
    void* p = s.p.exchange(nullptr);
    free(p);
  }
  return nullptr;
}

/* In the child: the blocks the parent's busy threads held at the fork. */
void free_busy_threads_blocks() {
  for (auto& thread_slots : g_shared)
    for (SharedSlot& s : thread_slots) {
      void* p = s.p.load(std::memory_order_relaxed);
      if (p == nullptr) continue;
      check(p, s.size.load(std::memory_order_relaxed),
            "child freeing a block of a parent thread it does not have");
      free(p);
      s.p.store(nullptr, std::memory_order_relaxed);
    }
}

void* child_thread(void* arg) {
  it_rng r{(uint64_t)(uintptr_t)arg};
  Block slots[32] = {};
  for (int i = 0; i < 200; i++) churn(r, slots, 32, "thread in child");
  free_all(slots, 32, "thread in child");
  return nullptr;
}

/* Waits for pid with a deadline; fails on a hang or an abnormal exit. */
void wait_child(pid_t pid, int n, const char* what) {
  double deadline = it_now() + g_timeout;
  int st;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (w < 0) it_fail("waitpid: %s", strerror(errno));
    if (it_now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      it_fail("%s %d (fork #%d) did not exit within %d s: deadlock after fork?", what, (int)pid, n,
              g_timeout);
    }
    usleep(1000);
  }
  if (WIFSIGNALED(st)) it_fail("%s of fork #%d killed by signal %d", what, n, WTERMSIG(st));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    it_fail("%s of fork #%d exited with status %d", what, n, WEXITSTATUS(st));
}

[[noreturn]] void child_main(int n, Block* inherited, size_t ninherited, bool grandchild) {
  alarm((unsigned)g_timeout * 3); /* never outlive a dead parent for long */
  it_rng r{0xC0FFEEu + (uint64_t)n * 2 + grandchild};
  check_heap("child, just forked");
  free_all(inherited, ninherited, "child freeing a block inherited from the parent");
  if (!grandchild) free_busy_threads_blocks();
  check_heap("child, after freeing the parent's blocks");
  Block slots[32] = {};
  for (int i = 0; i < 100; i++) churn(r, slots, 32, "child");
  pthread_t t;
  int rc = pthread_create(&t, nullptr, child_thread, (void*)(uintptr_t)(n + 77));
  if (rc != 0) it_fail("pthread_create in child: %s", strerror(rc));
  for (int i = 0; i < 100; i++) churn(r, slots, 32, "child");
  pthread_join(t, nullptr);
  if (!grandchild && n % 10 == 0) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) it_fail("fork in child: %s", strerror(errno));
    if (pid == 0) child_main(n, slots, 32, true);
    wait_child(pid, n, "grandchild");
  }
  free_all(slots, 32, "child");
  check_heap("child, at the end");
  exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "stress_fork");
  int forks = (int)it_arg(argc, argv, a, 200);
  g_timeout = (int)it_arg(argc, argv, a + 1, 10);
  g_check_heap = (int (*)())dlsym(RTLD_DEFAULT, "mallard_check_heap");
  pthread_t tid[4];
  for (int i = 0; i < 4; i++) {
    int rc = pthread_create(&tid[i], nullptr, busy, (void*)(uintptr_t)(i + 1));
    IT_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
  }
  it_rng r{42};
  Block mine[16] = {};
  for (int n = 1; n <= forks; n++) {
    for (int i = 0; i < 40; i++) churn(r, mine, 16, "parent main thread");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) it_fail("fork: %s", strerror(errno));
    if (pid == 0) child_main(n, mine, 16, false);
    wait_child(pid, n, "child");
  }
  g_stop = true;
  for (int i = 0; i < 4; i++) pthread_join(tid[i], nullptr);
  free_all(mine, 16, "parent main thread");
  printf("stress_fork: OK: %d forks with 4 busy threads, every child exited cleanly%s\n", forks,
         g_check_heap != nullptr ? " with its heap checked" : "");
  return 0;
}
