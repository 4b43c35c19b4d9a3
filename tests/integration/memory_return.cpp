/* memory_return: is freed memory given back to the OS?
 * Allocates and touches ~1 GiB in mixed sizes (a third each: small 16 B..4 KiB, medium
 * 8..64 KiB, 1 MiB blocks), interleaved, then frees everything in random order.
 *   trim   malloc_trim(0), then RSS must be within 16 MiB of RSS before the allocations.
 *   decay  no trim; keep a little malloc/free activity going every 10 ms and require RSS to fall
 *          within 16 MiB of the start within `decay_seconds` (delayed purging, e.g. decay_ms).
 * Usage: memory_return LIB trim|decay [total_MiB=1024] [decay_seconds=3] */
#include "it_common.h"

#include <malloc.h>

namespace {

struct Block {
  void* p;
  size_t size;
};

constexpr size_t kSlack = 16 * IT_MiB;
// malloc_trim(0) gives back every empty page, the threads' current ones too (measured: about
// 4 MiB over the start remains: headers of brk segments pinned under a live block, stdio).
constexpr size_t kTrimSlack = 8 * IT_MiB;

/* Size of allocation i of the plan: category by weighted choice until each third is spent. */
struct Plan {
  it_rng r{2024};
  size_t left[3];
  explicit Plan(size_t total) : left{total / 3, total / 3, total / 3} {}
  size_t next() {
    for (;;) {
      if (left[0] == 0 && left[1] == 0 && left[2] == 0) return 0;
      size_t c = r.below(1000), cat = c < 900 ? 0 : c < 995 ? 1 : 2, size;
      if (left[cat] == 0) continue;
      if (cat == 0)
        size = r.range(16, 4096);
      else if (cat == 1)
        size = r.range(8192, 65536);
      else
        size = IT_MiB;
      if (size > left[cat]) size = left[cat];
      left[cat] -= size;
      return size;
    }
  }
};

void activity(it_rng& r) {
  static const size_t sizes[] = {24, 200, 3000, 20000, 100000, 600000};
  void* p[6];
  for (int i = 0; i < 6; i++) {
    size_t n = sizes[i] + r.below(64);
    p[i] = malloc(n);
    if (p[i] == nullptr) it_fail("malloc(%zu) failed", n);
    memset(p[i], i, n);
  }
  for (int i = 0; i < 6; i++) free(p[i]);
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "memory_return");
  if (a >= argc) it_fail("usage: memory_return LIB trim|decay [total_MiB] [decay_seconds]");
  bool trim = strcmp(argv[a], "trim") == 0;
  if (!trim && strcmp(argv[a], "decay") != 0) it_fail("unknown mode '%s'", argv[a]);
  size_t total = (size_t)it_arg(argc, argv, a + 1, 1024) * IT_MiB;
  double decay_seconds = (double)it_arg(argc, argv, a + 2, 3);

  size_t count = 0;
  for (Plan plan(total); plan.next() != 0;) count++;
  Block* blocks = (Block*)malloc(count * sizeof(Block)); /* part of the baseline */
  if (blocks == nullptr) it_fail("malloc of the block table failed");
  memset(blocks, 0, count * sizeof(Block));
  it_rng r{99};
  for (int i = 0; i < 50; i++) activity(r); /* allocator warm: metadata, thread cache */

  size_t base = it_rss();
  Plan plan(total);
  for (size_t i = 0; i < count; i++) {
    size_t size = plan.next();
    void* p = malloc(size);
    if (p == nullptr) it_fail("malloc(%zu) failed after %zu blocks", size, i);
    memset(p, (int)(i & 0xff) | 1, size);
    blocks[i] = Block{p, size};
  }
  size_t peak = it_rss();
  printf("allocated %zu blocks, %.0f MiB: RSS %.1f -> %.1f MiB\n", count, it_mib(total),
         it_mib(base), it_mib(peak));
  if (peak < base + total / 2) it_fail("RSS grew only by %.1f MiB", it_mib(peak - base));
  for (size_t i = count; i > 1; i--) { /* free in random order */
    size_t j = r.below(i);
    Block t = blocks[i - 1];
    blocks[i - 1] = blocks[j];
    blocks[j] = t;
  }
  for (size_t i = 0; i < count; i++) {
    unsigned char* b = (unsigned char*)blocks[i].p;
    if (b[0] != b[blocks[i].size - 1] || (b[0] & 1) == 0) it_fail("block %p corrupted", b);
    free(b);
  }
  size_t after_free = it_rss();
  printf("after free: RSS %.1f MiB\n", it_mib(after_free));

  if (trim) {
    malloc_trim(0);
    size_t rss = it_rss();
    printf("after malloc_trim(0): RSS %.1f MiB (start %.1f)\n", it_mib(rss), it_mib(base));
    if (rss > base + kTrimSlack)
      it_fail("malloc_trim(0) left RSS at %.1f MiB, more than 8 MiB over the %.1f MiB start",
              it_mib(rss), it_mib(base));
  } else {
    double t0 = it_now();
    size_t rss = after_free;
    while (rss > base + kSlack) {
      if (it_now() - t0 > decay_seconds)
        it_fail(
            "RSS still %.1f MiB after %.1f s of light activity, more than 16 MiB over the "
            "%.1f MiB start",
            it_mib(rss), decay_seconds, it_mib(base));
      activity(r);
      usleep(10000);
      rss = it_rss();
    }
    printf("RSS %.1f MiB (start %.1f) after %.2f s\n", it_mib(rss), it_mib(base), it_now() - t0);
  }
  free(blocks);
  printf("memory_return: OK (%s)\n", trim ? "trim" : "decay");
  return 0;
}
