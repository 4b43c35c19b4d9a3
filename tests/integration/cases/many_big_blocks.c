/* many_big_blocks.c: found by review of issue 9. 80000 live blocks of 200000 bytes (above the
 * mmap threshold), one byte touched in each: with glibc every one succeeds (its mmapped chunks
 * merge into few mappings); Mallard's direct mappings are 4 MiB-aligned and never merge, and at
 * vm.max_map_count (65530) malloc returned NULL with memory to spare. Expected: "RESULT: PASS". */
#include "common.h"
#include <errno.h>

#define N 80000
static char *blocks[N];

int main(void) {
  int failed = 0, first = -1;
  for (int i = 0; i < N; ++i) {
    blocks[i] = malloc(200000);
    if (blocks[i] == NULL) {
      if (first < 0) first = i;
      ++failed;
      continue;
    }
    blocks[i][i % 200000] = 1;
  }
  void *small = malloc(64); /* and the program can still allocate */
  for (int i = 0; i < N; ++i) free(blocks[i]);
  if (failed || small == NULL) {
    RESULT("FAIL", "%d of %d malloc(200000) returned NULL, the first at #%d; malloc(64) %s", failed, N,
           first, small ? "ok" : "NULL");
    return 1;
  }
  free(small);
  RESULT("PASS", "%d blocks of 200000 bytes live at once", N);
  return 0;
}
