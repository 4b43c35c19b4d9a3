// setuid_env.cpp: the program of setuid_env.sh (issue: setuid programs ignore the environment).
// Linked with libmallard.a, so Mallard is its malloc however the loader treats LD_PRELOAD in
// secure-execution mode. Prints whether it runs in that mode, that Mallard serves its malloc, and
// every option as Mallard stores it; the exit report (if an option asked for one) follows at exit.
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "mallard/mallard.h"

int main() {
  printf("secure=%lu uid=%d euid=%d\n", getauxval(AT_SECURE), static_cast<int>(getuid()),
         static_cast<int>(geteuid()));
  mallard_stats before;
  mallard_get_stats(&before);
  void* volatile p = malloc(100000);
  mallard_stats after;
  mallard_get_stats(&after);
  printf("mallard_is_malloc=%d\n", after.bytes_in_use >= before.bytes_in_use + 100000 ? 1 : 0);
  free(p);
  static const char* const kNames[] = {
      "arena_max", "mmap_threshold", "mmap_max",   "trim_threshold", "top_pad",
      "decay_ms",  "dirty_max",      "purge",      "heap_source",    "background_purge",
      "report",    "report_fd",      "report_pid", "check",          "verbose",
      "mxfast"};
  printf("options:");
  for (const char* name : kNames) printf(" %s=%ld", name, mallard_option_get(name));
  printf("\n");
  return 0;
}
