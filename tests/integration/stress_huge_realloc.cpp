/* stress_huge_realloc: huge blocks resized with mremap while other threads map huge blocks of
 * their own. Two threads shrink, grow and move huge blocks with realloc; two others allocate huge
 * blocks (often in the ranges the first ones just gave back), check each with
 * malloc_usable_size and free it. Before issue 9 the resizing thread cleared the segment map of
 * the range it gave up only after the kernel had freed it, so it could erase the entries of a
 * block another thread had mapped there meanwhile: that block was then reported as "not
 * allocated by mallard" and the process aborted. Run against libmallard_race_delays.so with
 * MALLARD_RACE_DELAY_US=N, the resizing thread waits between the mremap and the map update.
 * Usage: stress_huge_realloc LIB [rounds=3000] */
#include "it_common.h"

#include <malloc.h>
#include <pthread.h>

#include <atomic>

namespace {

std::atomic<bool> g_stop{false};
long g_rounds = 3000;

void* resizer(void* arg) {
  it_rng r{reinterpret_cast<uintptr_t>(arg)};
  for (long i = 0; i < g_rounds; ++i) {
    size_t n = r.range(4, 12) * IT_MiB + r.below(IT_MiB);
    auto* p = static_cast<unsigned char*>(malloc(n));
    if (p == nullptr) it_fail("malloc(%zu) failed", n);
    p[0] = 7;
    for (int k = 0; k < 4; ++k) {  // shrink in place, grow (in place or moved)
      size_t m = k % 2 == 0 ? r.range(256, 2048) * 1024 : r.range(4, 24) * IT_MiB;
      auto* q = static_cast<unsigned char*>(realloc(p, m));
      if (q == nullptr) it_fail("realloc(%zu) failed", m);
      if (q[0] != 7) it_fail("realloc lost the block's contents");
      if (malloc_usable_size(q) < m) it_fail("realloc returned a short block");
      p = q;
    }
    free(p);
  }
  return nullptr;
}

void* mapper(void* arg) {
  it_rng r{reinterpret_cast<uintptr_t>(arg)};
  void* live[8] = {};
  size_t sizes[8] = {};
  while (!g_stop.load(std::memory_order_relaxed)) {
    size_t i = r.below(8);
    if (live[i] != nullptr) {
      // Resolves the block through the segment map: aborts if its entries were erased.
      if (malloc_usable_size(live[i]) < sizes[i]) it_fail("a live huge block lost its size");
      free(live[i]);
    }
    sizes[i] = r.range(256, 4096) * 1024;
    live[i] = malloc(sizes[i]);
    if (live[i] == nullptr) it_fail("malloc(%zu) failed", sizes[i]);
  }
  for (size_t i = 0; i < 8; ++i) {
    if (live[i] != nullptr && malloc_usable_size(live[i]) < sizes[i])
      it_fail("a live huge block lost its size");
    free(live[i]);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "stress_huge_realloc");
  if (argc > a) g_rounds = atol(argv[a]);
  // Every block of 256 KiB and more is a direct mapping, and stays one (the threshold is frozen).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  pthread_t resizers[2], mappers[2];
  for (uintptr_t i = 0; i < 2; ++i) pthread_create(&resizers[i], nullptr, resizer, (void*)(i + 1));
  for (uintptr_t i = 0; i < 2; ++i) pthread_create(&mappers[i], nullptr, mapper, (void*)(i + 11));
  for (pthread_t t : resizers) pthread_join(t, nullptr);
  g_stop.store(true);
  for (pthread_t t : mappers) pthread_join(t, nullptr);
  printf("stress_huge_realloc: OK (%ld rounds x 2 threads)\n", g_rounds);
  return 0;
}
