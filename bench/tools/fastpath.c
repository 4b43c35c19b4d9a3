/* fastpath.c: fixed work for callgrind instruction counts.
 *   fastpath same N [none]   N small malloc/free pairs on one thread
 *   fastpath cross N [none]  N small blocks allocated on the main thread and freed on a second
 *                            thread, in batches handed over with semaphores (blocking, so
 *                            valgrind's serialised threads never spin)
 * With "none", malloc/free are replaced by empty functions, which measures the harness alone.
 * Running it for two values of N and taking the difference cancels start-up costs. Sizes cycle
 * over 16..128 B. A few blocks of every size stay live throughout, so no allocator sees a page
 * go empty on each free (that would measure its page-retire slow path, not its fast path). */
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 256 };
static const size_t sizes[8] = {16, 24, 32, 48, 64, 80, 96, 128};

static char* batch[BATCH];
static sem_t full, empty;
static long batches;
static volatile unsigned long sink;

static char dummy_block[128];
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
  static char* live[8][64];
  for (int k = 0; k < 64; k++)
    for (int s = 0; s < 8; s++) live[s][k] = (char*)malloc(sizes[s]);
  sink += (unsigned long)live[7][63][0];
}

static void same(long n) {
  for (long i = 0; i < n; i++) {
    char* p = (char*)alloc_fn(sizes[i & 7]);
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
  if (argc < 3) {
    fprintf(stderr, "usage: fastpath same|cross N [none]\n");
    return 2;
  }
  long n = atol(argv[2]);
  if (argc > 3 && strcmp(argv[3], "none") == 0) {
    alloc_fn = dummy_malloc;
    free_fn = dummy_free;
  }
  keep_live();
  if (strcmp(argv[1], "same") == 0)
    same(n);
  else
    n = cross(n);
  printf("result fastpath mode=%s pairs=%ld\n", argv[1], n);
  return 0;
}
