/* hidden_thread.cpp LIB MODE [ARG]: a program cannot tell Mallard is there, except by its memory
 * figures (issue "No hidden thread"). Modes:
 *   burst MIB        single thread: allocate MIB of 16 KiB blocks, free them all, then make no
 *                    allocator call for 2 s: RSS must be within 2 MiB of the pre-burst RSS
 *                    (the purge policy decides at free time; there is no thread to do it later).
 *   thread_count     heavy allocation and freeing of every kind (small, large, huge, aligned,
 *                    realloc, calloc, malloc_trim): the process keeps exactly one thread.
 *   seccomp          the same work under a seccomp filter that kills the process on clone,
 *                    clone3, fork and vfork: it must run to the end.
 *   purger           the opt-in purger (run with MALLARD_OPTIONS=background_purge=1,...): it is
 *                    created with every signal blocked, so a signal the program blocks and sends
 *                    itself reaches sigwait; it ages dirty memory with no allocator calls; a
 *                    forked child gets its own purger and the same behaviour.
 *   purger_warm      the same purger: heaps that exited threads left warm, with free memory in
 *                    their pages, are aged with no allocator call (RSS within 2 MiB of the start).
 * RSS is read with open/read (no allocation), so measuring does not call the allocator. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "it_common.h"

namespace {

constexpr size_t kBlock = 16 * 1024;

/* Resident bytes from /proc/self/statm, without allocating. */
size_t rss_now() {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) it_fail("open /proc/self/statm");
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) it_fail("read /proc/self/statm");
  buf[n] = '\0';
  const char* s = strchr(buf, ' ');
  if (s == nullptr) it_fail("parse /proc/self/statm");
  return strtoul(s + 1, nullptr, 10) * (size_t)sysconf(_SC_PAGESIZE);
}

/* Threads of this process: entries of /proc/self/task (getdents64, no allocation). */
int thread_count() {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) it_fail("open /proc/self/task");
  alignas(8) char buf[4096];
  int count = 0;
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) it_fail("getdents64");
    if (n == 0) break;
    for (long off = 0; off < n;) {
      const char* name = buf + off + 19; /* struct linux_dirent64: d_name at offset 19 */
      unsigned short reclen;
      memcpy(&reclen, buf + off + 16, sizeof reclen);
      if (name[0] != '.') ++count;
      off += reclen;
    }
  }
  close(fd);
  return count;
}

void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Allocates `total` bytes of 16 KiB blocks, touches them, frees them all, then makes no allocator
 * call for `idle_ms`. Returns RSS growth over the start in bytes (negative as 0). */
size_t burst(void** slots, size_t total, long idle_ms) {
  size_t count = total / kBlock;
  size_t base = rss_now();
  for (size_t i = 0; i < count; i++) {
    slots[i] = malloc(kBlock);
    if (slots[i] == nullptr) it_fail("malloc(16 KiB) failed at block %zu", i);
    memset(slots[i], 0x5a, kBlock);
  }
  size_t peak = rss_now();
  for (size_t i = 0; i < count; i++) free(slots[i]);
  size_t after_free = rss_now();
  sleep_ms(idle_ms);
  size_t after_idle = rss_now();
  printf("burst %.0f MiB: RSS start %.1f, peak %.1f, after free %.1f, after %ld ms idle %.1f MiB\n",
         it_mib(total), it_mib(base), it_mib(peak), it_mib(after_free), idle_ms,
         it_mib(after_idle));
  if (peak < base + total / 2) it_fail("the burst did not raise RSS (%.1f MiB)", it_mib(peak));
  return after_idle > base ? after_idle - base : 0;
}

void** slot_table(size_t total) {
  /* Taken before the baseline, like a program's own data. */
  void** slots = (void**)calloc(total / kBlock, sizeof(void*));
  if (slots == nullptr) it_fail("calloc of the slot table");
  return slots;
}

void mode_burst(size_t mib_total) {
  size_t total = mib_total * IT_MiB;
  void** slots = slot_table(total);
  printf("%s", ""); /* stdio's buffer is allocated before the baseline */
  fflush(stdout);
  size_t over = burst(slots, total, 2000);
  if (over > 2 * IT_MiB)
    it_fail("RSS %.1f MiB over the start 2 s after freeing a %zu MiB burst (limit 2 MiB)",
            it_mib(over), mib_total);
  free(slots);
}

/* Every kind of allocation, in volume: about 600 MiB allocated and freed in rounds. */
void heavy_work() {
  enum { kSlots = 4096 };
  static void* live[kSlots];
  it_rng r{7};
  for (int round = 0; round < 6; round++) {
    for (int i = 0; i < kSlots; i++) {
      size_t kind = r.below(100), n;
      void* p;
      if (kind < 70) {
        n = r.range(1, 4096);
        p = malloc(n);
      } else if (kind < 85) {
        n = r.range(4097, 256 * 1024);
        p = calloc(1, n);
      } else if (kind < 90) {
        n = r.range(256 * 1024, 4 * IT_MiB);
        p = malloc(n);
      } else if (kind < 95) {
        n = r.range(16, 100000);
        p = aligned_alloc(64, (n + 63) & ~(size_t)63);
      } else {
        n = r.range(1, 300000);
        p = realloc(malloc(100), n);
      }
      if (p == nullptr) it_fail("allocation of %zu bytes failed", n);
      memset(p, 1, n < 8192 ? n : 8192);
      free(live[i]);
      live[i] = p;
    }
    if (thread_count() != 1) it_fail("%d threads after round %d", thread_count(), round);
    for (int i = 0; i < kSlots; i += 2) {
      free(live[i]);
      live[i] = nullptr;
    }
  }
  for (int i = 0; i < kSlots; i++) free(live[i]);
  malloc_trim(0);
}

void mode_thread_count() {
  int before = thread_count();
  if (before != 1) it_fail("%d threads at start", before);
  heavy_work();
  int after = thread_count();
  printf("threads before %d, after heavy allocation and freeing %d\n", before, after);
  if (after != 1) it_fail("the process has %d threads after heavy allocation, expected 1", after);
}

void mode_seccomp() {
  /* Kill the process on any new thread or process. x86-64 only: other ABIs are killed too. */
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 4, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435 /* __NR_clone3 */, 3, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fork, 2, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_vfork, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    it_fail("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    it_fail("PR_SET_SECCOMP: %s", strerror(errno));
  heavy_work();
  void** slots = slot_table(64 * IT_MiB);
  burst(slots, 64 * IT_MiB, 10);
  free(slots);
  printf("seccomp: heavy allocation ran with clone forbidden\n");
}

/* SigBlk of every thread but the calling one must hold the signals a program commonly uses. */
void check_other_threads_block_signals() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) it_fail("opendir /proc/self/task");
  long self = syscall(SYS_gettid);
  int checked = 0;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || atol(e->d_name) == self) continue;
    char path[320], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    const char* blk = strstr(buf, "SigBlk:");
    if (blk == nullptr) it_fail("no SigBlk in %s", path);
    unsigned long long mask = strtoull(blk + 7, nullptr, 16);
    const int sigs[] = {SIGHUP,  SIGINT,  SIGQUIT, SIGUSR1,  SIGUSR2,     SIGPIPE,
                        SIGALRM, SIGTERM, SIGCHLD, SIGWINCH, SIGRTMIN + 2};
    for (int s : sigs)
      if ((mask & (1ull << (s - 1))) == 0)
        it_fail("thread %s does not block signal %d (SigBlk %llx)", e->d_name, s, mask);
    checked++;
  }
  closedir(d);
  if (checked == 0) it_fail("no purger thread to check: was background_purge=1 set?");
}

/* In this process (parent or child): the purger exists, blocks every signal, ages dirty memory
 * with no allocator call, and a blocked signal sent to the process reaches sigwait. */
void purger_checks(const char* who) {
  void** slots = slot_table(64 * IT_MiB);
  printf("%s", "");
  fflush(stdout);
  /* The test runs with a large trim_threshold: the frees stay dirty and only decay (the purger,
   * with no allocator call) can give them back. */
  size_t over = burst(slots, 64 * IT_MiB, 2000);
  int threads = thread_count();
  if (threads != 2) it_fail("%s: %d threads with background_purge=1, expected 2", who, threads);
  check_other_threads_block_signals();
  if (over > 2 * IT_MiB)
    it_fail("%s: RSS %.1f MiB over the start after 2 s with the purger", who, it_mib(over));
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  kill(getpid(), SIGUSR1);
  int sig = 0;
  if (sigwait(&set, &sig) != 0 || sig != SIGUSR1) it_fail("%s: sigwait", who);
  printf("%s: purger present, every signal blocked in it, sigwait got %d\n", who, sig);
  fflush(stdout);
  free(slots);
}

/* purger_warm: threads that exit leave their heaps warm (kept whole for the next thread), each
 * with up to what its arena learnt comes back free in its pages; the program then makes no
 * allocator call. The purger must age those heaps like dirty memory (a review found them kept
 * resident for good: +6.9 MiB after 3 s idle, +0.5 MiB before warm heaps). */
constexpr int kWarmThreads = 4;
constexpr int kWarmBlocks = 6144; /* 256 B: 1.5 MiB per thread */
void* g_handed[kWarmThreads][kWarmBlocks / 256 + 1];
pthread_barrier_t g_warm_barrier;

void* warm_worker(void* arg) {
  long t = (long)arg;
  static thread_local void* all[kWarmBlocks];
  pthread_barrier_wait(&g_warm_barrier);
  for (int i = 0; i < kWarmBlocks; ++i) {
    all[i] = malloc(256);
    if (all[i] == nullptr) it_fail("malloc(256) failed");
    memset(all[i], 1, 256);
  }
  int k = 0;
  for (int i = 0; i < kWarmBlocks; ++i) {
    if (i % 256 == 0)
      g_handed[t][k++] = all[i]; /* one block per 64 KiB page stays live: freed by main */
    else
      free(all[i]);
  }
  pthread_barrier_wait(&g_warm_barrier); /* all alive together: four heaps */
  return nullptr;
}

void mode_purger_warm() {
  printf("%s", "");
  fflush(stdout);
  size_t base = rss_now();
  for (int round = 0; round < 8; ++round) { /* the first rounds teach the arenas */
    pthread_t th[kWarmThreads];
    pthread_barrier_init(&g_warm_barrier, nullptr, kWarmThreads);
    for (long t = 0; t < kWarmThreads; ++t)
      if (pthread_create(&th[t], nullptr, warm_worker, (void*)t) != 0) it_fail("pthread_create");
    for (pthread_t& t : th) pthread_join(t, nullptr);
    pthread_barrier_destroy(&g_warm_barrier);
    for (auto& handed : g_handed)
      for (int k = 0; k < kWarmBlocks / 256; ++k) free(handed[k]);
    sleep_ms(50);
  }
  size_t after = rss_now();
  sleep_ms(2000); /* 20 x decay_ms, no allocator call */
  size_t idle = rss_now();
  printf("purger_warm: RSS start %.1f, after the rounds %.1f, after 2 s idle %.1f MiB\n",
         it_mib(base), it_mib(after), it_mib(idle));
  if (idle > base + 2 * IT_MiB)
    it_fail("RSS %.1f MiB over the start after 2 s with the purger", it_mib(idle - base));
}

void mode_purger() {
  purger_checks("parent");
  pid_t pid = fork();
  if (pid < 0) it_fail("fork: %s", strerror(errno));
  if (pid == 0) {
    purger_checks("child");
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) it_fail("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    it_fail("the child failed (status %d)", status);
}

}  // namespace

int main(int argc, char** argv) {
  int i = it_setup(argc, argv, "hidden_thread");
  const char* mode = i < argc ? argv[i] : "";
  if (strcmp(mode, "burst") == 0)
    mode_burst((size_t)it_arg(argc, argv, i + 1, 6));
  else if (strcmp(mode, "thread_count") == 0)
    mode_thread_count();
  else if (strcmp(mode, "seccomp") == 0)
    mode_seccomp();
  else if (strcmp(mode, "purger") == 0)
    mode_purger();
  else if (strcmp(mode, "purger_warm") == 0)
    mode_purger_warm();
  else
    it_fail("unknown mode '%s'", mode);
  printf("hidden_thread %s: ok\n", mode);
  return 0;
}
