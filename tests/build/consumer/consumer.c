/* consumer.c: a C program built against an installed Mallard (pkg-config, find_package,
 * add_subdirectory; tests/build/install_test.sh). It checks that it runs with the version it was
 * built for and that its malloc is Mallard's: a block it allocates appears in Mallard's
 * statistics. Prints "mallard VERSION" on success. argv[1]: the version expected. */
#include <mallard/mallard.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void* volatile keep; /* the block escapes: the compiler may not drop malloc/free */

int main(int argc, char** argv) {
  const char* want = argc > 1 ? argv[1] : MALLARD_VERSION_STRING;
  if (strcmp(mallard_version(), want) != 0 || strcmp(MALLARD_VERSION_STRING, want) != 0) {
    fprintf(stderr, "version: library %s, header %s, expected %s\n", mallard_version(),
            MALLARD_VERSION_STRING, want);
    return 1;
  }
  static mallard_stats before, after;
  const size_t size = (size_t)1 << 20;
  mallard_get_stats(&before);
  keep = malloc(size);
  if (keep == NULL) return 1;
  memset(keep, 1, size);
  mallard_get_stats(&after);
  if (after.bytes_in_use < before.bytes_in_use + size) {
    fprintf(stderr, "malloc is not Mallard's: bytes in use %zu -> %zu\n", before.bytes_in_use,
            after.bytes_in_use);
    return 1;
  }
  free(keep);
  printf("mallard %s\n", mallard_version());
  return 0;
}
