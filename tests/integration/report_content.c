/* report_content.c: a program whose memory the exit report must explain (issue 13, part 2):
 * one 600 MiB block of which only 96 MiB is touched (pages allocated, not resident), 64 MiB of
 * anonymous memory it maps and touches itself (resident outside Mallard), and 20k small blocks
 * of 1000 bytes, all live at the program's peak, all freed before it exits. It makes allocator
 * calls for a while at the peak (slow paths, where the peak snapshot is taken).
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
  static void* small[20000];
  for (int i = 0; i < 20000; i++) {
    small[i] = malloc(1000);
    if (small[i] == NULL) return 1;
    memset(small[i], 3, 1000);
  }
  /* At the peak for 100 ms, with slow paths (large blocks) every millisecond. */
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < 100; i++) {
    free(malloc(300 * 1024));
    nanosleep(&ms, NULL);
  }
  for (int i = 0; i < 20000; i++) free(small[i]);
  munmap(own, 64 * MiB);
  free(big);
  puts("report_content: done");
  return 0;
}
