/* heap_layout.cpp LIB MODE: the seed articles' mechanisms, seen from outside the allocator.
 *   brk_heap           the first small malloc lives in the process's [heap] (brk), as glibc's
 *   mmap_heap          with heap_source=mmap it does not
 *   brk_blocked        a mapping placed where the break would grow: arena 0 falls back to mmap
 *   early_init         allocation from a constructor and from a thread started before main
 *   dynamic_threshold  a freed huge block raises the mmap threshold (up to 32 MiB), as glibc's
 *   huge_realloc       huge blocks grow and shrink with mremap, keeping their contents
 *   arena_cap          with MALLOC_ARENA_MAX=2, 6 concurrent threads share 2 arenas
 *   arena_affinity     the default cap is 8 x the CPUs this process may use (run under taskset)
 *   purger_from_pages  with the opt-in purger (background_purge=1, set by CTest), allocating
 *                      and freeing small blocks in volume while the purger thread starts.
 *                      Regression: it was started under the heap's slow-path lock, and
 *                      pthread_create's own calloc came back into that heap: a hang. It now
 *                      starts only on an allocation slow path, outside every lock.
 * Mallard's own figures come from mallard_get_stats, looked up with dlsym. */
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <initializer_list>

#include "it_common.h"
#include "mallard/mallard.h"

namespace {

struct Range {
  uintptr_t lo = 0, hi = 0;
};

Range heap_range() {
  Range r;
  FILE* f = fopen("/proc/self/maps", "r");
  char line[512];
  while (f != nullptr && fgets(line, sizeof line, f) != nullptr) {
    if (strstr(line, "[heap]") != nullptr) sscanf(line, "%lx-%lx", &r.lo, &r.hi);
  }
  if (f != nullptr) fclose(f);
  return r;
}

bool in_heap(const void* p) {
  Range r = heap_range();
  auto a = reinterpret_cast<uintptr_t>(p);
  return a >= r.lo && a < r.hi;
}

mallard_stats stats() {
  auto get = reinterpret_cast<int (*)(mallard_stats*)>(dlsym(RTLD_DEFAULT, "mallard_get_stats"));
  IT_CHECK(get != nullptr, "mallard_get_stats not found: is Mallard preloaded?");
  mallard_stats s;
  get(&s);
  return s;
}

void* volatile g_sink;

// ---- early_init: a constructor and a thread that run before main ----
char* g_early_block = nullptr;
char* g_early_thread_block = nullptr;

void* early_thread(void*) {
  g_early_thread_block = static_cast<char*>(malloc(3000));
  if (g_early_thread_block != nullptr) memset(g_early_thread_block, 'T', 3000);
  return nullptr;
}

__attribute__((constructor)) void before_main() {
  g_early_block = static_cast<char*>(malloc(777));
  if (g_early_block != nullptr) memset(g_early_block, 'C', 777);
  pthread_t t;
  if (pthread_create(&t, nullptr, early_thread, nullptr) == 0) pthread_join(t, nullptr);
}

void early_init() {
  IT_CHECK(g_early_block != nullptr && g_early_thread_block != nullptr, "early allocations failed");
  for (int i = 0; i < 777; ++i) IT_CHECK(g_early_block[i] == 'C', "constructor block corrupted");
  for (int i = 0; i < 3000; ++i) IT_CHECK(g_early_thread_block[i] == 'T', "thread block corrupted");
  free(g_early_block);
  free(g_early_thread_block);
  auto check = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "mallard_check_heap"));
  IT_CHECK(check != nullptr && check() == 0, "heap check");
}

void brk_heap(bool expect_brk) {
  void* p = malloc(100);
  g_sink = p;
  Range r = heap_range();
  if (expect_brk) {
    IT_CHECK(r.lo != 0, "no [heap] line in /proc/self/maps after a small malloc");
    IT_CHECK(in_heap(p), "small block %p is not in [heap] %lx-%lx", p, r.lo, r.hi);
    IT_CHECK(stats().bytes_brk > 0, "stats report no brk memory");
  } else {
    IT_CHECK(!in_heap(p), "heap_source=mmap, yet block %p is in [heap]", p);
    IT_CHECK(stats().bytes_brk == 0, "heap_source=mmap, yet stats report brk memory");
  }
  free(p);
}

void brk_blocked() {
  void* volatile first = malloc(100);
  IT_CHECK(in_heap(first), "first block not in [heap]");
  // Block the break: a page just above where the next brk segment would start.
  auto brk_now = reinterpret_cast<uintptr_t>(sbrk(0));
  uintptr_t seg = 4u << 20;
  uintptr_t next = (brk_now + seg - 1) & ~(seg - 1);
  void* wall = mmap(reinterpret_cast<void*>(next + 8192), 4096, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  IT_CHECK(wall != MAP_FAILED, "cannot place the blocking mapping: %s", strerror(errno));
  size_t brk_before = stats().bytes_brk;
  // 40 MiB of small blocks needs new segments: they must come from mmap now.
  enum { kCount = 40 * 1024 };
  static void* blocks[kCount];
  size_t outside = 0;
  for (int i = 0; i < kCount; ++i) {
    blocks[i] = malloc(1000);
    IT_CHECK(blocks[i] != nullptr, "malloc failed after brk was blocked");
    memset(blocks[i], i & 0xff, 1000);
    if (i % 512 == 0 && !in_heap(blocks[i])) ++outside;
  }
  IT_CHECK(outside > 0, "no block outside [heap]: brk fallback did not happen");
  IT_CHECK(stats().bytes_brk <= brk_before + (8u << 20), "brk kept growing through the wall");
  for (int i = 0; i < kCount; ++i) free(blocks[i]);
  free(first);
  munmap(wall, 4096);
}

void dynamic_threshold() {
  mallard_stats s0 = stats();
  IT_CHECK(s0.mmap_threshold == 128 * 1024, "initial threshold %zu", s0.mmap_threshold);
  void* big = malloc(1 << 20);
  g_sink = big;  // escapes: the compiler may not elide a malloc/free pair
  IT_CHECK(stats().huge_blocks == s0.huge_blocks + 1, "1 MiB was not a direct mmap");
  free(big);
  mallard_stats s1 = stats();
  IT_CHECK(s1.mmap_threshold >= (1u << 20), "threshold did not rise: %zu", s1.mmap_threshold);
  void* again = malloc(1 << 20);
  g_sink = again;
  IT_CHECK(stats().huge_blocks == s1.huge_blocks, "1 MiB still mmapped after the rise");
  free(again);
  void* giant = malloc(64u << 20);  // above the 32 MiB ceiling of the dynamic rule
  g_sink = giant;
  IT_CHECK(stats().huge_blocks == s1.huge_blocks + 1, "64 MiB was not a direct mmap");
  free(giant);
  IT_CHECK(stats().mmap_threshold <= (32u << 20), "threshold above 32 MiB");
}

void huge_realloc() {
  size_t n = 64u << 20;
  auto* p = static_cast<unsigned char*>(malloc(n));
  for (size_t i = 0; i < n; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
  for (size_t next : {size_t{256} << 20, size_t{8} << 20, size_t{300} << 20}) {
    auto* q = static_cast<unsigned char*>(realloc(p, next));
    IT_CHECK(q != nullptr, "realloc to %zu failed", next);
    size_t keep = n < next ? n : next;
    for (size_t i = 0; i < keep; i += 4096)
      IT_CHECK(q[i] == static_cast<unsigned char>(i >> 12), "content lost at %zu", i);
    for (size_t i = 0; i < next; i += 4096) q[i] = static_cast<unsigned char>(i >> 12);
    p = q;
    n = next;
  }
  IT_CHECK(stats().huge_blocks >= 1, "the block is not huge");
  free(p);
}

void* arena_worker(void* arg) {
  auto* go = static_cast<volatile int*>(arg);
  while (*go == 0) {
  }
  for (int i = 0; i < 20000; ++i) {
    void* p = malloc(static_cast<size_t>(i % 900 + 1));
    g_sink = p;  // escapes: the compiler may not elide the pair
    free(p);
  }
  void* keep = malloc(64);  // still alive when the main thread looks at the arenas
  g_sink = keep;
  while (*go == 1) {
  }
  free(keep);
  return nullptr;
}

void arena_cap() {
  volatile int go = 0;
  pthread_t t[6];
  for (auto& th : t)
    IT_CHECK(pthread_create(&th, nullptr, arena_worker, (void*)&go) == 0, "thread");
  go = 1;
  usleep(200000);
  mallard_stats s = stats();
  go = 2;
  for (auto& th : t) pthread_join(th, nullptr);
  IT_CHECK(s.arena_max == 2, "arena_max is %zu, not MALLOC_ARENA_MAX=2", s.arena_max);
  IT_CHECK(s.arenas == 2, "%zu arenas for 7 threads with a cap of 2", s.arenas);
  IT_CHECK(s.threads_live >= 7, "only %zu live thread heaps", s.threads_live);
}

void arena_affinity() {
  cpu_set_t set;
  IT_CHECK(sched_getaffinity(0, sizeof set, &set) == 0, "sched_getaffinity");
  size_t cpus = static_cast<size_t>(CPU_COUNT(&set));
  size_t cap = stats().arena_max;
  IT_CHECK(cap == 8 * cpus, "arena_max %zu, expected 8 x %zu usable CPUs", cap, cpus);
}

void purger_from_pages() {
  enum { kCount = 64 * 1024 };
  static void* blocks[kCount];
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kCount; ++i) {
      blocks[i] = malloc(static_cast<size_t>(256 + (i % 7) * 512));  // ~120 MiB of small pages
      IT_CHECK(blocks[i] != nullptr, "malloc");
      memset(blocks[i], 1, 256);
    }
    for (int i = 0; i < kCount; ++i) free(blocks[i]);
  }
  void* p = malloc(100);  // the allocator still works after the purger started
  g_sink = p;
  free(p);
}

}  // namespace

int main(int argc, char** argv) {
  int i = it_setup(argc, argv, "heap_layout");
  const char* mode = i < argc ? argv[i] : "";
  if (strcmp(mode, "brk_heap") == 0)
    brk_heap(true);
  else if (strcmp(mode, "mmap_heap") == 0)
    brk_heap(false);
  else if (strcmp(mode, "brk_blocked") == 0)
    brk_blocked();
  else if (strcmp(mode, "early_init") == 0)
    early_init();
  else if (strcmp(mode, "dynamic_threshold") == 0)
    dynamic_threshold();
  else if (strcmp(mode, "huge_realloc") == 0)
    huge_realloc();
  else if (strcmp(mode, "arena_cap") == 0)
    arena_cap();
  else if (strcmp(mode, "arena_affinity") == 0)
    arena_affinity();
  else if (strcmp(mode, "purger_from_pages") == 0)
    purger_from_pages();
  else
    it_fail("unknown mode '%s'", mode);
  printf("heap_layout %s: ok\n", mode);
  return 0;
}
