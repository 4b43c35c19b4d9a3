// api_conformance_test.cpp: the whole allocation API with glibc's documented semantics and every
// edge case: sizes 0, 1, SIZE_MAX, PTRDIFF_MAX + 1; calloc/reallocarray overflow; realloc corner
// cases; alignments (0, 3, 2^63, non powers of two); mallopt, mallinfo2, malloc_trim, malloc_info,
// malloc_stats; errno (free never changes it, posix_memalign as glibc's), no cancellation point in
// malloc_stats and malloc_info, mallinfo2 in glibc's meanings (mxfast); every C++ operator
// new/delete; and the bad-pointer reports (death tests).
//
// Built twice: api_conformance_test calls the mallard_-prefixed functions (Mallard linked in);
// api_conformance_preload_test calls the standard names and runs with libmallard.so preloaded
// (its Mallard-only calls are weak references resolved from the preloaded library).
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <new>
#include <string>
#include <thread>
#include <vector>

#include "../common/sanitizer.h"
#include "mallard/mallard.h"

#ifdef MALLARD_TEST_STANDARD_NAMES
#define API(name) name
#pragma weak mallard_get_stats
#pragma weak mallard_check_heap
#pragma weak mallard_option_get
#else
#define API(name) mallard_##name
#endif

namespace {

constexpr std::size_t kPtrdiffMaxPlusOne = static_cast<std::size_t>(PTRDIFF_MAX) + 1;

// Sizes chosen at run time, so the compiler cannot reason about them.
std::size_t opaque(std::size_t n) {
  volatile std::size_t v = n;
  return v;
}

mallard_stats stats() {
  mallard_stats s;
  EXPECT_NE(&mallard_get_stats, nullptr) << "Mallard is not the allocator of this process";
  mallard_get_stats(&s);
  return s;
}

bool aligned(const void* p, std::size_t a) {
  return reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

TEST(Malloc, IsMallard) {
  ASSERT_NE(&mallard_get_stats, nullptr);
  void* p = API(malloc)(100);
  EXPECT_GE(stats().bytes_in_use, 100u);
  API(free)(p);
}

TEST(Malloc, ZeroReturnsUniqueFreeablePointers) {
  void* a = API(malloc)(0);
  void* b = API(malloc)(0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_GE(API(malloc_usable_size)(a), 0u);
  API(free)(a);
  API(free)(b);
}

TEST(Malloc, EverySizeIsAlignedUsableAndWritable) {
  std::vector<void*> blocks;
  for (std::size_t n = 1; n <= 70000; n += (n < 2048 ? 1 : 257)) {
    auto* p = static_cast<unsigned char*>(API(malloc)(n));
    ASSERT_NE(p, nullptr) << n;
    ASSERT_TRUE(aligned(p, 16)) << n;
    std::size_t usable = API(malloc_usable_size)(p);
    ASSERT_GE(usable, n);
    memset(p, 0xab, usable);  // all of the usable size is writable
    blocks.push_back(p);
  }
  for (void* p : blocks) API(free)(p);
}

TEST(Malloc, HugeBlocksAreAlignedAndUsable) {
  for (std::size_t n : {std::size_t{128} << 10, std::size_t{1} << 20, std::size_t{40} << 20}) {
    auto* p = static_cast<char*>(API(malloc)(opaque(n)));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p, 16));
    EXPECT_GE(API(malloc_usable_size)(p), n);
    p[0] = 1;
    p[n - 1] = 2;
    API(free)(p);
  }
}

TEST(Malloc, ImpossibleSizesFailWithEnomem) {
  for (std::size_t n : {SIZE_MAX, SIZE_MAX - 4096, kPtrdiffMaxPlusOne, std::size_t{1} << 62}) {
    errno = 0;
    EXPECT_EQ(API(malloc)(opaque(n)), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
  }
}

TEST(Free, NullIsANoOp) {
  API(free)(nullptr);
}

TEST(Calloc, ZeroesEvenReusedMemory) {
  for (std::size_t n : {24u, 1000u, 40000u, 300000u}) {
    auto* dirty = static_cast<unsigned char*>(API(malloc)(n));
    memset(dirty, 0xff, n);
    API(free)(dirty);
    auto* p = static_cast<unsigned char*>(API(calloc)(1, n));
    ASSERT_NE(p, nullptr);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(p[i], 0) << n << " at " << i;
    API(free)(p);
  }
}

TEST(Calloc, OverflowFailsWithEnomem) {
  errno = 0;
  EXPECT_EQ(API(calloc)(opaque(SIZE_MAX / 2 + 2), 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(API(calloc)(opaque(1) << 40, opaque(1) << 40), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* zero = API(calloc)(0, 16);
  EXPECT_NE(zero, nullptr);
  API(free)(zero);
}

TEST(Realloc, NullPointerActsAsMalloc) {
  void* p = API(realloc)(nullptr, 50);
  ASSERT_NE(p, nullptr);
  API(free)(p);
}

TEST(Realloc, ZeroSizeFreesAndReturnsNull) {
  void* p = API(malloc)(50);
  EXPECT_EQ(API(realloc)(p, 0), nullptr);  // glibc: p is freed
}

TEST(Realloc, PreservesContentsAcrossEveryKindOfBlock) {
  const std::size_t sizes[] = {8, 100, 3000, 40000, 100000, 200000, 5 << 20, 900, 16};
  std::size_t n = 1;
  auto* p = static_cast<unsigned char*>(API(malloc)(n));
  p[0] = 7;
  for (std::size_t next : sizes) {
    auto* q = static_cast<unsigned char*>(API(realloc)(p, next));
    ASSERT_NE(q, nullptr);
    std::size_t keep = n < next ? n : next;
    for (std::size_t i = 0; i < keep; ++i)
      ASSERT_EQ(q[i], static_cast<unsigned char>(i * 7 + 7)) << i;
    for (std::size_t i = 0; i < next; ++i) q[i] = static_cast<unsigned char>(i * 7 + 7);
    ASSERT_GE(API(malloc_usable_size)(q), next);
    p = q;
    n = next;
  }
  API(free)(p);
}

TEST(Realloc, GrowsLargeBlocksInPlaceWhenTheNextPagesAreFree) {
  auto* p = static_cast<char*>(API(malloc)(70000));
  auto* q = static_cast<char*>(API(realloc)(p, 120000));
  ASSERT_NE(q, nullptr);
  auto* r = static_cast<char*>(API(realloc)(q, 80000));  // shrink stays in place
  EXPECT_EQ(r, q);
  API(free)(r);
}

TEST(Realloc, FailureKeepsTheOriginalBlock) {
  auto* p = static_cast<char*>(API(malloc)(100));
  strcpy(p, "still here");
  errno = 0;
  EXPECT_EQ(API(realloc)(p, opaque(SIZE_MAX)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_STREQ(p, "still here");
  API(free)(p);
}

TEST(Reallocarray, OverflowFailsAndKeepsTheBlock) {
  auto* p = static_cast<char*>(API(malloc)(10));
  strcpy(p, "abc");
  errno = 0;
  EXPECT_EQ(API(reallocarray)(p, opaque(SIZE_MAX / 3), 4), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_STREQ(p, "abc");
  auto* q = static_cast<char*>(API(reallocarray)(p, 100, 8));
  ASSERT_NE(q, nullptr);
  EXPECT_STREQ(q, "abc");
  API(free)(q);
}

TEST(Aligned, EveryPowerOfTwoAlignment) {
  for (std::size_t a = 1; a <= (std::size_t{1} << 22); a <<= 1) {
    for (std::size_t n :
         {std::size_t{1}, std::size_t{100}, std::size_t{5000}, std::size_t{300000}}) {
      void* p = API(aligned_alloc)(a, n);
      ASSERT_NE(p, nullptr) << a << " " << n;
      EXPECT_TRUE(aligned(p, a < 16 ? 16 : a)) << a << " " << n;
      EXPECT_GE(API(malloc_usable_size)(p), n);
      memset(p, 1, n);
      API(free)(p);
      void* q = nullptr;
      if (a >= sizeof(void*)) {
        ASSERT_EQ(API(posix_memalign)(&q, a, n), 0);
        EXPECT_TRUE(aligned(q, a));
        API(free)(q);
      }
      q = API(memalign)(a, n);
      ASSERT_NE(q, nullptr);
      EXPECT_TRUE(aligned(q, a));
      API(free)(q);
    }
  }
}

TEST(Aligned, AlignedAllocRejectsNonPowersOfTwo) {
  for (std::size_t a : {std::size_t{0}, std::size_t{3}, std::size_t{24}, std::size_t{1000}}) {
    errno = 0;
    EXPECT_EQ(API(aligned_alloc)(opaque(a), 64), nullptr) << a;
    EXPECT_EQ(errno, EINVAL) << a;
  }
}

TEST(Aligned, PosixMemalignReturnsErrorsWithoutTouchingTheResult) {
  void* sentinel = reinterpret_cast<void*>(0x1234);
  void* out = sentinel;
  for (std::size_t a : {std::size_t{0}, std::size_t{3}, std::size_t{4}, std::size_t{24}}) {
    EXPECT_EQ(API(posix_memalign)(&out, opaque(a), 64), EINVAL) << a;
    EXPECT_EQ(out, sentinel);
  }
  EXPECT_EQ(API(posix_memalign)(&out, 64, opaque(SIZE_MAX - 100)), ENOMEM);
  EXPECT_EQ(out, sentinel);
  EXPECT_EQ(API(posix_memalign)(&out, opaque(std::size_t{1} << 63), 64), ENOMEM);
  EXPECT_EQ(out, sentinel);
}

TEST(Aligned, MemalignRoundsUpBadAlignmentsAndRejectsHugeOnes) {
  void* p = API(memalign)(opaque(48), 100);  // glibc: rounded up to 64
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned(p, 64));
  API(free)(p);
  errno = 0;
  EXPECT_EQ(API(memalign)(opaque((std::size_t{1} << 63) + 1), 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(API(memalign)(opaque(std::size_t{1} << 62), 10), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Aligned, VallocAndPvalloc) {
  long page = sysconf(_SC_PAGESIZE);
  void* v = API(valloc)(10);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(aligned(v, static_cast<std::size_t>(page)));
  API(free)(v);
  void* pv = API(pvalloc)(10);
  ASSERT_NE(pv, nullptr);
  EXPECT_TRUE(aligned(pv, static_cast<std::size_t>(page)));
  EXPECT_GE(API(malloc_usable_size)(pv), static_cast<std::size_t>(page));
  API(free)(pv);
  void* pz = API(pvalloc)(0);
  ASSERT_NE(pz, nullptr);
  EXPECT_GE(API(malloc_usable_size)(pz), static_cast<std::size_t>(page));
  API(free)(pz);
  errno = 0;
  EXPECT_EQ(API(pvalloc)(opaque(SIZE_MAX)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(UsableSize, NullIsZero) {
  EXPECT_EQ(API(malloc_usable_size)(nullptr), 0u);
}

TEST(Mallopt, ThresholdMovesBlocksBetweenPaths) {
  ASSERT_EQ(API(mallopt)(M_MMAP_THRESHOLD, 64 * 1024), 1);
  std::size_t huge_before = stats().huge_blocks;
  void* p = API(malloc)(100 * 1024);
  EXPECT_EQ(stats().huge_blocks, huge_before + 1);
  API(free)(p);
  // Below the largest small class too: every request at or above it is a direct mmap.
  ASSERT_EQ(API(mallopt)(M_MMAP_THRESHOLD, 16 * 1024), 1);
  void* q = API(malloc)(opaque(20000));
  EXPECT_EQ(stats().huge_blocks, huge_before + 1);
  API(free)(q);
  EXPECT_EQ(API(mallopt)(M_MMAP_THRESHOLD, 64 << 20), 0);  // above glibc's 32 MiB cap
  EXPECT_EQ(API(mallopt)(12345, 1), 0);                    // unknown parameter
  EXPECT_EQ(API(mallopt)(M_ARENA_MAX, 4), 1);
  EXPECT_EQ(mallard_option_get("arena_max"), 4);
  ASSERT_EQ(API(mallopt)(M_MMAP_THRESHOLD, 128 * 1024), 1);
}

TEST(Mallinfo2, CountsLiveBytes) {
  std::vector<void*> v;
  v.reserve(100);
  struct mallinfo2 before = API(mallinfo2)();
  for (int i = 0; i < 100; ++i) v.push_back(API(malloc)(1000));
  struct mallinfo2 during = API(mallinfo2)();
  EXPECT_GE(during.uordblks, before.uordblks + 100 * 1000);
  for (void* p : v) API(free)(p);
  struct mallinfo2 after = API(mallinfo2)();
  EXPECT_EQ(after.uordblks, before.uordblks);
  struct mallinfo old = API(mallinfo)();
  EXPECT_GE(old.arena, 0);
}

TEST(MallocTrim, GivesMemoryBackAndSaysSo) {
  std::vector<void*> v;
  for (int i = 0; i < 2000; ++i) v.push_back(API(malloc)(30000));
  for (void* p : v) {
    memset(p, 1, 30000);
    API(free)(p);
  }
  EXPECT_EQ(API(malloc_trim)(0), 1);
  EXPECT_EQ(stats().bytes_dirty, 0u);
}

// malloc_info's XML, through an open_memstream.
std::string malloc_info_xml() {
  char* buf = nullptr;
  std::size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  EXPECT_EQ(API(malloc_info)(0, f), 0);
  fclose(f);
  std::string xml(buf, len);
  free(buf);  // open_memstream's buffer comes from this process's malloc
  return xml;
}

TEST(MallocInfo, WritesGlibcShapedXml) {
  std::string xml = malloc_info_xml();
  EXPECT_EQ(xml.rfind("<malloc version=\"1\">", 0), 0u) << xml;
  EXPECT_NE(xml.find("<heap nr=\"0\">"), std::string::npos);
  EXPECT_NE(xml.find("<total type=\"mmap\""), std::string::npos);
  EXPECT_NE(xml.find("</malloc>"), std::string::npos);
  errno = EDOM;
  EXPECT_EQ(API(malloc_info)(1, stdout), EINVAL);  // as glibc: returned, errno untouched
  EXPECT_EQ(errno, EDOM);
}

// Review of issue 9: with direct mmap off, a zero threshold routed every malloc(16) to a page of
// its own (glibc: the threshold matters only when mmap is allowed).
TEST(Mallopt, ZeroThresholdWithMmapOffKeepsSmallBlocksSmall) {
  ASSERT_EQ(API(mallopt)(M_MMAP_MAX, 0), 1);
  ASSERT_EQ(API(mallopt)(M_MMAP_THRESHOLD, 0), 1);
  char* a = static_cast<char*>(API(malloc)(opaque(16)));
  char* b = static_cast<char*>(API(malloc)(opaque(16)));
  // Blocks of the 16-byte class (a page of its own would give 4096 usable bytes). Not a distance:
  // which free blocks of the class's page the two get depends on the tests before this one.
  EXPECT_LT(API(malloc_usable_size)(a), 64u);
  EXPECT_LT(API(malloc_usable_size)(b), 64u);
  API(free)(a);
  API(free)(b);
  ASSERT_EQ(API(mallopt)(M_MMAP_THRESHOLD, 128 << 10), 1);
  ASSERT_EQ(API(mallopt)(M_MMAP_MAX, 65536), 1);
}

TEST(MallocStats, PrintsGlibcShapedText) {
  testing::internal::CaptureStderr();
  API(malloc_stats)();
  std::string text = testing::internal::GetCapturedStderr();
  EXPECT_NE(text.find("Arena 0:\nsystem bytes     ="), std::string::npos) << text;
  EXPECT_NE(text.find("Total (incl. mmap):"), std::string::npos);
  EXPECT_NE(text.find("max mmap regions ="), std::string::npos);
}

// ---- the C library's contracts: errno, cancellation, glibc's mallinfo ------------------------

constexpr int kErrnoSentinel = EDOM;  // a value no allocator path sets

// The mapping of /proc/self/maps that contains p: [*lo, *hi). False if none.
bool vma_containing(const void* p, std::uintptr_t* lo, std::uintptr_t* hi) {
  FILE* f = fopen("/proc/self/maps", "re");
  if (f == nullptr) return false;
  auto a = reinterpret_cast<std::uintptr_t>(p);
  char line[512];
  bool found = false;
  while (!found && fgets(line, sizeof line, f) != nullptr) {
    unsigned long start = 0, end = 0;
    if (sscanf(line, "%lx-%lx", &start, &end) == 2 && start <= a && a < end) {
      *lo = start;
      *hi = end;
      found = true;
    }
  }
  fclose(f);
  return found;
}

long read_proc_long(const char* path) {
  FILE* f = fopen(path, "re");
  if (f == nullptr) return -1;
  long v = -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

// Above the dynamic mmap threshold's cap (32 MiB): always a huge block, a direct mmap.
constexpr std::size_t kHugeBlock = std::size_t{40} << 20;

TEST(Errno, FreeAndReallocKeepErrnoOnEveryPath) {
  void* small = API(malloc)(opaque(40));
  void* large = API(malloc)(opaque(100 << 10));
  void* huge = API(malloc)(opaque(kHugeBlock));
  void* moved = API(malloc)(opaque(1000));
  ASSERT_TRUE(small != nullptr && large != nullptr && huge != nullptr && moved != nullptr);
  errno = kErrnoSentinel;
  moved = API(realloc)(moved, opaque(200 << 10));  // moves: malloc, copy, free
  EXPECT_EQ(errno, kErrnoSentinel);
  large = API(realloc)(large, opaque(70 << 10));  // shrinks in place: the tail is freed
  EXPECT_EQ(errno, kErrnoSentinel);
  API(free)(small);
  API(free)(large);
  API(free)(huge);
  EXPECT_EQ(API(realloc)(moved, 0), nullptr);  // frees, as glibc's
  EXPECT_EQ(errno, kErrnoSentinel);
}

// glibc's free keeps errno (since 2.33) even when a system call inside it fails. A huge block
// whose mapping has merged with its neighbours must be split out by munmap, which the kernel
// refuses (ENOMEM) while the process is at vm.max_map_count. Mallard then leaks the mapping.
TEST(Errno, FreeKeepsErrnoWhenMunmapFailsAtTheMapCountLimit) {
  if (kSanitizerMapsMemory)
    GTEST_SKIP() << "the sanitizer runtime maps memory of its own: it fails at the limit first";
  long max_maps = read_proc_long("/proc/sys/vm/max_map_count");
  if (max_maps <= 0 || max_maps > (1L << 20))
    GTEST_SKIP() << "vm.max_map_count " << max_maps << ": cannot reach it in a test";
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::size_t huge_before = stats().huge_blocks;
  void* p = API(malloc)(opaque(kHugeBlock));
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(stats().huge_blocks, huge_before + 1);
  // Anonymous read-write neighbours on both sides merge with the block's mapping (tried with
  // and without MAP_NORESERVE, whichever Mallard uses).
  std::uintptr_t lo = 0, hi = 0, lo2 = 0, hi2 = 0;
  ASSERT_TRUE(vma_containing(p, &lo, &hi));
  void* below = MAP_FAILED;
  void* above = MAP_FAILED;
  bool merged = false;
  for (int noreserve : {MAP_NORESERVE, 0}) {
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | noreserve;
    below = mmap(reinterpret_cast<void*>(lo - page), page, PROT_READ | PROT_WRITE, flags, -1, 0);
    above = mmap(reinterpret_cast<void*>(hi), page, PROT_READ | PROT_WRITE, flags, -1, 0);
    merged = below != MAP_FAILED && above != MAP_FAILED && vma_containing(p, &lo2, &hi2) &&
             lo2 < lo && hi2 > hi;
    if (merged) break;
    if (below != MAP_FAILED) munmap(below, page);
    if (above != MAP_FAILED) munmap(above, page);
    below = above = MAP_FAILED;
  }
  if (!merged) {
    API(free)(p);
    GTEST_SKIP() << "the kernel did not merge the block's mapping with its neighbours";
  }
  // Fill the map count: one-page mappings of alternating protections (never merged).
  std::vector<void*> fillers;
  fillers.reserve(static_cast<std::size_t>(max_maps) + 16);
  bool at_limit = false;
  for (long i = 0; i < max_maps + 16; ++i) {
    void* f = mmap(nullptr, page, (i & 1) != 0 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (f == MAP_FAILED) {
      at_limit = errno == ENOMEM;
      break;
    }
    fillers.push_back(f);
  }
  errno = kErrnoSentinel;
  API(free)(p);
  int errno_after_free = errno;
  unsigned char resident = 0;
  // Still mapped: the munmap inside free really failed.
  bool munmap_failed =
      mincore(reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(p) & ~(page - 1)), page,
              &resident) == 0;
  for (void* f : fillers) munmap(f, page);
  munmap(below, page);
  munmap(above, page);
  EXPECT_TRUE(at_limit);
  EXPECT_EQ(errno_after_free, kErrnoSentinel) << "free changed errno";
  if (!munmap_failed) GTEST_SKIP() << "munmap did not fail at the map-count limit";
}

// An in-place mremap refused (ENOMEM: the next pages are taken) before a move that succeeds must
// not show in errno.
TEST(Errno, ReallocThatMovesAHugeBlockKeepsErrno) {
  auto* p = static_cast<unsigned char*>(API(malloc)(opaque(kHugeBlock)));
  ASSERT_NE(p, nullptr);
  memset(p, 0x5a, 4096);
  std::uintptr_t lo = 0, hi = 0;
  ASSERT_TRUE(vma_containing(p, &lo, &hi));
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  // A guard right after the mapping (it may already be taken: growth in place fails either way).
  void* guard = mmap(reinterpret_cast<void*>(hi), page, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  errno = kErrnoSentinel;
  auto* q = static_cast<unsigned char*>(API(realloc)(p, opaque(kHugeBlock + (8 << 20))));
  int errno_after = errno;
  if (guard != MAP_FAILED) munmap(guard, page);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(errno_after, kErrnoSentinel);
  EXPECT_EQ(q[0], 0x5a);
  EXPECT_EQ(q[4095], 0x5a);
  API(free)(q);
}

// As glibc's (2.36, checked): ENOMEM returned and errno ENOMEM; EINVAL returned, errno untouched;
// on success errno untouched.
TEST(Errno, PosixMemalignSetsErrnoAsGlibc) {
  void* sentinel = reinterpret_cast<void*>(0x1234);
  void* out = sentinel;
  errno = 0;
  EXPECT_EQ(API(posix_memalign)(&out, 64, opaque(SIZE_MAX - 100)), ENOMEM);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(API(posix_memalign)(&out, opaque(std::size_t{1} << 63), 64), ENOMEM);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(API(posix_memalign)(&out, 64, opaque(std::size_t{1} << 62)), ENOMEM);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(out, sentinel);
  errno = kErrnoSentinel;
  EXPECT_EQ(API(posix_memalign)(&out, opaque(24), 64), EINVAL);
  EXPECT_EQ(errno, kErrnoSentinel);
  EXPECT_EQ(API(posix_memalign)(&out, 4096, opaque(100)), 0);
  EXPECT_EQ(errno, kErrnoSentinel);
  API(free)(out);
}

// ---- no cancellation point: a thread with a pending cancellation request prints everything ---

struct CancelRun {
  FILE* stream;           // malloc_info's stream, or nullptr for malloc_stats (to stderr)
  bool returned = false;  // the call returned
  bool survived = false;  // pthread_testcancel returned (must not)
};

void* print_with_cancel_pending(void* arg) {
  auto* run = static_cast<CancelRun*>(arg);
  pthread_cancel(pthread_self());  // deferred: acted on at the next cancellation point
  if (run->stream != nullptr)
    API(malloc_info)(0, run->stream);
  else
    API(malloc_stats)();
  run->returned = true;
  pthread_testcancel();
  run->survived = true;
  return nullptr;
}

std::string read_all(FILE* f) {
  fflush(f);
  std::string text;
  char buf[4096];
  rewind(f);
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  return text;
}

TEST(Cancellation, MallocStatsIsNoCancellationPoint) {
  FILE* out = tmpfile();
  ASSERT_NE(out, nullptr);
  fflush(stderr);
  int saved_stderr = dup(2);
  ASSERT_GE(saved_stderr, 0);
  ASSERT_EQ(dup2(fileno(out), 2), 2);
  CancelRun run{nullptr};
  pthread_t t;
  void* result = nullptr;
  ASSERT_EQ(pthread_create(&t, nullptr, print_with_cancel_pending, &run), 0);
  pthread_join(t, &result);
  dup2(saved_stderr, 2);
  close(saved_stderr);
  std::string text = read_all(out);
  fclose(out);
  EXPECT_TRUE(run.returned) << "cancelled inside malloc_stats; printed: " << text;
  EXPECT_FALSE(run.survived);
  EXPECT_EQ(result, PTHREAD_CANCELED);
  EXPECT_NE(text.find("Total (incl. mmap):"), std::string::npos) << text;
  EXPECT_NE(text.find("max mmap bytes   ="), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(Cancellation, MallocInfoIsNoCancellationPoint) {
  FILE* out = tmpfile();
  ASSERT_NE(out, nullptr);
  setvbuf(out, nullptr, _IONBF, 0);  // every fwrite is a write(2), a cancellation point
  CancelRun run{out};
  pthread_t t;
  void* result = nullptr;
  ASSERT_EQ(pthread_create(&t, nullptr, print_with_cancel_pending, &run), 0);
  pthread_join(t, &result);
  std::string text = read_all(out);
  fclose(out);
  EXPECT_TRUE(run.returned) << "cancelled inside malloc_info; printed: " << text;
  EXPECT_FALSE(run.survived);
  EXPECT_EQ(result, PTHREAD_CANCELED);
  EXPECT_EQ(text.rfind("<malloc version=\"1\">", 0), 0u) << text;
  EXPECT_NE(text.find("</malloc>\n"), std::string::npos) << text;
}

// ---- mallinfo2 in glibc's meanings (malloc/malloc.c int_mallinfo, mallinfo2(3)) ------------

std::vector<void*> free_every_other_small_block(std::size_t n) {
  std::vector<void*> kept;
  kept.reserve(200);
  std::vector<void*> all;
  all.reserve(400);
  for (int i = 0; i < 400; ++i) all.push_back(API(malloc)(opaque(n)));
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i % 2 == 0)
      API(free)(all[i]);
    else
      kept.push_back(all[i]);
  }
  return kept;
}

TEST(Mallinfo2, FieldsFollowGlibcMeanings) {
  // 40-byte requests take 48-byte blocks: below glibc's default mxfast (128), fastbin sizes.
  std::vector<void*> kept = free_every_other_small_block(40);
  struct mallinfo2 m = API(mallinfo2)();
  EXPECT_GE(m.smblks, 200u);  // free fastbin-sized blocks
  EXPECT_GE(m.fsmblks, 200u * 48);
  EXPECT_LE(m.fsmblks, m.fordblks);             // fastbin bytes are free bytes too
  EXPECT_EQ(m.usmblks, 0u);                     // "unused, always 0" (mallinfo2(3))
  EXPECT_EQ(m.uordblks + m.fordblks, m.arena);  // glibc's identity (review of issue 9)
  EXPECT_LE(m.keepcost, m.fordblks);
  EXPECT_EQ(m.keepcost, stats().bytes_dirty);  // what malloc_trim(0) could give back
  // A freed large block stays dirty (within the arena's dirty budget of at least 128 KiB) until
  // decay or a trim: releasable, so in keepcost.
  void* large = API(malloc)(opaque(80 << 10));
  API(free)(large);
  EXPECT_GE(API(mallinfo2)().keepcost, std::size_t{80} << 10);
  // Huge blocks (glibc: mmapped chunks) are in hblks and hblkhd only.
  void* big = API(malloc)(opaque(kHugeBlock));
  struct mallinfo2 h = API(mallinfo2)();
  EXPECT_EQ(h.hblks, m.hblks + 1);
  EXPECT_GE(h.hblkhd, m.hblkhd + kHugeBlock);
  EXPECT_EQ(h.uordblks, m.uordblks);
  EXPECT_EQ(h.arena, m.arena);
  API(free)(big);
  for (void* p : kept) API(free)(p);
  API(malloc_trim)(0);
  EXPECT_EQ(API(mallinfo2)().keepcost, 0u);
  struct mallinfo old = API(mallinfo)();
  EXPECT_EQ(old.usmblks, 0);
  EXPECT_GE(old.fordblks, old.keepcost);
}

// glibc: mallopt(M_MXFAST, v) accepts 0 <= v <= 160 (MAX_FAST_SIZE, 64-bit); with 0 there are no
// fastbin chunks, so smblks and fsmblks are 0 and the free chunks are ordinary (ordblks).
TEST(Mallinfo2, NoFastBlocksWhenMxfastIsZero) {
  EXPECT_EQ(API(mallopt)(M_MXFAST, -1), 0);
  EXPECT_EQ(API(mallopt)(M_MXFAST, 161), 0);
  ASSERT_EQ(API(mallopt)(M_MXFAST, 0), 1);
  std::vector<void*> kept = free_every_other_small_block(40);
  struct mallinfo2 m = API(mallinfo2)();
  std::string xml = malloc_info_xml();
  ASSERT_EQ(API(mallopt)(M_MXFAST, 128), 1);  // glibc's default again
  struct mallinfo2 d = API(mallinfo2)();
  for (void* p : kept) API(free)(p);
  EXPECT_EQ(m.smblks, 0u);
  EXPECT_EQ(m.fsmblks, 0u);
  EXPECT_GE(m.ordblks, 200u);
  EXPECT_NE(xml.find("</heap>\n<total type=\"fast\" count=\"0\" size=\"0\"/>"), std::string::npos)
      << xml;
  EXPECT_GE(d.smblks, 200u);
}

// ctest runs this one again with GLIBC_TUNABLES=glibc.malloc.mxfast=0 (tests/unit/CMakeLists.txt).
TEST(Mallinfo2, MxfastTunableZeroMeansNoFastBlocks) {
  const char* tunables = getenv("GLIBC_TUNABLES");
  if (tunables == nullptr || strstr(tunables, "glibc.malloc.mxfast=0") == nullptr)
    GTEST_SKIP() << "run with GLIBC_TUNABLES=glibc.malloc.mxfast=0";
  if (mallard_option_get("mxfast") < 0)
    GTEST_SKIP() << "Mallard's option table has no mxfast option (glibc.malloc.mxfast) yet";
  EXPECT_EQ(mallard_option_get("mxfast"), 0);
  std::vector<void*> kept = free_every_other_small_block(40);
  struct mallinfo2 m = API(mallinfo2)();
  for (void* p : kept) API(free)(p);
  EXPECT_EQ(m.smblks, 0u);
  EXPECT_EQ(m.fsmblks, 0u);
  EXPECT_GE(m.ordblks, 200u);
}

TEST(Threads, BlocksFreedByOtherThreadsAndAfterTheirExit) {
  std::vector<void*> from_thread;
  std::thread t([&] {
    for (int i = 0; i < 5000; ++i)
      from_thread.push_back(API(malloc)(static_cast<std::size_t>(i % 500 + 1)));
  });
  t.join();  // the thread's heap is abandoned; its blocks stay valid
  for (void* p : from_thread) API(free)(p);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// ---- C++ operators -------------------------------------------------------------------------

struct alignas(256) Overaligned {
  char data[300];
};

TEST(Cxx, EveryOperatorForm) {
  int* a = new int(5);
  int* b = new int[100];
  delete a;
  delete[] b;
  auto* c = new (std::nothrow) char[10];
  delete[] c;
  auto* o = new Overaligned;
  EXPECT_TRUE(aligned(o, 256));
  delete o;
  auto* oa = new Overaligned[3];
  EXPECT_TRUE(aligned(oa, 256));
  delete[] oa;
  void* raw = ::operator new (64, std::align_val_t{128});
  EXPECT_TRUE(aligned(raw, 128));
  ::operator delete (raw, 64, std::align_val_t{128});
  void* n = ::operator new (32, std::align_val_t{64}, std::nothrow);
  EXPECT_TRUE(aligned(n, 64));
  ::operator delete (n, std::align_val_t{64}, std::nothrow);
  void* s = ::operator new(48);
  ::operator delete(s, 48);
}

TEST(Cxx, FailureThrowsBadAllocOrReturnsNull) {
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX / 2)), std::bad_alloc);
  EXPECT_THROW((void)::operator new[](opaque(SIZE_MAX / 2)), std::bad_alloc);
  EXPECT_THROW((void)::operator new (opaque(SIZE_MAX / 2), std::align_val_t{64}), std::bad_alloc);
  EXPECT_EQ(::operator new(opaque(SIZE_MAX / 2), std::nothrow), nullptr);
  EXPECT_EQ(::operator new (opaque(SIZE_MAX / 2), std::align_val_t{64}, std::nothrow), nullptr);
}

int g_handler_calls = 0;
void counting_handler() {
  if (++g_handler_calls == 3) std::set_new_handler(nullptr);  // then give up: bad_alloc
}

TEST(Cxx, NewCallsTheNewHandler) {
  g_handler_calls = 0;
  std::set_new_handler(counting_handler);
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX / 2)), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 3);
  std::set_new_handler(nullptr);
}

// ---- bad pointers: one line, then abort ----------------------------------------------------

using BadPointer = ::testing::Test;

TEST(BadPointerDeathTest, DoubleFree) {
  EXPECT_DEATH(
      {
        void* p = API(malloc)(64);
        API(free)(p);
        API(free)(p);
      },
      "^mallard: double free in free\\(0x[0-9a-f]+\\)\n");
}

TEST(BadPointerDeathTest, DoubleFreeOfALargeBlock) {
  EXPECT_DEATH(
      {
        void* p = API(malloc)(100000);
        API(free)(p);
        API(free)(p);
      },
      "mallard: double free in free\\(0x");
}

TEST(BadPointerDeathTest, DoubleFreeOfAHugeBlock) {
  EXPECT_DEATH(
      {
        void* p = API(malloc)(opaque(std::size_t{40} << 20));
        API(free)(p);
        API(free)(p);
      },
      "mallard: double free in free\\(0x");
}

TEST(BadPointerDeathTest, ForeignPointers) {
  EXPECT_DEATH(
      {
        int on_stack = 0;
        API(free)(&on_stack);
      },
      "mallard: invalid pointer \\(not allocated by mallard\\) in free\\(0x");
  static char in_data[64];
  EXPECT_DEATH(API(free)(in_data), "not allocated by mallard");
}

TEST(BadPointerDeathTest, InteriorPointers) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(API(malloc)(64));
        API(free)(p + 16);
      },
      "mallard: invalid pointer \\(not the start of a block\\) in free\\(0x");
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(API(malloc)(100000));
        API(free)(p + 8192);
      },
      "not the start of a block");
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(API(malloc)(opaque(4 << 20)));
        API(free)(p + 100);
      },
      "not the start of a block");
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(API(malloc)(64));
        API(free)(p + 1);  // misaligned
      },
      "not the start of a block");
}

TEST(BadPointerDeathTest, ReallocOfAFreedPointer) {
  EXPECT_DEATH(
      {
        void* p = API(malloc)(64);
        API(free)(p);
        (void)API(realloc)(p, 128);
      },
      "mallard: double free in realloc\\(0x");
}

TEST(BadPointerDeathTest, UsableSizeOfAForeignPointer) {
  EXPECT_DEATH(
      {
        int x = 0;
        (void)API(malloc_usable_size)(&x);
      },
      "in malloc_usable_size\\(0x");
}

TEST(BadPointerDeathTest, DeleteOfAnInteriorPointer) {
  EXPECT_DEATH(
      {
        int* volatile p = new int[16];  // volatile: the compiler may not elide the pair
        delete[](p + 1);
      },
      "in operator delete\\(0x");
}

}  // namespace
