/* c_api_program.c: a plain C program using Mallard through its header, linked (shared or
 * static) rather than preloaded. Checks the standard names and the prefixed API agree. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mallard/mallard.h"

#define CHECK(c)                                                   \
  do {                                                             \
    if (!(c)) {                                                    \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); \
      return 1;                                                    \
    }                                                              \
  } while (0)

static void* thread_main(void* arg) {
  void** slot = arg;
  *slot = malloc(1000);
  return NULL;
}

int main(void) {
  mallard_stats before, after;
  CHECK(mallard_get_stats(&before) == 0);
  char* p = malloc(100);
  CHECK(p != NULL && ((uintptr_t)p % 16) == 0);
  strcpy(p, "mallard");
  CHECK(mallard_malloc_usable_size(p) >= 100);
  CHECK(mallard_get_stats(&after) == 0);
  CHECK(after.bytes_in_use >= before.bytes_in_use + 100);
  free(p);
  void* q = mallard_malloc(1 << 20); /* prefixed and standard names are one allocator */
  CHECK(q != NULL && malloc_usable_size(q) >= (1u << 20));
  free(q);
  void* from_thread = NULL;
  pthread_t t;
  CHECK(pthread_create(&t, NULL, thread_main, &from_thread) == 0);
  pthread_join(t, NULL);
  CHECK(from_thread != NULL);
  free(from_thread);               /* a block of an exited thread */
  volatile size_t huge = SIZE_MAX; /* hidden from the compiler's size checks */
  errno = 0;
  CHECK(malloc(huge) == NULL && errno == ENOMEM);
  CHECK(mallard_check_heap() == 0);
  puts("c_api_program: ok");
  return 0;
}
