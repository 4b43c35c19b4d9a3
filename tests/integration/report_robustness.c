/* report_robustness.c: programs that the exit report and its peak snapshots must not disturb
 * (review of issue 13). Modes:
 *   sandbox     a seccomp filter kills the process on any openat(2) from here on; then the
 *               program allocates for 0.3 s. Mallard must open nothing (no report was asked
 *               for: the peak watch, which reads /proc/self/statm, is off).
 *   sigexit     20k small mappings (a slow /proc/self/smaps), then a SIGALRM every 3 ms whose
 *               handler calls exit(0) while the main loop allocates: the exit report may run in
 *               a handler that interrupted a peak snapshot of the same thread; it must not hang.
 *   tworeports  20k mappings (a report then takes a while), then two threads write JSON reports
 *               (mallard_print_stats_json) at once into files: both must be complete reports.
 *   smallstack  threads with 16 KiB stacks (PTHREAD_STACK_MIN) print reports
 *               (mallard_print_report, found with dlsym) and one calls exit(): the report must
 *               fit in their stacks.
 * Usage: report_robustness MODE; prints "report_robustness: MODE ok" and exits 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static int sandbox(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_openat, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  struct sock_fprog prog = {sizeof f / sizeof f[0], f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    puts("report_robustness: sandbox: seccomp unavailable, skipped");
    return 0;
  }
  for (int i = 0; i < 300; i++) {
    char* q = malloc(1 << 20);
    if (q == NULL) return 1;
    memset(q, 1, 1 << 20);
    usleep(1000);
  }
  return 0;
}

/* n one-page mappings that cannot merge (alternate permissions): /proc/self/smaps grows long. */
static int make_mappings(int n) {
  for (int i = 0; i < n; i++) {
    char* p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | (i & 1 ? PROT_EXEC : 0),
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 0;
    p[0] = 1;
  }
  return 1;
}

static void exit_now(int sig) {
  (void)sig;
  puts("report_robustness: sigexit ok");
  exit(0);
}

static int sigexit(void) {
  if (!make_mappings(20000)) return 1;
  signal(SIGALRM, exit_now);
  struct itimerval it = {{0, 3000}, {0, 3000}};
  setitimer(ITIMER_REAL, &it, NULL);
  for (;;) {
    char* p = malloc(300000);
    if (p == NULL) return 1;
    memset(p, 1, 300000);
    free(p);
  }
}

static void* print_json(void* arg) {
  void (*print)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "mallard_print_stats_json");
  int fd = open((const char*)arg, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (print != NULL && fd >= 0) print(fd);
  close(fd);
  return NULL;
}

static int tworeports(void) {
  if (!make_mappings(20000)) return 1;
  const char* dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
  char a[512], b[512];
  snprintf(a, sizeof a, "%s/report_robustness.%d.a.json", dir, (int)getpid());
  snprintf(b, sizeof b, "%s/report_robustness.%d.b.json", dir, (int)getpid());
  pthread_t t1, t2;
  pthread_create(&t1, NULL, print_json, a);
  pthread_create(&t2, NULL, print_json, b);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  int status = 0;
  for (const char* path = a;; path = b) {
    char buf[256] = {0};
    FILE* f = fopen(path, "r");
    if (f == NULL || fread(buf, 1, sizeof buf - 1, f) == 0 || strstr(buf, "\"error\"") != NULL ||
        strncmp(buf, "{\"schema_version\":1,\"version\":", 30) != 0) {
      printf("report_robustness: tworeports: %s: %.100s\n", path, buf);
      status = 1;
    }
    if (f != NULL) fclose(f);
    unlink(path);
    if (path == b) break;
  }
  return status;
}

static void* print_reports(void* arg) {
  (void)arg;
  void (*print)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "mallard_print_report");
  int fd = open("/dev/null", O_WRONLY);
  for (int i = 0; i < 20; i++) {
    void* p = malloc(100000 + (size_t)i);
    if (print != NULL) print(fd);
    free(p);
  }
  close(fd);
  return NULL;
}

static void* exit_thread(void* arg) {
  (void)arg;
  puts("report_robustness: smallstack ok");
  fflush(stdout);
  exit(0);
}

static int smallstack(void) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], &attr, print_reports, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  pthread_t e;
  pthread_create(&e, &attr, exit_thread, NULL);
  pthread_join(e, NULL);
  return 1; /* not reached: the thread exits the process */
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  int status = strcmp(mode, "sandbox") == 0      ? sandbox()
               : strcmp(mode, "sigexit") == 0    ? sigexit()
               : strcmp(mode, "smallstack") == 0 ? smallstack()
               : strcmp(mode, "tworeports") == 0 ? tworeports()
                                                 : 2;
  if (status == 0) printf("report_robustness: %s ok\n", mode);
  return status;
}
