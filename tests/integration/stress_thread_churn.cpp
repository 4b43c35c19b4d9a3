/* stress_thread_churn: thousands of short-lived threads (default 12 rounds x 250). Each thread
 * allocates a few blocks, frees some itself and hands the rest to the main thread, which checks and
 * frees them after the thread has exited (so they belong to a dead thread's heap). RSS is sampled
 * after every round: per-thread state that is never reclaimed shows up as RSS that keeps growing.
 * Requires RSS after each round >= 3 to stay <= 2 x RSS(round 2) + 16 MiB.
 * Usage: stress_thread_churn LIB [rounds=12] [threads_per_round=250] */
#include "it_common.h"

#include <pthread.h>

namespace {

struct Block {
  void* p;
  size_t size;
};

struct Handoff { /* malloc'ed by the thread, freed by main */
  int n;
  Block blocks[24];
};

constexpr int kWave = 50; /* threads alive at once */

void* worker(void* arg) {
  it_rng r{(uint64_t)(uintptr_t)arg};
  Block mine[24];
  int n = (int)r.range(4, 24);
  for (int i = 0; i < n; i++) {
    size_t c = r.below(100), size;
    if (c < 70)
      size = r.range(8, 2048);
    else if (c < 97)
      size = r.range(2049, 64 * 1024);
    else
      size = r.range(64 * 1024, 512 * 1024);
    void* p = malloc(size);
    if (p == nullptr) it_fail("malloc(%zu) returned NULL in thread", size);
    it_fill(p, size);
    mine[i] = Block{p, size};
  }
  Handoff* h = (Handoff*)malloc(sizeof(Handoff));
  if (h == nullptr) it_fail("malloc(Handoff) returned NULL");
  h->n = 0;
  for (int i = 0; i < n; i++) {
    if (r.below(2)) {
      it_check(mine[i].p, mine[i].size, "free in thread");
      free(mine[i].p);
    } else {
      h->blocks[h->n++] = mine[i];
    }
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "stress_thread_churn");
  int rounds = (int)it_arg(argc, argv, a, 12);
  int per_round = (int)it_arg(argc, argv, a + 1, 250);
  IT_CHECK(rounds >= 3 && per_round >= 1, "need rounds >= 3 and threads_per_round >= 1");
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  size_t rss2 = 0, worst = 0;
  unsigned long handed = 0, seed = 1;
  for (int round = 1; round <= rounds; round++) {
    for (int done = 0; done < per_round; done += kWave) {
      int wave = per_round - done < kWave ? per_round - done : kWave;
      pthread_t tid[kWave];
      for (int i = 0; i < wave; i++) {
        int rc = pthread_create(&tid[i], &attr, worker, (void*)(uintptr_t)seed++);
        IT_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
      }
      for (int i = 0; i < wave; i++) {
        void* ret;
        pthread_join(tid[i], &ret);
        Handoff* h = (Handoff*)ret;
        for (int j = 0; j < h->n; j++) {
          it_check(h->blocks[j].p, h->blocks[j].size, "free in main of a dead thread's block");
          free(h->blocks[j].p);
        }
        handed += (unsigned long)h->n;
        free(h);
      }
    }
    size_t rss = it_rss();
    printf("round %2d: %d threads, RSS %.1f MiB\n", round, per_round, (double)rss / IT_MiB);
    if (round == 2) rss2 = rss;
    if (round > 2 && rss > worst) worst = rss;
  }
  pthread_attr_destroy(&attr);
  size_t limit = 2 * rss2 + 16 * IT_MiB;
  IT_CHECK(worst <= limit,
           "RSS keeps growing: %.1f MiB after round 2, up to %.1f MiB later "
           "(limit %.1f MiB)",
           (double)rss2 / IT_MiB, (double)worst / IT_MiB, (double)limit / IT_MiB);
  printf(
      "stress_thread_churn: OK: %d threads, %lu blocks freed by main, RSS %.1f -> max %.1f MiB\n",
      rounds * per_round, handed, (double)rss2 / IT_MiB, (double)worst / IT_MiB);
  return 0;
}
