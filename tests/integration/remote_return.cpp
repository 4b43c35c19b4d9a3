/* remote_return: memory freed by other threads returns while its owner idles (issue 11).
 * A producer thread allocates 200k blocks of 1 KiB and writes them; the main thread frees them
 * all while the producer stays alive and makes no further call (its pages are on its full list,
 * with every block back on their remote-free lists: only the owner used to collect those).
 *   free   RSS right after the last free: within 16 MiB of the start (nothing runs later to
 *          give it back: the frees must)
 *   trim   as free, then malloc_trim(0) from the main thread: within 8 MiB of the start
 * Usage: remote_return LIB free|trim [blocks=200000] */
#include "it_common.h"

#include <malloc.h>
#include <pthread.h>

namespace {

void** g_blocks;
size_t g_count;
pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
int g_stage;  // 1: allocated; 2: the producer may exit

void* producer(void*) {
  for (size_t i = 0; i < g_count; i++) {
    g_blocks[i] = malloc(1024);
    if (g_blocks[i] == nullptr) it_fail("malloc(1024) failed after %zu blocks", i);
    memset(g_blocks[i], (int)(i & 0x7f) | 1, 1024);
  }
  pthread_mutex_lock(&g_mutex);
  g_stage = 1;
  pthread_cond_broadcast(&g_cond);
  while (g_stage != 2) pthread_cond_wait(&g_cond, &g_mutex);  // idle: no allocator call
  pthread_mutex_unlock(&g_mutex);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "remote_return");
  if (a >= argc) it_fail("usage: remote_return LIB free|trim [blocks]");
  bool trim = strcmp(argv[a], "trim") == 0;
  if (!trim && strcmp(argv[a], "free") != 0) it_fail("unknown mode '%s'", argv[a]);
  g_count = (size_t)it_arg(argc, argv, a + 1, 200000);
  g_blocks = (void**)calloc(g_count, sizeof(void*)); /* part of the baseline */
  if (g_blocks == nullptr) it_fail("calloc of the block table failed");
  memset(g_blocks, 0, g_count * sizeof(void*));
  size_t base = it_rss();
  pthread_t t;
  if (pthread_create(&t, nullptr, producer, nullptr) != 0) it_fail("pthread_create failed");
  pthread_mutex_lock(&g_mutex);
  while (g_stage != 1) pthread_cond_wait(&g_cond, &g_mutex);
  pthread_mutex_unlock(&g_mutex);
  size_t peak = it_rss();
  printf("producer allocated %zu blocks of 1 KiB: RSS %.1f -> %.1f MiB\n", g_count, it_mib(base),
         it_mib(peak));
  for (size_t i = 0; i < g_count; i++) {
    unsigned char* b = (unsigned char*)g_blocks[i];
    if (b[0] != b[1023] || (b[0] & 1) == 0) it_fail("block %p corrupted", (void*)b);
    free(b);
  }
  size_t after_free = it_rss();
  printf("after the main thread's frees (producer idle): RSS %.1f MiB (start %.1f)\n",
         it_mib(after_free), it_mib(base));
  if (after_free > base + 16 * IT_MiB)
    it_fail("RSS %.1f MiB right after the frees, more than 16 MiB over the %.1f MiB start",
            it_mib(after_free), it_mib(base));
  if (trim) {
    malloc_trim(0);
    size_t rss = it_rss();
    printf("after malloc_trim(0) from the main thread: RSS %.1f MiB\n", it_mib(rss));
    if (rss > base + 8 * IT_MiB)
      it_fail("malloc_trim(0) left RSS at %.1f MiB, more than 8 MiB over the %.1f MiB start",
              it_mib(rss), it_mib(base));
  }
  pthread_mutex_lock(&g_mutex);
  g_stage = 2;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_mutex);
  pthread_join(t, nullptr);
  free(g_blocks);
  printf("remote_return: OK (%s)\n", trim ? "trim" : "free");
  return 0;
}
