/* stress_steal: a thread that needs pages takes full pages of an idle thread whose blocks have
 * largely come back by remote frees (ThreadHeap::give_full_page), while that thread wakes up and
 * frees its own blocks into the same pages. Each round: an owner thread allocates blocks of one
 * size class until several pages are full; the main thread frees half of them (remote frees); then,
 * at the same time, the owner frees a quarter (its own frees into full pages, which race with
 * the steal: the owner read its tag before the thief changed it) and a thief thread allocates the
 * same class (it takes the owner's pages) and a few blocks of other classes. Every block is
 * filled with a pattern and checked before it is freed: a page that two heaps edit at once hands
 * a block out twice, and the fills of its two holders overwrite each other; corrupted lists abort
 * in the allocator's own checks. Meant to run with the race windows widened
 * (libmallard_race_delays.so) and the heap checker on. Usage: stress_steal LIB [rounds=400] */
#include "it_common.h"

#include <pthread.h>

#include <atomic>

namespace {

constexpr size_t kSize = 208;    /* one small size class (224 B), rarely used by libc itself */
constexpr int kBlocks = 292 * 6; /* six 64 KiB pages of 224-byte blocks */
constexpr int kThief = 600;      /* blocks the thief allocates (and keeps until it checks them) */
constexpr size_t kOtherSizes[4] = {48, 3000, 700, 9000};

void* g_blocks[kBlocks];
std::atomic<int> g_phase;

void* owner(void*) {
  for (int i = 0; i < kBlocks; i++) {
    g_blocks[i] = malloc(kSize);
    if (g_blocks[i] == nullptr) it_fail("malloc(%zu) failed in the owner", kSize);
    it_fill(g_blocks[i], kSize);
  }
  g_phase.store(1, std::memory_order_release);
  while (g_phase.load(std::memory_order_acquire) != 2) {
  }
  for (int i = 0; i < kBlocks;
       i += 4) { /* its own frees, into pages that may be gone to the thief */
    it_check(g_blocks[i], kSize, "owner's block");
    free(g_blocks[i]);
  }
  void* more[64];
  for (int i = 0; i < 64; i++) {
    more[i] = malloc(kSize);
    if (more[i] == nullptr) it_fail("malloc(%zu) failed in the owner", kSize);
    it_fill(more[i], kSize);
  }
  for (int i = 0; i < 64; i++) {
    it_check(more[i], kSize, "owner's later block");
    free(more[i]);
  }
  return nullptr;
}

void* thief(void*) {
  static thread_local void* mine[kThief];
  void* other[8];
  g_phase.store(2, std::memory_order_release);
  for (int i = 0; i < kThief; i++) {
    mine[i] = malloc(kSize);
    if (mine[i] == nullptr) it_fail("malloc(%zu) failed in the thief", kSize);
    it_fill(mine[i], kSize);
  }
  for (int i = 0; i < 8; i++) {
    other[i] = malloc(kOtherSizes[i % 4]);
    if (other[i] == nullptr) it_fail("malloc(%zu) failed in the thief", kOtherSizes[i % 4]);
    it_fill(other[i], kOtherSizes[i % 4]);
  }
  for (int i = 0; i < 8; i++) {
    it_check(other[i], kOtherSizes[i % 4], "thief's block of another class");
    free(other[i]);
  }
  for (int i = 0; i < kThief; i++) {
    it_check(mine[i], kSize, "thief's block");
    free(mine[i]);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "stress_steal");
  long rounds = it_arg(argc, argv, a, 400);
  for (long r = 0; r < rounds; r++) {
    g_phase.store(0, std::memory_order_relaxed);
    pthread_t o, t;
    if (pthread_create(&o, nullptr, owner, nullptr) != 0) it_fail("pthread_create failed");
    while (g_phase.load(std::memory_order_acquire) != 1) {
    }
    /* Remote frees: half of each page comes back while the owner idles. */
    for (int i = 0; i < kBlocks; i++) {
      if (i % 4 == 1 || i % 4 == 2) {
        it_check(g_blocks[i], kSize, "block freed by the main thread");
        free(g_blocks[i]);
      }
    }
    if (pthread_create(&t, nullptr, thief, nullptr) != 0) it_fail("pthread_create failed");
    pthread_join(t, nullptr);
    pthread_join(o, nullptr);
    for (int i = 3; i < kBlocks; i += 4) {
      it_check(g_blocks[i], kSize, "block left to the end");
      free(g_blocks[i]);
    }
  }
  printf("stress_steal: OK: %ld rounds\n", rounds);
  return 0;
}
