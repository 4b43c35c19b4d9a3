// api_conformance_test.cpp: the whole allocation API with glibc's documented semantics and every
// edge case: sizes 0, 1, SIZE_MAX, PTRDIFF_MAX + 1; calloc/reallocarray overflow; realloc corner
// cases; alignments (0, 3, 2^63, non powers of two); mallopt, mallinfo2, malloc_trim, malloc_info,
// malloc_stats; every C++ operator new/delete; and the bad-pointer reports (death tests).
//
// Built twice: api_conformance_test calls the mallard_-prefixed functions (Mallard linked in);
// api_conformance_preload_test calls the standard names and runs with libmallard.so preloaded
// (its Mallard-only calls are weak references resolved from the preloaded library).
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <new>
#include <string>
#include <thread>
#include <vector>

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

TEST(MallocInfo, WritesGlibcShapedXml) {
  char* buf = nullptr;
  std::size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  ASSERT_EQ(API(malloc_info)(0, f), 0);
  fclose(f);
  std::string xml(buf, len);
  free(buf);  // open_memstream's buffer comes from this process's malloc
  EXPECT_EQ(xml.rfind("<malloc version=\"1\">", 0), 0u) << xml;
  EXPECT_NE(xml.find("<heap nr=\"0\">"), std::string::npos);
  EXPECT_NE(xml.find("<total type=\"mmap\""), std::string::npos);
  EXPECT_NE(xml.find("</malloc>"), std::string::npos);
  EXPECT_EQ(API(malloc_info)(1, stdout), -1);
}

TEST(MallocStats, PrintsGlibcShapedText) {
  testing::internal::CaptureStderr();
  API(malloc_stats)();
  std::string text = testing::internal::GetCapturedStderr();
  EXPECT_NE(text.find("Arena 0:\nsystem bytes     ="), std::string::npos) << text;
  EXPECT_NE(text.find("Total (incl. mmap):"), std::string::npos);
  EXPECT_NE(text.find("max mmap regions ="), std::string::npos);
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
      "mallard: (double free|invalid pointer.*) in free\\(0x");
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
