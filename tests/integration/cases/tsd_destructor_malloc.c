// From ../shared/cases/dropin/tsd_destructor_malloc.c; run by expect_output.sh in tests/integration/CMakeLists.txt.
// A later pthread key destructor allocates in every round and re-arms its key. Expected after
// 1000 joined threads: threads_live=1 and metadata/small pages back near the baseline.
// Build: cc -O2 -fno-builtin -I include tsd_destructor_malloc.c -L build/release -lmallard -lpthread
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "mallard/mallard.h"
static pthread_key_t key;
static void* volatile sink;
static void dtor(void* v) {
  intptr_t round = (intptr_t)v;
  sink = malloc(32);                      /* e.g. logging or a final record */
  free(sink);
  if (round < 4) pthread_setspecific(key, (void*)(round + 1));
}
static void* body(void* a) { (void)a; free(malloc(48)); pthread_setspecific(key, (void*)1); return NULL; }
int main(void) {
  sink = malloc(1); free(sink);            /* Mallard initialised: its exit key is created first */
  pthread_key_create(&key, dtor);
  for (int i = 0; i < 1000; ++i) { pthread_t t; pthread_create(&t, NULL, body, NULL); pthread_join(t, NULL); }
  mallard_stats s; mallard_get_stats(&s);
  printf("after 1000 joined threads: threads_live=%zu threads_total=%zu metadata=%zu KiB small pages in use=%zu KiB\n",
         s.threads_live, s.threads_total, s.bytes_metadata >> 10, (s.bytes_small + s.bytes_free_in_pages) >> 10);
  return 0;
}
