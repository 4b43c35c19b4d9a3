/* growth_limit: heap growth leaves the program the rest of its address-space and data limits.
 * Review finding (issue 10, geometric growth): with 140 MiB of 64 KiB blocks in use, arena growth
 * had reserved 256 MiB, and under `ulimit -v 450000` (or `ulimit -d`) the program's own mmap of
 * 200 MiB then failed, where 4 MiB growth left room for it. Run under prlimit --as/--data.
 * Prints "RESULT: PASS" when the program's own mapping succeeds. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

int main(void) {
  const size_t heap_mib = 140, map_mib = 200;
  for (size_t i = 0; i < heap_mib * 16; ++i) {
    char* p = malloc(65536);
    if (p == NULL) {
      printf("malloc failed at %zu MiB\nRESULT: FAIL\n", i / 16);
      return 1;
    }
    p[0] = 1;
  }
  void* m = mmap(NULL, map_mib << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  printf("heap %zu MiB in use, the program's own mmap of %zu MiB: %s\n", heap_mib, map_mib,
         m == MAP_FAILED ? "failed" : "ok");
  printf("RESULT: %s\n", m == MAP_FAILED ? "FAIL" : "PASS");
  return m == MAP_FAILED;
}
