// From ../shared/cases/dropin/sigwait.c (a thread created by the allocator takes the
// program's signals); run by expect_output.sh in tests/integration/CMakeLists.txt.
// The program blocks SIGUSR1 and waits for it with sigwait after freeing ~36 MiB. Expected:
// "threads in process: 1", then "sigwait got signal 10: clean shutdown", exit 0.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <unistd.h>
static int threads(void) { int n = 0; DIR* d = opendir("/proc/self/task"); struct dirent* e;
  while ((e = readdir(d))) if (e->d_name[0] != '.') ++n; closedir(d); return n; }
int main(void) {
  void* volatile big = malloc(16 << 20); ((char*)big)[0] = 1; free(big);            /* huge block: raises the mmap threshold */
  void* p[20]; for (int i = 0; i < 20; ++i) p[i] = malloc(1 << 20);
  for (int i = 0; i < 20; ++i) free(p[i]);             /* 20 MiB of dirty spans */
  usleep(100 * 1000);
  printf("threads in process: %d\n", threads()); fflush(stdout);
  sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  kill(getpid(), SIGUSR1);
  int sig = 0; sigwait(&set, &sig);
  printf("sigwait got signal %d: clean shutdown\n", sig);
  return 0;
}
