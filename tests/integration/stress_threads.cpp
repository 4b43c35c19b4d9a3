/* stress_threads: many threads allocate and free blocks of random sizes (1 B..256 KiB, 1% up to
 * 4 MiB) with random APIs and alignments (posix_memalign / aligned_alloc / memalign, 16 B..64 KiB),
 * hand about half of the blocks to other threads through locked queues to be freed there, and
 * realloc blocks up and down. Every block is filled with a pattern derived from its address and
 * size, checked before free and (prefix) after realloc; malloc_usable_size must cover the request
 * and the whole usable size must be writable.
 * Usage: stress_threads LIB [seconds=3] [threads=8] */
#include "it_common.h"

#include <malloc.h>
#include <pthread.h>

#include <atomic>

namespace {

struct Block {
  void* p;
  size_t size;
};

constexpr size_t kSlots = 256;  /* live blocks per thread */
constexpr size_t kQueue = 1024; /* capacity of each hand-off queue */
constexpr int kMaxThreads = 64;

struct Queue {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  Block items[kQueue];
  size_t count = 0;
};

Queue g_queues[kMaxThreads];
int g_threads = 8;
double g_deadline;
std::atomic<unsigned long> g_ops{0}, g_remote_frees{0}, g_reallocs{0}, g_aligned{0};

size_t pick_size(it_rng& r) {
  size_t c = r.below(1000);
  if (c < 10) return r.range(256 * 1024 + 1, 4 * IT_MiB);
  if (c < 600) return r.range(1, 256);
  if (c < 900) return r.range(257, 16 * 1024);
  return r.range(16 * 1024 + 1, 256 * 1024);
}

/* malloc & co: 16, or for blocks under 16 bytes the largest power of two <= size */
size_t natural_align(size_t size) {
  size_t a = 16;
  while (a > 1 && a > size) a /= 2;
  return a;
}

/* Usable size covers the request and is writable; then the request gets the pattern. */
void prepare(void* p, size_t size, const char* api) {
  size_t usable = malloc_usable_size(p);
  if (usable < size) it_fail("%s: malloc_usable_size(%p) = %zu < %zu", api, p, usable, size);
  memset((char*)p + size, 0xA5, usable - size);
  it_fill(p, size);
}

Block allocate(it_rng& r) {
  size_t size = pick_size(r);
  size_t align = (size_t)16 << r.below(13); /* 16 B .. 64 KiB */
  void* p = nullptr;
  const char* api;
  switch (r.below(10)) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      api = "malloc";
      p = malloc(size);
      align = natural_align(size);
      break;
    case 5:
      api = "calloc";
      p = calloc(1, size);
      align = natural_align(size);
      if (p != nullptr)
        for (size_t i = 0; i < size; i++)
          if (((unsigned char*)p)[i] != 0) it_fail("calloc(%zu) byte %zu not zero", size, i);
      break;
    case 6: {
      api = "posix_memalign";
      int rc = posix_memalign(&p, align, size);
      if (rc != 0) it_fail("posix_memalign(%zu, %zu) = %d", align, size, rc);
      break;
    }
    case 7:
      api = "aligned_alloc";
      size = (size + align - 1) / align * align; /* C11: size a multiple of alignment */
      p = aligned_alloc(align, size);
      break;
    case 8:
      api = "memalign";
      p = memalign(align, size);
      break;
    default:
      api = "realloc(NULL)";
      p = realloc(nullptr, size);
      align = natural_align(size);
      break;
  }
  if (p == nullptr) it_fail("%s(%zu) returned NULL (errno %d)", api, size, errno);
  if ((uintptr_t)p % align != 0) it_fail("%s: %p not aligned to %zu", api, p, align);
  if (align > 16) g_aligned.fetch_add(1, std::memory_order_relaxed);
  prepare(p, size, api);
  return Block{p, size};
}

void release(Block b, const char* what) {
  it_check(b.p, b.size, what);
  free(b.p);
}

void drain(int self) {
  Block local[kQueue];
  size_t n;
  pthread_mutex_lock(&g_queues[self].mu);
  n = g_queues[self].count;
  memcpy(local, g_queues[self].items, n * sizeof(Block));
  g_queues[self].count = 0;
  pthread_mutex_unlock(&g_queues[self].mu);
  for (size_t i = 0; i < n; i++) release(local[i], "free of a block from another thread");
  g_remote_frees.fetch_add(n, std::memory_order_relaxed);
}

void* worker(void* arg) {
  int self = (int)(intptr_t)arg;
  it_rng r{0x5eed0000u + (uint64_t)self};
  Block slots[kSlots] = {};
  unsigned long ops = 0;
  for (;; ops++) {
    if (ops % 256 == 0 && it_now() > g_deadline) break;
    if (ops % 64 == 0) drain(self);
    Block& s = slots[r.below(kSlots)];
    if (s.p == nullptr) {
      s = allocate(r);
      continue;
    }
    size_t c = r.below(100);
    if (c < 45) {
      release(s, "free");
    } else if (c < 90) {
      int to = (self + 1 + (int)r.below((size_t)g_threads - 1)) % g_threads;
      Queue& q = g_queues[to];
      pthread_mutex_lock(&q.mu);
      bool queued = q.count < kQueue;
      if (queued) q.items[q.count++] = s;
      pthread_mutex_unlock(&q.mu);
      if (!queued) release(s, "free");
    } else {
      size_t nsize = r.below(2) ? r.range(s.size, s.size * 2 + 64) : r.range(1, s.size);
      if (nsize > 4 * IT_MiB) nsize = 4 * IT_MiB;
      uintptr_t old = (uintptr_t)s.p;
      it_check(s.p, s.size, "realloc (before)");
      void* q = realloc(s.p, nsize);
      if (q == nullptr) it_fail("realloc(%zu -> %zu) returned NULL", s.size, nsize);
      size_t keep = nsize < s.size ? nsize : s.size;
      size_t bad = it_check_from(q, keep, old, s.size);
      if (bad != SIZE_MAX)
        it_fail("realloc %zu -> %zu lost the prefix at offset %zu", s.size, nsize, bad);
      prepare(q, nsize, "realloc");
      g_reallocs.fetch_add(1, std::memory_order_relaxed);
      s = Block{q, nsize};
      continue;
    }
    s = Block{nullptr, 0};
  }
  for (Block& s : slots)
    if (s.p != nullptr) release(s, "final free");
  g_ops.fetch_add(ops, std::memory_order_relaxed);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "stress_threads");
  double seconds = (double)it_arg(argc, argv, a, 3);
  g_threads = (int)it_arg(argc, argv, a + 1, 8);
  IT_CHECK(g_threads >= 2 && g_threads <= kMaxThreads, "threads must be in 2..%d", kMaxThreads);
  g_deadline = it_now() + seconds;
  pthread_t tid[kMaxThreads];
  for (int i = 0; i < g_threads; i++) {
    int rc = pthread_create(&tid[i], nullptr, worker, (void*)(intptr_t)i);
    IT_CHECK(rc == 0, "pthread_create: %s", strerror(rc));
  }
  for (int i = 0; i < g_threads; i++) pthread_join(tid[i], nullptr);
  for (int i = 0; i < g_threads; i++) drain(i); /* blocks queued to threads that had exited */
  IT_CHECK(g_remote_frees.load() > 0, "no block was freed by another thread");
  printf(
      "stress_threads: OK: %d threads, %lu ops, %lu cross-thread frees, %lu reallocs, "
      "%lu over-aligned\n",
      g_threads, g_ops.load(), g_remote_frees.load(), g_reallocs.load(), g_aligned.load());
  return 0;
}
