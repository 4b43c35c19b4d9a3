/* fork_safety.cpp LIB MODE [N]: fork and thread exit are safe whatever the program does around
 * them (issue "fork and thread exit are always safe"). Modes:
 *   atfork_handlers N  worker threads allocate and free while main forks N times; fork handlers,
 *                      registered both before and after the threads start, allocate and free in
 *                      prepare, parent and child. Parent and child go on allocating.
 *   stdio N            threads hold stdio locks (fflush(NULL), getline on a file whose long lines
 *                      make getline realloc under the FILE lock) and allocate, while another
 *                      thread forks N times: no deadlock between stdio's locks and Mallard's.
 *   signal N           single thread: a timer signal's handler forks while the main loop is
 *                      inside malloc/free (large blocks: the arena lock is held); N forks, each
 *                      child goes on allocating after the handler returns, then exits 0.
 *   tsd N WHEN         N threads exit while a pthread key destructor re-arms its key for every
 *                      round and allocates and frees (32 B, 5 KiB, 200 KiB) in each. Mallard's
 *                      key exists before the program's (it is created at load), so its
 *                      destructor runs first in each round, as in the usual "re-arm to run last"
 *                      idiom. WHEN is "body" (the thread allocates in its body too), "dtor"
 *                      (only its destructors allocate) or "last" (its first allocation ever is in
 *                      the last round, when Mallard's destructor is no longer called: the heap
 *                      is reclaimed once the thread is gone). Afterwards threads_live is back to 1
 * and small pages, metadata and RSS within 1 MiB of the figures after the first 50 threads.
 *   register_race N  N rounds, each in a fresh child process: a thread registers 60 fork
 *                    handlers (past glibc's 48 inline entries, __register_atfork allocates under
 *                    its handler-list lock) while another allocates and the main thread forks.
 *   cancel           a thread with a pending cancellation request calls fork(): fork is not a
 *                    cancellation point, so it returns and a library's handlers all run.
 *   late_live N      a key destructor that runs after Mallard's keeps N blocks of 64 B: they
 *                    must share pages (RSS grows by less than 4 x their size + 2 MiB).
 * Every wait has a deadline: a hang fails the test instead of stalling ctest. */
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <atomic>

#include "it_common.h"
#include "mallard/mallard.h"

namespace {

std::atomic<bool> g_stop{false};
void* volatile g_sink;

/* Waits for a child, failing after `seconds` (a deadlock in the child). */
void reap(pid_t pid, int seconds, const char* what) {
  double deadline = it_now() + seconds;
  int st = 0;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) it_fail("waitpid: %s", strerror(errno));
    if (it_now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      it_fail("%s %d did not exit within %d s: deadlock after fork?", what, (int)pid, seconds);
    }
    usleep(500);
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    it_fail("%s %d ended badly (status 0x%x)", what, (int)pid, st);
}

/* A watchdog for the process itself: a hang in the parent fails with a message. */
void on_alarm(int) {
  static const char msg[] = "fork_safety: FAIL: timed out (a deadlock)\n";
  ssize_t ignored = write(2, msg, sizeof msg - 1);
  (void)ignored;
  _exit(1);
}
void watchdog(unsigned seconds) {
  signal(SIGALRM, on_alarm);
  alarm(seconds);
}

void churn(it_rng& r, void** slots, size_t n) {
  size_t i = r.below(n);
  free(slots[i]);
  size_t c = r.below(100);
  size_t size = c < 80   ? r.range(1, 2048)
                : c < 98 ? r.range(2049, 200000)
                         : r.range(200000, 3000000);
  slots[i] = malloc(size);
  if (slots[i] == nullptr) it_fail("malloc(%zu) failed", size);
  memset(slots[i], 0x33, size < 512 ? size : 512);
}

void* worker(void* arg) {
  it_rng r{(uint64_t)(uintptr_t)arg};
  void* slots[64] = {};
  while (!g_stop.load(std::memory_order_relaxed)) churn(r, slots, 64);
  for (void* p : slots) free(p);
  return nullptr;
}

// ---- atfork_handlers ----
void handler_work(size_t big) {
  void* a = malloc(100 * 1024);
  void* b = malloc(24);
  void* c = calloc(1, big);
  if (a == nullptr || b == nullptr || c == nullptr) _exit(3);
  memset(a, 1, 100 * 1024);
  free(b);
  g_sink = realloc(a, 300 * 1024);
  free(g_sink);
  free(c);
}
void prepare_1() {
  handler_work(5000);
}
void parent_1() {
  handler_work(70000);
}
void child_1() {
  handler_work(2 << 20);
}
void prepare_2() {
  handler_work(64);
}
void parent_2() {
  handler_work(1 << 20);
}
void child_2() {
  handler_work(300);
}

void mode_atfork_handlers(int forks) {
  watchdog(120);
  pthread_atfork(prepare_1, parent_1, child_1);  // registered after Mallard's (it runs first)
  pthread_t t[3];
  for (int i = 0; i < 3; i++) pthread_create(&t[i], nullptr, worker, (void*)(uintptr_t)(i + 1));
  pthread_atfork(prepare_2, parent_2, child_2);  // and again while threads run
  it_rng r{5};
  void* mine[16] = {};
  for (int n = 0; n < forks; n++) {
    for (int i = 0; i < 20; i++) churn(r, mine, 16);
    pid_t pid = fork();
    if (pid < 0) it_fail("fork: %s", strerror(errno));
    if (pid == 0) {
      alarm(20);
      for (int i = 0; i < 200; i++) churn(r, mine, 16);
      for (void* p : mine) free(p);
      _exit(0);
    }
    reap(pid, 20, "child");
  }
  g_stop = true;
  for (pthread_t th : t) pthread_join(th, nullptr);
  for (void* p : mine) free(p);
  printf("atfork_handlers: %d forks, handlers allocating in prepare, parent and child\n", forks);
}

// ---- stdio ----
const char* g_file;
void* stdio_reader(void*) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    FILE* f = fopen(g_file, "r");
    if (f == nullptr) it_fail("fopen %s", g_file);
    char* line = nullptr;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {  // realloc under the FILE lock
      free(line);
      line = nullptr;
      cap = 0;
    }
    free(line);
    fclose(f);
  }
  return nullptr;
}
void* stdio_flusher(void*) {
  it_rng r{9};
  void* slots[16] = {};
  FILE* devnull = fopen("/dev/null", "w");
  while (!g_stop.load(std::memory_order_relaxed)) {
    fprintf(devnull, "%d\n", (int)r.below(1000));
    fflush(nullptr);  // takes the stdio list lock, then each FILE's lock
    churn(r, slots, 16);
  }
  fclose(devnull);
  for (void* p : slots) free(p);
  return nullptr;
}
void* stdio_forker(void* arg) {
  int forks = (int)(intptr_t)arg;
  for (int n = 0; n < forks; n++) {
    pid_t pid = fork();
    if (pid < 0) it_fail("fork: %s", strerror(errno));
    if (pid == 0) {
      alarm(20);
      void* p = malloc(1000);
      void* q = malloc(300000);
      printf("%s", "");
      free(p);
      free(q);
      _exit(0);
    }
    reap(pid, 20, "child");
  }
  return nullptr;
}

void mode_stdio(int forks) {
  watchdog(120);
  char path[] = "/tmp/mallard_fork_stdio_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) it_fail("mkstemp");
  static char line[90000];  // getline grows its buffer to 120 KiB: a large block (arena lock)
  memset(line, 'x', sizeof line - 1);
  line[sizeof line - 1] = '\n';
  for (int i = 0; i < 20; i++)
    if (write(fd, line, sizeof line) != (ssize_t)sizeof line) it_fail("write");
  close(fd);
  g_file = path;
  pthread_t t[4];
  pthread_create(&t[0], nullptr, stdio_reader, nullptr);
  pthread_create(&t[1], nullptr, stdio_reader, nullptr);
  pthread_create(&t[2], nullptr, stdio_flusher, nullptr);
  pthread_create(&t[3], nullptr, stdio_forker, (void*)(intptr_t)forks);
  pthread_join(t[3], nullptr);
  g_stop = true;
  for (int i = 0; i < 3; i++) pthread_join(t[i], nullptr);
  unlink(path);
  printf("stdio: %d forks while threads used stdio and allocated\n", forks);
}

// ---- signal ----
volatile sig_atomic_t g_is_child = 0;
volatile sig_atomic_t g_forks = 0;
pid_t g_children[4096];

void on_timer(int) {
  int saved = errno;
  if (!g_is_child && g_forks < (sig_atomic_t)(sizeof g_children / sizeof g_children[0])) {
    pid_t pid = fork();
    if (pid == 0) {
      g_is_child = 1;  // the child returns into the interrupted malloc or free and goes on
    } else if (pid > 0) {
      g_children[g_forks] = pid;
      g_forks = g_forks + 1;
    }
  }
  errno = saved;
}

void mode_signal(int forks) {
  watchdog(120);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_timer;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPROF, &sa, nullptr);
  struct itimerval it = {{0, 2000}, {0, 2000}};  // every 2 ms of CPU time
  setitimer(ITIMER_PROF, &it, nullptr);
  it_rng r{77};
  void* slots[8] = {};
  int reaped = 0;
  long steps_as_child = 0;
  while (g_forks < forks) {
    size_t i = r.below(8);
    free(slots[i]);  // large blocks: their free and malloc hold the arena lock
    slots[i] = malloc(r.range(70000, 120000));
    if (slots[i] == nullptr) _exit(4);
    ((char*)slots[i])[0] = 1;
    if (g_is_child) {
      if (steps_as_child == 0) {
        struct itimerval off = {};
        setitimer(ITIMER_PROF, &off, nullptr);
      }
      if (++steps_as_child == 2000) {
        for (void* p : slots) free(p);
        void* small = malloc(100);
        free(small);
        _exit(0);
      }
    }
    if (!g_is_child && reaped < g_forks) {
      // Reap with the timer signal blocked: a child forked inside reap() would wait for its
      // siblings. Forks happen inside malloc and free only.
      sigset_t prof, old;
      sigemptyset(&prof);
      sigaddset(&prof, SIGPROF);
      sigprocmask(SIG_BLOCK, &prof, &old);
      while (reaped < g_forks) reap(g_children[reaped++], 20, "child forked from a signal handler");
      sigprocmask(SIG_SETMASK, &old, nullptr);
    }
  }
  struct itimerval off = {};
  setitimer(ITIMER_PROF, &off, nullptr);
  while (reaped < g_forks) reap(g_children[reaped++], 20, "child forked from a signal handler");
  for (void* p : slots) free(p);
  printf("signal: %d forks from a signal handler inside malloc/free; every child allocated on\n",
         (int)g_forks);
}

// ---- tsd ----
pthread_key_t g_key;
bool g_body_allocates = true;

bool g_only_last_round = false;

void tsd_destructor(void* v) {
  intptr_t round = (intptr_t)v;
  if (round < 4) pthread_setspecific(g_key, (void*)(round + 1));  // run again, last
  if (g_only_last_round && round < 4) return;
  const size_t sizes[] = {32, 5000, 200000};
  for (size_t n : sizes) {
    void* p = malloc(n);
    if (p == nullptr) _exit(5);
    memset(p, 1, n < 64 ? n : 64);
    g_sink = p;
    free(p);
  }
}
void* tsd_body(void*) {
  if (g_body_allocates) {
    void* p = malloc(48);
    g_sink = p;
    free(p);
  }
  pthread_setspecific(g_key, (void*)1);
  return nullptr;
}

void mode_tsd(int threads, const char* when) {
  watchdog(120);
  auto get_stats = (int (*)(mallard_stats*))dlsym(RTLD_DEFAULT, "mallard_get_stats");
  if (get_stats == nullptr) it_fail("mallard_get_stats not found: not running on Mallard");
  g_body_allocates = strcmp(when, "body") == 0;
  g_only_last_round = strcmp(when, "last") == 0;
  pthread_key_create(&g_key, tsd_destructor);
  mallard_stats base = {};
  size_t base_rss = 0;
  for (int i = 0; i < threads; i++) {
    pthread_t t;
    if (pthread_create(&t, nullptr, tsd_body, nullptr) != 0) it_fail("pthread_create");
    pthread_join(t, nullptr);
    if (i == 49) {
      get_stats(&base);
      base_rss = it_rss();
    }
  }
  mallard_stats s = {};
  get_stats(&s);
  size_t rss = it_rss();
  size_t small = s.bytes_small + s.bytes_free_in_pages;
  size_t base_small = base.bytes_small + base.bytes_free_in_pages;
  printf(
      "tsd %s: after %d threads threads_live=%zu small pages %zu KiB (after 50: %zu KiB), "
      "metadata %zu KiB (%zu), RSS %.1f MiB (%.1f)\n",
      when, threads, s.threads_live, small >> 10, base_small >> 10, s.bytes_metadata >> 10,
      base.bytes_metadata >> 10, (double)rss / IT_MiB, (double)base_rss / IT_MiB);
  if (s.threads_live != 1) it_fail("threads_live=%zu after every thread exited", s.threads_live);
  if (small > base_small + IT_MiB) it_fail("small pages grew by more than 1 MiB");
  if (s.bytes_metadata > base.bytes_metadata + IT_MiB) it_fail("metadata grew by more than 1 MiB");
  if (rss > base_rss + IT_MiB) it_fail("RSS grew by more than 1 MiB");
}

// ---- register_race ----
std::atomic<bool> g_registered{false};
void nop_handler() {}
void* registrar(void* spin) {
  long n = (long)(intptr_t)spin;
  for (long i = 0; i < n; i++) __asm__ volatile("" ::: "memory");  // a delay the compiler keeps
  for (int i = 0; i < 60; i++) pthread_atfork(nop_handler, nop_handler, nop_handler);
  g_registered = true;
  return nullptr;
}
void* churner(void*) {
  while (!g_registered.load()) {
    void* p = malloc(64);
    free(p);
    p = malloc(5000);
    free(p);
  }
  return nullptr;
}
void mode_register_race(int rounds) {
  watchdog(120);
  for (int round = 0; round < rounds; round++) {
    pid_t pid = fork();
    if (pid < 0) it_fail("fork: %s", strerror(errno));
    if (pid == 0) {
      alarm(10);
      pthread_t b, c;
      pthread_create(&c, nullptr, churner, nullptr);
      pthread_create(&b, nullptr, registrar, (void*)(intptr_t)((round * 7919) % 400000));
      for (int i = 0; i < 200 && !g_registered.load(); i++) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        if (p > 0) waitpid(p, nullptr, 0);
      }
      pthread_join(b, nullptr);
      pthread_join(c, nullptr);
      _exit(0);
    }
    reap(pid, 10, "round process");
  }
  printf("register_race: %d rounds of fork against handler registration\n", rounds);
}

// ---- cancel ----
pthread_mutex_t g_lib_mutex = PTHREAD_MUTEX_INITIALIZER;
void lib_prepare() {
  pthread_mutex_lock(&g_lib_mutex);
}
void lib_after() {
  pthread_mutex_unlock(&g_lib_mutex);
}
std::atomic<bool> g_cancel_pending{false};
volatile bool g_fork_returned = false;
void* cancelled_forker(void*) {
  int old;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
  while (!g_cancel_pending.load()) {
  }
  pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);  // not a cancellation point
  pid_t p = fork();
  if (p == 0) _exit(0);
  g_fork_returned = true;
  waitpid(p, nullptr, 0);  // a cancellation point: the thread ends here
  return nullptr;
}
void mode_cancel() {
  watchdog(60);
  pthread_atfork(lib_prepare, lib_after, lib_after);
  pthread_t t;
  pthread_create(&t, nullptr, cancelled_forker, nullptr);
  pthread_cancel(t);
  g_cancel_pending = true;
  pthread_join(t, nullptr);
  if (!g_fork_returned) it_fail("the thread was cancelled inside fork()");
  if (pthread_mutex_trylock(&g_lib_mutex) != 0)
    it_fail("a library's mutex stayed locked: its prepare handler ran, its parent handler not");
  printf("cancel: fork returned with a cancellation pending; the library's handlers all ran\n");
}

// ---- late_live ----
pthread_key_t g_live_key;
void** g_late_blocks;
int g_late_count;
void late_live_destructor(void* v) {
  if ((intptr_t)v < 2) {  // round 1: let Mallard's destructor run first
    pthread_setspecific(g_live_key, (void*)2);
    return;
  }
  for (int i = 0; i < g_late_count; i++) g_late_blocks[i] = malloc(64);
}
void* late_live_body(void*) {
  g_sink = malloc(10);
  free(g_sink);
  pthread_setspecific(g_live_key, (void*)1);
  return nullptr;
}
void mode_late_live(int count) {
  watchdog(60);
  g_late_count = count;
  g_late_blocks = (void**)calloc((size_t)count, sizeof(void*));
  pthread_key_create(&g_live_key, late_live_destructor);
  size_t base = it_rss();
  pthread_t t;
  pthread_create(&t, nullptr, late_live_body, nullptr);
  pthread_join(t, nullptr);
  size_t grown = it_rss() - base;
  size_t limit = (size_t)count * 64 * 4 + 2 * IT_MiB;
  printf("late_live: %d blocks of 64 B from a late destructor: RSS +%zu KiB (limit %zu KiB)\n",
         count, grown >> 10, limit >> 10);
  for (int i = 0; i < count; i++) {
    if (g_late_blocks[i] == nullptr) it_fail("late malloc %d failed", i);
    free(g_late_blocks[i]);
  }
  if (grown > limit) it_fail("late blocks do not share pages");
}

// ---- refill ----
// Threads whose every round takes pages from the arena (2000 blocks of 1 KiB, then all freed:
// each refill reaches the steps past its own pages, which look at other heaps) while the main
// thread forks. A refill held its own heap lock and waited for the registry lock there, which
// fork's prepare handler takes before every heap lock: the first forks deadlocked.
void* refill_worker(void*) {
  static thread_local void* blocks[2000];
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (void*& p : blocks) {
      p = malloc(1024);
      if (p == nullptr) it_fail("malloc(1024) failed");
    }
    for (void* p : blocks) free(p);
  }
  return nullptr;
}

void mode_refill(int forks) {
  watchdog(120);
  pthread_t t[4];
  for (pthread_t& th : t)
    if (pthread_create(&th, nullptr, refill_worker, nullptr) != 0) it_fail("pthread_create");
  for (int f = 0; f < forks; f++) {
    pid_t pid = fork();
    if (pid < 0) it_fail("fork: %s", strerror(errno));
    if (pid == 0) {
      void* p = malloc(1024);
      free(p);
      _exit(p == nullptr ? 1 : 0);
    }
    reap(pid, 10, "child");
  }
  g_stop.store(true);
  for (pthread_t th : t) pthread_join(th, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  int i = it_setup(argc, argv, "fork_safety");
  const char* mode = i < argc ? argv[i] : "";
  int n = (int)it_arg(argc, argv, i + 1, 200);
  if (strcmp(mode, "atfork_handlers") == 0)
    mode_atfork_handlers(n);
  else if (strcmp(mode, "stdio") == 0)
    mode_stdio(n);
  else if (strcmp(mode, "signal") == 0)
    mode_signal(n);
  else if (strcmp(mode, "register_race") == 0)
    mode_register_race(n);
  else if (strcmp(mode, "cancel") == 0)
    mode_cancel();
  else if (strcmp(mode, "late_live") == 0)
    mode_late_live(n);
  else if (strcmp(mode, "refill") == 0)
    mode_refill(n);
  else if (strcmp(mode, "tsd") == 0)
    mode_tsd(n, i + 2 < argc ? argv[i + 2] : "body");
  else
    it_fail("unknown mode '%s'", mode);
  printf("fork_safety %s: ok\n", mode);
  return 0;
}
