/* fastpath.c: fixed work for callgrind instruction counts.
 *   fastpath same N [none]     N small malloc/free pairs on one thread, sizes cycling over
 *                              16..128 B
 *   fastpath one N [none]      N pairs of one size (64 B)
 *   fastpath mixed1k N [none]  N pairs cycling over 16 sizes from 16 B to 1 KiB
 *   fastpath empty N [none]    N pairs of 2000 B, a size class nothing else here allocates:
 *                              every free leaves the block's page empty, so this measures the
 *                              allocator's page turnover (what it does with an emptied page and
 *                              how it gets one back), not its fast path
 *   fastpath cross N [none]    N small blocks allocated on the main thread and freed on a second
 *                              thread, in batches handed over with semaphores (blocking, so
 *                              valgrind's serialised threads never spin)
 * With "none", malloc/free are replaced by empty functions, which measures the harness alone.
 * Running it for two values of N and taking the difference cancels start-up costs. Except in
 * mode empty, a few blocks of every size used stay live throughout (keep_live), so no allocator
 * sees a page go empty on each free (that would measure its page-retire slow path, not its fast
 * path). */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 256, LIVE = 64 };
static const size_t sizes[8] = {16, 24, 32, 48, 64, 80, 96, 128};
static const size_t one_size[1] = {64};
static const size_t mixed_sizes[16] = {16,  24,  32,  48,  64,  96,  128, 160,
                                       192, 256, 320, 384, 512, 640, 768, 1024};
/* Larger than every size above and than their allocators' size classes (no allocator rounds
 * 1 KiB up to 2000 B), so no block of its class is live while mode empty runs. */
static const size_t empty_size[1] = {2000};

static char* batch[BATCH];
static sem_t full, empty;
static long batches;
static volatile unsigned long sink;

static char dummy_block[1024];
static void* dummy_malloc(size_t size) {
  (void)size;
  return dummy_block;
}
static void dummy_free(void* p) {
  (void)p;
}

/* Called through these pointers in both modes, so the harness cost is the same. */
static void* (*volatile alloc_fn)(size_t) = malloc;
static void (*volatile free_fn)(void*) = free;

static void keep_live(void) {
  static char* live[8 + 16][LIVE];
  for (int k = 0; k < LIVE; k++) {
    for (int s = 0; s < 8; s++) live[s][k] = (char*)malloc(sizes[s]);
    for (int s = 0; s < 16; s++) live[8 + s][k] = (char*)malloc(mixed_sizes[s]);
  }
  for (int s = 0; s < 8 + 16; s++) live[s][LIVE - 1][0] = 1;
  sink += (unsigned long)live[8 + 15][LIVE - 1][0];
}

/* n pairs on this thread, of the sizes size_list[i & mask]. */
static void pairs(long n, const size_t* size_list, long mask) {
  for (long i = 0; i < n; i++) {
    char* p = (char*)alloc_fn(size_list[i & mask]);
    p[0] = (char)i;
    sink += (unsigned char)p[0];
    free_fn(p);
  }
}

static void* consumer(void* arg) {
  (void)arg;
  for (long b = 0; b < batches; b++) {
    sem_wait(&full);
    for (int i = 0; i < BATCH; i++) free_fn(batch[i]);
    sem_post(&empty);
  }
  return NULL;
}

static long cross(long n) {
  pthread_t t;
  batches = n / BATCH;
  sem_init(&full, 0, 0);
  sem_init(&empty, 0, 0);
  pthread_create(&t, NULL, consumer, NULL);
  for (long b = 0; b < batches; b++) {
    for (int i = 0; i < BATCH; i++) {
      batch[i] = (char*)alloc_fn(sizes[i & 7]);
      batch[i][0] = (char)i;
    }
    sem_post(&full);
    sem_wait(&empty);
  }
  pthread_join(t, NULL);
  return batches * BATCH;
}

int main(int argc, char** argv) {
  const char* usage = "usage: fastpath same|one|mixed1k|empty|cross N [none]\n";
  if (argc < 3) {
    fputs(usage, stderr);
    return 2;
  }
  const char* mode = argv[1];
  long n = atol(argv[2]);
  if (argc > 3 && strcmp(argv[3], "none") == 0) {
    alloc_fn = dummy_malloc;
    free_fn = dummy_free;
  }
  keep_live();
  if (strcmp(mode, "same") == 0)
    pairs(n, sizes, 7);
  else if (strcmp(mode, "one") == 0)
    pairs(n, one_size, 0);
  else if (strcmp(mode, "mixed1k") == 0)
    pairs(n, mixed_sizes, 15);
  else if (strcmp(mode, "empty") == 0)
    pairs(n, empty_size, 0);
  else if (strcmp(mode, "cross") == 0)
    n = cross(n);
  else {
    fputs(usage, stderr);
    return 2;
  }
  printf("result fastpath mode=%s pairs=%ld\n", mode, n);
  return 0;
}
