/* report_content.c: a program whose memory the exit report must explain (issue 13, part 2):
 * one 600 MiB block of which only 96 MiB is touched (pages allocated, not resident), 64 MiB of
 * anonymous memory it maps and touches itself (resident outside Mallard), and 40k small blocks
 * of 1000 bytes, all live at the program's peak, all freed before it exits. It makes allocator
 * calls for a while at the peak (slow paths, where the peak snapshot is taken).
 * The small blocks add a quarter to the RSS: a peak snapshot needs RSS 1/8 above the last one
 * (stats/peak.hpp), and with 20k blocks (+12%) one taken just before them (a slow path when the
 * first small block was allocated) stood for the peak. The time at the peak, 1 s, outlasts the
 * pause after a snapshot slowed by a loaded machine (20 times its duration: with two soak tests
 * running, 300 ms at the peak passed with no check in 1 run of 6). Both made the test fail
 * under `ctest -j2` with other tests running, before and after this change alike.
 * Usage: report_content (run under `mallard run --report=json`) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MiB (1024UL * 1024UL)

int main(void) {
  char* big = malloc(600 * MiB);
  if (big == NULL) return 1;
  memset(big, 1, 96 * MiB);
  char* own = mmap(NULL, 64 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (own == MAP_FAILED) return 1;
  memset(own, 2, 64 * MiB);
  static void* small[40000];
  for (int i = 0; i < 40000; i++) {
    small[i] = malloc(1000);
    if (small[i] == NULL) return 1;
    memset(small[i], 3, 1000);
  }
  /* At the peak for 1 s, with slow paths (large blocks) every millisecond. */
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < 1000; i++) {
    free(malloc(300 * 1024));
    nanosleep(&ms, NULL);
  }
  for (int i = 0; i < 40000; i++) free(small[i]);
  munmap(own, 64 * MiB);
  free(big);
  puts("report_content: done");
  return 0;
}
