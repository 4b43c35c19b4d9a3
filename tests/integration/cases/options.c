// From ../shared/cases/dropin/options.c (option values that overflow); run by expect_output.sh in
// tests/integration/CMakeLists.txt with a bad mmap_threshold in MALLARD_OPTIONS, MALLOC_*_ and
// GLIBC_TUNABLES: one warning, the default kept, malloc(16) blocks 16 bytes apart in a page.
// Prints the options as stored. Run with MALLARD_OPTIONS=mmap_threshold=17179869184g (and
// 8589934592g). Expected: a warning, the default kept, malloc(16) blocks 16 bytes apart in a page.
// Build: cc -O2 -fno-builtin -I include options.c -L build/release -lmallard
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "mallard/mallard.h"
int main(void) {
  printf("mmap_threshold=%ld dirty_max=%ld decay_ms=%ld arena_max=%ld\n", mallard_option_get("mmap_threshold"),
         mallard_option_get("dirty_max"), mallard_option_get("decay_ms"), mallard_option_get("arena_max"));
  char* a = malloc(16); char* b = malloc(16); char* c = malloc(16);
  printf("malloc(16) x3: %p %p %p usable=%zu\n", (void*)a, (void*)b, (void*)c, mallard_malloc_usable_size(a));
  return 0;
}
