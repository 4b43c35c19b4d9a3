// free_list_test.cpp: the checks of frontend/free_list.hpp and the fast paths that use them.
// Frees of blocks never handed out, overwritten free-list links and markers, and sized or
// aligned deletes that do not match the allocation are each reported on one line naming the
// problem, the call and the pointer, then abort. Also: a free block does not show the address of
// the next one.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "../common/bad_pointer_report.h"
#include "backend/segment_map.hpp"
#include "frontend/free_list.hpp"
#include "frontend/heap_registry.hpp"
#include "frontend/thread_heap.hpp"
#include "mallard/mallard.h"

namespace mallard {
namespace {

using test_reports::one_line;
using test_reports::opaque;

const std::string kNeverHandedOut = "invalid pointer \\(a block never handed out\\)";
const std::string kDoubleFree = "double free";
const std::string kCorrupt =
    "^mallard: free list corrupted \\(a free block was overwritten: use after free\\?\\) in "
    "malloc\\(0x[0-9a-f]+\\)\n$";
const std::string kBadSize = "invalid size or alignment \\(not what it was allocated with\\)";

Span* page_of(const void* p) {
  Segment* seg = segment_map::lookup(p);
  Span* entry = seg->entry_for(p);
  return entry - entry->back;
}

// The case: 16 KiB past a 16-byte block is a block start of the same page that was never
// carved. glibc aborts; Mallard once accepted it and later handed the block out twice.
TEST(FreeListDeathTest, FreeOfABlockBeyondTheCarvedPartOfItsPage) {
  char* p = static_cast<char*>(mallard_malloc(16));
  Span* page = page_of(p);
  ASSERT_GE(static_cast<std::size_t>(p + 16384 - page->start), page->carved);
  char* q = p + 16384;
  EXPECT_DEATH(mallard_free(opaque(q)), one_line(kNeverHandedOut, "free", q));
  EXPECT_DEATH((void)mallard_malloc_usable_size(opaque(q)),
               one_line(kNeverHandedOut, "malloc_usable_size", q));
  EXPECT_DEATH((void)mallard_realloc(opaque(q), 8), one_line(kNeverHandedOut, "realloc", q));
  mallard_free(p);
}

// An exited thread's empty page parked for its class (docs/design.md, "Parked pages") is reset to
// never carved, but its blocks keep their free markers: freeing one again is still reported as a
// double free, not as a block never handed out.
TEST(FreeListDeathTest, AFreeIntoAParkedPageIsADoubleFree) {
  constexpr std::size_t kSize = 176;  // a class no other test here fills
  void* freed = nullptr;
  for (int g = 0; g < 12; ++g) {  // threads come and go: the arena learns to park their pages
    std::thread t([&] {
      std::vector<void*> v;
      for (std::size_t i = 0; i < 3 * (64 << 10) / kSize; ++i) v.push_back(mallard_malloc(kSize));
      freed = v[v.size() / 2];
      for (void* q : v) mallard_free(q);
    });
    t.join();
    heap_registry::release_warm_heaps(UINT64_MAX);  // the next thread takes pages of the arena
  }
  Span* page = page_of(freed);
  if (page->kind != kSpanSmall || (page->flags & kSpanParked) == 0)
    GTEST_SKIP() << "the page was not parked (the arena learnt no budget in this process)";
  EXPECT_DEATH(mallard_free(opaque(freed)), one_line(kDoubleFree, "free", freed));
  // Taken again by its class, the page is carved from its start anew: the block, beyond the new
  // carved part, still holds its marker and is still a double free (not "never handed out").
  std::vector<void*> taken;  // until a block comes from that page (the others parked are newer)
  std::thread t([&] {
    for (int i = 0; i < 8 * (64 << 10) / static_cast<int>(kSize); ++i) {
      taken.push_back(mallard_malloc(kSize));
      if (page_of(taken.back()) == page) break;
    }
  });
  t.join();
  if (page_of(taken.back()) != page) GTEST_SKIP() << "the page was not taken again";
  ASSERT_GE(static_cast<std::size_t>(static_cast<char*>(freed) - page->start), page->carved);
  EXPECT_DEATH(mallard_free(opaque(freed)), one_line(kDoubleFree, "free", freed));
  for (void* q : taken) mallard_free(q);
}

// A carved block that was never handed out sits on the free list, marked free: freeing it is a
// double free, for every class. (Found and freed inside the death statement: the death test's
// own allocations could take the block first.)
TEST(FreeListDeathTest, FreeOfACarvedBlockNeverHandedOut) {
  const std::string double_free = "^mallard: double free in free\\(0x[0-9a-f]+\\)\n$";
  for (std::size_t size : {16, 48, 128, 1024, 5000, 65536}) {
    SCOPED_TRACE(size);
    char* p = static_cast<char*>(mallard_malloc(size));
    auto free_waiting = [p](int skip) {
      FreeBlock* b = page_of(p)->free;
      for (int i = 0; i < skip && b != nullptr; ++i) b = decode_link(b);
      if (b == nullptr) {  // not the case tested: fail the death test's expected message
        fprintf(stderr, "no free block\n");
        abort();
      }
      mallard_free(b);
    };
    mallard_free(mallard_malloc(size));  // at least one carved block on the list
    EXPECT_DEATH(free_waiting(0), double_free);
    if (size <= 1024) EXPECT_DEATH(free_waiting(1), double_free);
    Span* page = page_of(p);
    if (page->carved < std::size_t{page->capacity} * page->block_size) {
      char* uncarved = page->start + page->carved;
      // The death test's own allocations may carve it first: then it is a free block.
      EXPECT_DEATH(mallard_free(opaque(uncarved)),
                   one_line("(" + kNeverHandedOut + "|" + kDoubleFree + ")", "free", uncarved));
    }
    mallard_free(p);
  }
}

// Two blocks of one page freed; the first's link overwritten, as a use after free or an overflow
// from the block before would: the next malloc of the class but one aborts instead of returning
// the address written there.
TEST(FreeListDeathTest, AnOverwrittenLinkAbortsInsteadOfHandingOutItsAddress) {
  static char target[64];
  EXPECT_DEATH(
      {
        void* a = mallard_malloc(80);
        void* b = mallard_malloc(80);
        mallard_free(b);
        mallard_free(a);  // list: a -> b
        auto* words = static_cast<std::uintptr_t*>(opaque(a));
        words[0] = reinterpret_cast<std::uintptr_t>(target);  // a raw pointer, not encoded
        void* first = mallard_malloc(80);
        void* second = mallard_malloc(80);  // must not be `target`
        fprintf(stderr, "%p %p\n", first, second);
      },
      kCorrupt);
  EXPECT_DEATH(
      {
        void* a = mallard_malloc(80);
        void* b = mallard_malloc(80);
        mallard_free(b);
        mallard_free(a);
        memset(opaque(a), 0, 16);  // zeroed by a use after free
        void* first = mallard_malloc(80);
        void* second = mallard_malloc(80);
        fprintf(stderr, "%p %p\n", first, second);
      },
      kCorrupt);
}

// Blocks freed by another thread wait on their page's remote list, encoded the same way: a use
// after free that overwrites one is reported when the owner takes the list back or hands the
// block out, not followed (found by review: the walk to the list's tail crashed).
TEST(FreeListDeathTest, AnOverwrittenRemoteFreeAbortsInsteadOfCrashing) {
  EXPECT_DEATH(
      {
        static void* blocks[4096];
        for (void*& b : blocks) b = mallard_malloc(48);
        std::thread([] {
          for (void* b : blocks) mallard_free(b);
        }).join();
        memset(opaque(blocks[4095]), 0x41, 8);  // the head of a page's remote list
        for (void*& b : blocks) b = mallard_malloc(48);
        fprintf(stderr, "not reported\n");
      },
      kCorrupt);
  EXPECT_DEATH(
      {  // the same with blocks still on the local list: the remote list is then spliced in
        static void* blocks[4096];
        for (void*& b : blocks) b = mallard_malloc(48);
        std::thread([] {
          for (int i = 0; i < 4096; i += 2) mallard_free(blocks[i]);
        }).join();
        for (int i = 1; i < 4096; i += 2) mallard_free(blocks[i]);
        memset(opaque(blocks[4094]), 0x41, 16);
        mallard_malloc_trim(0);  // collects every page's remote list into its local one
        for (void*& b : blocks) b = mallard_malloc(48);
        fprintf(stderr, "not reported\n");
      },
      kCorrupt);
}

// A link redirected to a live block of the same page (inside the page, so in range) would hand
// that block out twice: its missing free marker stops it.
TEST(FreeListDeathTest, ALinkToALiveBlockOfThePageAborts) {
  EXPECT_DEATH(
      {
        void* live = mallard_malloc(96);
        void* a = mallard_malloc(96);
        void* b = mallard_malloc(96);
        mallard_free(b);
        mallard_free(a);  // list: a -> b
        // Re-encode a's link to point at `live`, as someone who had learnt the keys would.
        relink(static_cast<FreeBlock*>(opaque(a)), static_cast<FreeBlock*>(live));
        void* first = mallard_malloc(96);
        void* second = mallard_malloc(96);  // would be `live`, which is in use
        fprintf(stderr, "%p %p\n", first, second);
      },
      kCorrupt);
}

// Reading a free block does not give the address of the next one.
TEST(FreeList, FreeBlocksDoNotShowTheNextAddress) {
  void* a = mallard_malloc(112);
  void* b = mallard_malloc(112);
  mallard_free(b);
  mallard_free(a);  // a's link is b
  auto* words = static_cast<std::uintptr_t*>(a);
  auto next = reinterpret_cast<std::uintptr_t>(b);
  EXPECT_NE(words[0], next);
  EXPECT_NE(words[0] ^ words[1], next);
  EXPECT_NE(words[0] - words[1], next);
  EXPECT_EQ(decode_link(static_cast<FreeBlock*>(a)), b);
  void* again = mallard_malloc(112);
  EXPECT_EQ(again, a);  // LIFO
  mallard_free(again);
}

// operator delete(p, n) with the size new(n) was given works for every size; with a size of
// another class it is reported.
TEST(FreeListDeathTest, SizedDeleteChecksTheSize) {
#ifndef MALLARD_TEST_OWNS_OPERATORS
  GTEST_SKIP() << "sanitizer build: the sanitizer's operator new and delete are in use";
#endif
  for (std::size_t n : {1, 16, 17, 100, 1024, 1025, 4000, 65536, 65537, 300000, 40 << 20}) {
    void* p = ::operator new(n);
    ::operator delete(p, n);
  }
  for (std::size_t n : {1, 16, 100, 1000}) {
    void* p = ::operator new(n);
    void* q = ::operator new(n);
    std::thread([&] { ::operator delete(q, n); }).join();  // another thread's page
    ::operator delete(p, n);
  }
  void* p = ::operator new(100);
  EXPECT_DEATH(::operator delete(opaque(p), 24), one_line(kBadSize, "operator delete", p));
  EXPECT_DEATH(::operator delete(opaque(p), 2000), one_line(kBadSize, "operator delete", p));
  EXPECT_DEATH(std::thread([&] { ::operator delete(opaque(p), 24); }).join(),
               one_line(kBadSize, "operator delete", p));
  ::operator delete(p, 100);
  void* big = ::operator new(200000);
  EXPECT_DEATH(::operator delete(opaque(big), 300000), one_line(kBadSize, "operator delete", big));
  EXPECT_DEATH(::operator delete(opaque(big), 100), one_line(kBadSize, "operator delete", big));
  ::operator delete(big, 200000);
}

// The aligned forms: the alignment new was given, and the size of that request.
TEST(FreeListDeathTest, AlignedDeleteChecksSizeAndAlignment) {
#ifndef MALLARD_TEST_OWNS_OPERATORS
  GTEST_SKIP() << "sanitizer build: the sanitizer's operator new and delete are in use";
#endif
  for (std::size_t a : {32, 64, 256, 4096, 8192}) {
    for (std::size_t n : {1, 100, 5000}) {
      void* p = ::operator new (n, std::align_val_t{a});
      ::operator delete (p, n, std::align_val_t{a});
      p = ::operator new (n, std::align_val_t{a});
      ::operator delete (p, std::align_val_t{a});
    }
  }
  void* p = ::operator new (100, std::align_val_t{64});
  EXPECT_DEATH(::operator delete (opaque(p), 100, std::align_val_t{4096}),
               one_line(kBadSize, "operator delete", p));
  EXPECT_DEATH(::operator delete (opaque(p), 1000, std::align_val_t{64}),
               one_line(kBadSize, "operator delete", p));
  // A 48-byte block is 16-aligned; it or the block after it is not 64-aligned (the alignment is
  // checked before anything else, so the block after need not be in use).
  char* odd = static_cast<char*>(::operator new(48));
  char* misaligned = reinterpret_cast<std::uintptr_t>(odd) % 64 != 0 ? odd : odd + 48;
  EXPECT_DEATH(::operator delete (opaque(misaligned), std::align_val_t{64}),
               one_line(kBadSize, "operator delete", misaligned));
  ::operator delete (p, 100, std::align_val_t{64});
  ::operator delete(odd, 48);
}

}  // namespace
}  // namespace mallard
