// bad_input_test.cpp: bad pointers and impossible arguments that tests/unit/api_conformance_test
// and tests/integration/bad_pointer do not already cover. Every bad pointer must make the process
// print exactly one line, "mallard: <problem> in <call>(<the pointer>)", and abort; the death
// tests match the whole of stderr, with the pointer's value. Impossible sizes and alignments must
// fail the way glibc does (NULL and ENOMEM, or EINVAL), never crash.
// The death tests fork (gtest's "fast" style) so that the pointer values in the expected message
// are the parent's; a block's invalidating free and the bad call both run inside the death
// statement, so that nothing (gtest's own allocations included) can reuse the block in between.
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "../common/bad_pointer_report.h"
#include "backend/segment_map.hpp"
#include "backend/size_class.hpp"
#include "mallard/mallard.h"

namespace {

constexpr std::size_t kPtrdiffMaxPlusOne = static_cast<std::size_t>(PTRDIFF_MAX) + 1;
constexpr std::size_t k2to63 = std::size_t{1} << 63;

using test_reports::hex;
using test_reports::hide;
using test_reports::one_line;
using test_reports::opaque;

const std::string kDoubleFree = "double free";
const std::string kInterior = "invalid pointer \\(not the start of a block\\)";
const std::string kForeign = "invalid pointer \\(not allocated by mallard\\)";
// A block whose page went back to the arena may be reported either way.
const std::string kFreedOrInterior = "(double free|invalid pointer \\(not the start of a block\\))";

// ---- blocks of exited threads ------------------------------------------------------------

TEST(BadPointerDeathTest, DoubleFreeOfABlockOfAnExitedThread) {
  // The thread's page is abandoned with `keep` still live, so it stays a small page.
  void* victim = nullptr;
  void* keep = nullptr;
  std::thread([&] {
    victim = mallard_malloc(48);
    keep = mallard_malloc(48);
  }).join();
  EXPECT_DEATH(
      {
        mallard_free(victim);
        mallard_free(hide(victim));
      },
      one_line(kDoubleFree, "free", victim));
  mallard_free(victim);
  mallard_free(keep);
}

TEST(BadPointerDeathTest, DoubleFreeAfterTheExitedThreadsPageWentBack) {
  // The last block of an abandoned page: freeing it returns the page to the arena at once.
  void* victim = nullptr;
  std::thread([&] { victim = mallard_malloc(200); }).join();
  EXPECT_DEATH(
      {
        mallard_free(victim);
        mallard_free(hide(victim));
      },
      one_line(kFreedOrInterior, "free", victim));
  mallard_free(victim);
}

TEST(BadPointerDeathTest, FreeOfABlockTheExitedThreadFreedItself) {
  void* victim = nullptr;
  void* keep = nullptr;
  std::thread([&] {
    victim = mallard_malloc(100);
    keep = mallard_malloc(100);
    mallard_free(victim);
  }).join();
  EXPECT_DEATH(mallard_free(hide(victim)), one_line(kFreedOrInterior, "free", victim));
  mallard_free(keep);
}

TEST(BadPointerDeathTest, DoubleFreeFromAnotherLiveThread) {
  void* victim = mallard_malloc(64);
  void* keep = mallard_malloc(64);
  EXPECT_DEATH(std::thread([&] {
                 mallard_free(victim);        // a remote free
                 mallard_free(hide(victim));  // and again
               }).join(),
               one_line(kDoubleFree, "free", victim));
  mallard_free(victim);
  mallard_free(keep);
}

// After `invalidate` (which frees p, in the death test's child), each of free, realloc and
// malloc_usable_size of p is reported as `problem`.
template <class F>
void expect_each_call_reported(void* p, const std::string& problem, F invalidate) {
  EXPECT_DEATH(
      {
        invalidate();
        mallard_free(hide(p));
      },
      one_line(problem, "free", p));
  EXPECT_DEATH(
      {
        invalidate();
        (void)mallard_realloc(hide(p), 100);
      },
      one_line(problem, "realloc", p));
  EXPECT_DEATH(
      {
        invalidate();
        (void)mallard_malloc_usable_size(hide(p));
      },
      one_line(problem, "malloc_usable_size", p));
}

// ---- huge blocks -------------------------------------------------------------------------

std::size_t seg_size(const void* seg) {
  return static_cast<const mallard::Segment*>(seg)->size;
}

// Above the dynamic mmap threshold's 32 MiB cap: always a huge block (direct mapping).
constexpr std::size_t kHuge = std::size_t{40} << 20;

TEST(BadPointerDeathTest, PointersIntoAHugeBlockBeyondItsFirstSegment) {
  const std::size_t n = opaque(kHuge);
  auto* p = static_cast<char*>(mallard_malloc(n));
  ASSERT_NE(p, nullptr);
  EXPECT_DEATH(mallard_free(hide(p + (5 << 20))), one_line(kInterior, "free", p + (5 << 20)));
  EXPECT_DEATH(mallard_free(hide(p + n - 1)), one_line(kInterior, "free", p + n - 1));
  EXPECT_DEATH((void)mallard_realloc(hide(p + 4096), 10), one_line(kInterior, "realloc", p + 4096));
  EXPECT_DEATH((void)mallard_malloc_usable_size(hide(p + 8)),
               one_line(kInterior, "malloc_usable_size", p + 8));
  mallard_free(p);
}

TEST(BadPointerDeathTest, FreedHugeBlock) {
  void* p = mallard_malloc(opaque(kHuge));
  ASSERT_NE(p, nullptr);
  // Unmapped by the first free: the segment map no longer knows the address, the record of
  // released memory does (and nothing was mapped there since).
  expect_each_call_reported(p, kDoubleFree, [p] { mallard_free(p); });
  // The freed block's interior is still not a block start.
  auto* inside = static_cast<char*>(p) + (5 << 20);
  EXPECT_DEATH(
      {
        mallard_free(p);
        mallard_free(hide(inside));
      },
      one_line(kInterior, "free", inside));
  mallard_free(p);
}

// Regression: once the address of a freed huge block is mapped again by someone else (here a
// plain mmap of the program), a free of the old pointer is not Mallard's business any more.
TEST(BadPointerDeathTest, FreedHugeBlockWhoseAddressWasMappedAgain) {
  void* p = mallard_malloc(opaque(kHuge));
  ASSERT_NE(p, nullptr);
  void* base = mallard::segment_map::lookup(p);
  ASSERT_NE(base, nullptr);
  EXPECT_DEATH(
      {
        mallard_free(p);
        void* again = mmap(base, 1 << 20, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (again != base) _exit(7);  // the address was taken: the test cannot tell
        mallard_free(hide(p));
      },
      one_line(kForeign, "free", p));
  mallard_free(p);
}

// A huge block that realloc moved (a mapping of the program's right after it forbids growing in
// place): its old address was given back as by a free.
TEST(BadPointerDeathTest, FreeOfAHugeBlockThatReallocMoved) {
  void* p = mallard_malloc(opaque(kHuge));
  ASSERT_NE(p, nullptr);
  auto* seg = reinterpret_cast<char*>(mallard::segment_map::lookup(p));
  ASSERT_NE(seg, nullptr);
  void* wall = seg + seg_size(seg);
  // Ours, or (EEXIST, or placed elsewhere by a kernel without MAP_FIXED_NOREPLACE because the
  // address is taken) someone else's: either way the block cannot grow in place.
  void* got =
      mmap(wall, 1 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (got != MAP_FAILED && got != wall) munmap(got, 1 << 20);
  EXPECT_DEATH(
      {
        void* q = mallard_realloc(p, 2 * kHuge);
        if (q == p || q == nullptr) _exit(7);  // not moved: nothing to test
        mallard_free(hide(p));
      },
      one_line(kDoubleFree, "free", p));
  if (got == wall) munmap(wall, 1 << 20);
  mallard_free(p);
}

// Two threads free the same block at once: one free succeeds, the other is reported, nothing
// else happens (no crash, no second release).
void race_two_frees(void* p) {
  std::atomic<int> ready{0};
  auto body = [&] {
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    mallard_free(hide(p));
  };
  std::thread a(body);
  std::thread b(body);
  a.join();
  b.join();
}

TEST(BadPointerDeathTest, RacingDoubleFreeOfAHugeBlock) {
  void* p = mallard_malloc(opaque(kHuge));
  ASSERT_NE(p, nullptr);
  for (int round = 0; round < 3; ++round)
    EXPECT_DEATH(race_two_frees(p), one_line(kDoubleFree, "free", p));
  mallard_free(p);
}

// TSan: the second free reads the span's entry before it takes the arena's lock (the fast
// check; it checks again under the lock), which races with the first free by design.
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
constexpr bool kThreadSanitizer = __has_feature(thread_sanitizer);
#else
constexpr bool kThreadSanitizer = false;
#endif

TEST(BadPointerDeathTest, RacingDoubleFreeOfALargeBlock) {
  if (kThreadSanitizer) GTEST_SKIP() << "the unlocked first look at the entry races by design";
  // Below the mmap threshold's default (128 KiB): a large block even when run alone.
  void* p = mallard_malloc(opaque(100000));
  void* keep = mallard_malloc(opaque(100000));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(mallard::segment_map::lookup(p)->kind, mallard::SegmentKind::kNormal);
  for (int round = 0; round < 3; ++round)
    EXPECT_DEATH(race_two_frees(p), one_line(kDoubleFree, "free", p));
  mallard_free(p);
  mallard_free(keep);
}

// ---- freed large blocks --------------------------------------------------------------------

constexpr std::size_t kLarge = 100000;  // 25 pages

mallard::Span* entry_of(void* p) {
  return mallard::segment_map::lookup(p)->entry_for(p);
}

TEST(BadPointerDeathTest, DoubleFreeOfALargeBlockBetweenLiveNeighbours) {
  void* before = mallard_malloc(opaque(kLarge));
  void* p = mallard_malloc(opaque(kLarge));
  void* after = mallard_malloc(opaque(kLarge));
  expect_each_call_reported(p, kDoubleFree, [p] { mallard_free(p); });
  // A page-aligned pointer into a live large block is no block start; nor is any other.
  auto* inner = static_cast<char*>(p) + 8192;
  EXPECT_DEATH(mallard_free(hide(inner)), one_line(kInterior, "free", inner));
  EXPECT_DEATH(
      {
        mallard_free(p);
        mallard_free(hide(inner - 100));
      },
      one_line(kInterior, "free", inner - 100));
  mallard_free(before);
  mallard_free(p);
  mallard_free(after);
}

TEST(BadPointerDeathTest, DoubleFreeOfALargeBlockMergedIntoItsFreeNeighbour) {
  // Two large blocks side by side; the left one is freed first, so the second free of the right
  // one finds its address inside the merged free span, not at its start. No decay meanwhile (a
  // purged left span would not merge with a dirty one).
  ASSERT_EQ(mallard_option_set("decay_ms", "600000"), 0);
  void* blocks[16];
  int pair = -1;
  for (int i = 0; i < 16; ++i) {
    blocks[i] = mallard_malloc(opaque(kLarge));
    if (i > 0 && pair < 0 &&
        static_cast<char*>(blocks[i]) ==
            static_cast<char*>(blocks[i - 1]) + mallard_malloc_usable_size(blocks[i - 1]))
      pair = i;
  }
  ASSERT_GE(pair, 1) << "no two adjacent large blocks";
  void* left = blocks[pair - 1];
  void* p = blocks[pair];
  expect_each_call_reported(p, kDoubleFree, [left, p] {
    mallard_free(left);
    mallard_free(p);
  });
  // The children saw what the parent sees now: p merged into a free span that starts before it.
  mallard_free(left);
  mallard_free(p);
  EXPECT_EQ(entry_of(p)->kind, mallard::kSpanNone);
  for (int i = 0; i < 16; ++i)
    if (i != pair && i != pair - 1) mallard_free(blocks[i]);
}

TEST(BadPointerDeathTest, DoubleFreeOfALargeBlockAfterTrimReleasedItsSegment) {
  // A large block in a segment of its own (mmap, so that the release does not depend on the top
  // of the break), freed, and the segment released to the OS by malloc_trim.
  ASSERT_EQ(mallard_option_set("heap_source", "mmap"), 0);
  // Freeing a huge block of 9 MiB raises the dynamic mmap threshold to it: 8 MiB is then large.
  mallard_free(mallard_malloc(opaque(std::size_t{9} << 20)));
  void* p = mallard_malloc(opaque(std::size_t{8} << 20));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(mallard::segment_map::lookup(p)->kind, mallard::SegmentKind::kNormal);
  expect_each_call_reported(p, kDoubleFree, [p] {
    mallard_free(p);
    mallard_malloc_trim(0);
  });
  mallard_free(p);
  mallard_malloc_trim(0);
  EXPECT_EQ(mallard::segment_map::lookup(p), nullptr) << "the segment was not released";
}

// ---- misaligned and interior pointers of every kind ---------------------------------------

TEST(BadPointerDeathTest, MisalignedPointers) {
  auto* small = static_cast<char*>(mallard_malloc(64));
  auto* large = static_cast<char*>(mallard_malloc(200000));
  auto* huge = static_cast<char*>(mallard_malloc(opaque(kHuge)));
  EXPECT_DEATH(mallard_free(hide(small + 8)), one_line(kInterior, "free", small + 8));
  EXPECT_DEATH(mallard_free(hide(large + 1)), one_line(kInterior, "free", large + 1));
  EXPECT_DEATH(mallard_free(hide(huge + 8)), one_line(kInterior, "free", huge + 8));
  EXPECT_DEATH((void)mallard_realloc(hide(small + 1), 100),
               one_line(kInterior, "realloc", small + 1));
  EXPECT_DEATH((void)mallard_realloc(hide(large + 4096), 10),
               one_line(kInterior, "realloc", large + 4096));
  EXPECT_DEATH((void)mallard_malloc_usable_size(hide(large + 16)),
               one_line(kInterior, "malloc_usable_size", large + 16));
  mallard_free(small);
  mallard_free(large);
  mallard_free(huge);
}

TEST(BadPointerDeathTest, PointerIntoASegmentHeader) {
  void* p = mallard_malloc(64);
  auto* seg = reinterpret_cast<char*>(mallard::segment_map::lookup(p));
  ASSERT_NE(seg, nullptr);
  EXPECT_DEATH(mallard_free(hide(seg)), one_line(kInterior, "free", seg));
  EXPECT_DEATH(mallard_free(hide(seg + 4096)), one_line(kInterior, "free", seg + 4096));
  mallard_free(p);
}

// Regression: a pointer past the last block of a small page (the page's tail, when its size is
// not a multiple of the block size) passed as a block start, went onto the free list and was
// handed out again with a block's usable size, overflowing into the next span.
TEST(BadPointerDeathTest, PointerIntoTheTailOfASmallPage) {
  int tested = 0;
  for (unsigned c = 0; c < mallard::kClassCount; ++c) {
    std::size_t bs = mallard::class_block_size(c);
    std::size_t bytes = mallard::class_page_count(c).bytes();
    if (bytes % bs < 16) continue;  // no room for a 16-aligned pointer after the last block
    SCOPED_TRACE(bs);
    void* p = mallard_malloc(bs);
    mallard::Segment* seg = mallard::segment_map::lookup(p);
    mallard::Span* entry = seg->entry_for(p);
    mallard::Span* page = entry - entry->back;
    ASSERT_EQ(page->block_size, bs);
    char* tail = page->start + bytes / bs * bs;  // where a next block would start
    EXPECT_DEATH(mallard_free(hide(tail)), one_line(kInterior, "free", tail));
    EXPECT_DEATH((void)mallard_realloc(hide(tail), 8), one_line(kInterior, "realloc", tail));
    EXPECT_DEATH((void)mallard_malloc_usable_size(hide(tail)),
                 one_line(kInterior, "malloc_usable_size", tail));
    mallard_free(p);
    ++tested;
  }
  EXPECT_GT(tested, 3);
}

// ---- freed blocks of every kind ----------------------------------------------------------

TEST(BadPointerDeathTest, ReallocOfFreedLargeAndSmallBlocks) {
  void* large = mallard_malloc(100000);
  void* keep = mallard_malloc(100000);
  EXPECT_DEATH(
      {
        mallard_free(large);
        (void)mallard_realloc(hide(large), 10);
      },
      one_line(kDoubleFree, "realloc", large));
  void* small = mallard_malloc(24);
  void* neighbour = mallard_malloc(24);  // the page stays in use
  EXPECT_DEATH(
      {
        mallard_free(small);
        (void)mallard_reallocarray(hide(small), 2, 10);
      },
      one_line(kDoubleFree, "realloc", small));
  EXPECT_DEATH(
      {
        mallard_free(small);
        (void)mallard_malloc_usable_size(hide(small));
      },
      one_line(kDoubleFree, "malloc_usable_size", small));
  mallard_free(small);
  mallard_free(neighbour);
  mallard_free(large);
  mallard_free(keep);
}

// ---- memory that never was Mallard's ------------------------------------------------------

TEST(BadPointerDeathTest, PointersOfAnotherAllocatorAndOfPlainMappings) {
  // glibc's malloc, whatever owns the standard names in this build.
  auto* glibc_malloc = reinterpret_cast<void* (*)(std::size_t)>(dlsym(RTLD_NEXT, "malloc"));
  ASSERT_NE(glibc_malloc, nullptr);
  void* theirs = glibc_malloc(100);
  EXPECT_DEATH(mallard_free(hide(theirs)), one_line(kForeign, "free", theirs));
  void* map = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  EXPECT_DEATH(mallard_free(hide(map)), one_line(kForeign, "free", map));
  EXPECT_DEATH((void)mallard_realloc(hide(map), 10), one_line(kForeign, "realloc", map));
  void* kernel = reinterpret_cast<void*>(opaque(uintptr_t{0xffff880000000000}));
  EXPECT_DEATH(mallard_free(kernel), one_line(kForeign, "free", kernel));
  void* low = reinterpret_cast<void*>(opaque(uintptr_t{16}));
  EXPECT_DEATH(mallard_free(low), one_line(kForeign, "free", low));
  munmap(map, 1 << 20);
}

// ---- impossible sizes and alignments -----------------------------------------------------

void expect_enomem(void* p, const char* what) {
  EXPECT_EQ(p, nullptr) << what;
  EXPECT_EQ(errno, ENOMEM) << what;
}

TEST(ImpossibleRequests, SizesFailWithEnomem) {
  const std::size_t kSizes[] = {SIZE_MAX, kPtrdiffMaxPlusOne, static_cast<std::size_t>(PTRDIFF_MAX),
                                SIZE_MAX - 4095};
  for (std::size_t n : kSizes) {
    SCOPED_TRACE(n);
    errno = 0;
    expect_enomem(mallard_realloc(nullptr, opaque(n)), "realloc(NULL, n)");
    errno = 0;
    expect_enomem(mallard_aligned_alloc(4096, opaque(n)), "aligned_alloc(4096, n)");
    errno = 0;
    expect_enomem(mallard_memalign(64, opaque(n)), "memalign(64, n)");
    errno = 0;
    expect_enomem(mallard_valloc(opaque(n)), "valloc(n)");
    errno = 0;
    expect_enomem(mallard_pvalloc(opaque(n)), "pvalloc(n)");
    errno = 0;
    expect_enomem(mallard_calloc(1, opaque(n)), "calloc(1, n)");
  }
  // No overflow in the product, but more than PTRDIFF_MAX.
  errno = 0;
  expect_enomem(mallard_calloc(opaque(kPtrdiffMaxPlusOne / 2), 2), "calloc(2^62, 2)");
  errno = 0;
  expect_enomem(mallard_reallocarray(nullptr, opaque(SIZE_MAX), 2), "reallocarray(NULL, overflow)");
  errno = 0;
  expect_enomem(mallard_reallocarray(nullptr, opaque(kPtrdiffMaxPlusOne / 2), 2),
                "reallocarray(NULL, 2^62, 2)");
}

// Regression: a request no segment can hold (here up to PTRDIFF_MAX) took ~12 ms to refuse,
// sizing a segment 4 MiB at a time up to 2^46 bytes.
TEST(ImpossibleRequests, FailFast) {
  const std::size_t kSizes[] = {std::size_t{1} << 47, static_cast<std::size_t>(PTRDIFF_MAX),
                                std::size_t{1} << 50, static_cast<std::size_t>(PTRDIFF_MAX) - 64};
  auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 50; ++round) {
    for (std::size_t n : kSizes) {
      errno = 0;
      expect_enomem(mallard_malloc(opaque(n)), "malloc(impossible)");
    }
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::milliseconds(500))
      << "200 impossible requests took "
      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
}

TEST(ImpossibleRequests, ZeroSizedProductsAreValidBlocks) {
  for (auto [count, size] :
       {std::pair{std::size_t{0}, SIZE_MAX}, std::pair{SIZE_MAX, std::size_t{0}},
        std::pair{std::size_t{0}, std::size_t{0}}}) {
    void* p = mallard_calloc(opaque(count), opaque(size));
    EXPECT_NE(p, nullptr) << count << " x " << size;
    mallard_free(p);
  }
  void* q = mallard_reallocarray(nullptr, opaque(SIZE_MAX), 0);
  EXPECT_NE(q, nullptr);
  // reallocarray(p, 0, n) is realloc(p, 0): glibc frees p and returns NULL.
  EXPECT_EQ(mallard_reallocarray(q, 0, opaque(SIZE_MAX)), nullptr);
}

TEST(ImpossibleRequests, AlignmentOf2To63FailsLikeGlibc) {
  // glibc: 2^63 is a valid power of two no block can honour (ENOMEM); above it, EINVAL.
  errno = 0;
  expect_enomem(mallard_aligned_alloc(opaque(k2to63), 1), "aligned_alloc(2^63, 1)");
  errno = 0;
  expect_enomem(mallard_memalign(opaque(k2to63), 10), "memalign(2^63, 10)");
  errno = 0;
  EXPECT_EQ(mallard_memalign(opaque(k2to63 + 1), 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
  void* out = &out;
  EXPECT_EQ(mallard_posix_memalign(&out, opaque(k2to63), 0), ENOMEM);
  EXPECT_EQ(out, &out);
}

TEST(ImpossibleRequests, OddAndZeroAlignments) {
  // memalign rounds a bad alignment up to a power of two (glibc); posix_memalign and
  // aligned_alloc refuse it (EINVAL).
  for (std::size_t a : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{5},
                        std::size_t{4097}, (std::size_t{1} << 20) + 1}) {
    SCOPED_TRACE(a);
    void* p = mallard_memalign(opaque(a), 100);
    ASSERT_NE(p, nullptr);
    std::size_t want = 1;
    while (want < a) want <<= 1;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % want, 0u);
    mallard_free(p);
    void* out = &out;
    EXPECT_EQ(mallard_posix_memalign(&out, opaque(a), 100), EINVAL);
    EXPECT_EQ(out, &out);
  }
  EXPECT_EQ(mallard_check_heap(), 0);
}

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  // No purger thread: death tests fork, which is only safe in a single-threaded process.
  mallard_option_set("background_purge", "0");
  return RUN_ALL_TESTS();
}
