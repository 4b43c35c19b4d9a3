// thread_heap_test.cpp: ThreadHeap and the heap registry (src/frontend/): same-thread reuse,
// pages owned by the calling thread, remote frees collected by the owner, abandonment at thread
// exit and adoption by a later thread, heap records reused.
#include "frontend/thread_heap.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "backend/arena_registry.hpp"
#include "backend/segment_map.hpp"
#include "config/options.hpp"
#include "frontend/heap_registry.hpp"
#include "mallard/mallard.h"

namespace mallard {
namespace {

Span* page_of(void* p) {
  Segment* seg = segment_map::lookup(p);
  Span* e = seg->entry_for(p);
  return e - e->back;
}

TEST(ThreadHeap, SameThreadFreesAreReusedBeforeFreshMemory) {
  // Owner frees go to the page's local list, which becomes the free list when the latter runs
  // dry: the freed block comes back within one page's worth of allocations, and a loop of
  // malloc/free never takes a new page.
  void* a = mallard_malloc(40);
  Span* page = page_of(a);
  mallard_free(a);
  bool reused = false;
  std::vector<void*> held;
  held.reserve(page->capacity + 1);
  for (std::uint32_t i = 0; i <= page->capacity && !reused; ++i) {
    held.push_back(mallard_malloc(40));
    reused = held.back() == a;
  }
  EXPECT_TRUE(reused);
  for (void* p : held) mallard_free(p);
  mallard_stats before;
  mallard_get_stats(&before);
  for (int i = 0; i < 100000; ++i) mallard_free(mallard_malloc(40));
  mallard_stats after;
  mallard_get_stats(&after);
  EXPECT_EQ(after.classes[2].pages, before.classes[2].pages);
}

TEST(ThreadHeap, SmallBlocksLiveInPagesOwnedByTheCallingThread) {
  void* p = mallard_malloc(100);
  Span* page = page_of(p);
  EXPECT_EQ(page->kind, kSpanSmall);
  EXPECT_EQ(page->owner(), tl_heap);
  EXPECT_EQ(page->block_size, 112u);
  EXPECT_FALSE(tl_heap->is_sentinel());
  mallard_free(p);
}

// Same-thread frees of blocks whose page does not start at their 64 KiB chunk (the second chunk
// of a 10 KiB class's 80 KiB page) miss the chunk fast path and still go back to their page as
// the owner's frees: reused first, LIFO, with no remote free.
TEST(ThreadHeap, OwnFreesBeyondThePagesFirstChunkStayLocal) {
  std::vector<char*> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(static_cast<char*>(mallard_malloc(10 * 1024)));
  Span* page = page_of(blocks[0]);
  ASSERT_GT(page->page_count, segment_map::kChunkPages);
  char* far = nullptr;
  for (char* b : blocks)
    if (page_of(b) == page &&
        b - page->start >= static_cast<std::ptrdiff_t>(segment_map::kChunkSize))
      far = b;
  ASSERT_NE(far, nullptr);
  EXPECT_NE(segment_map::fast_chunk_of(far), page);
  std::uint32_t used = page->used;
  mallard_free(far);
  EXPECT_EQ(page->used, used - 1);  // an owner's free: no remote list involved
  EXPECT_EQ(page->thread_free.load(), 0u);
  char* again = static_cast<char*>(mallard_malloc(10 * 1024));
  EXPECT_EQ(again, far);
  for (char* b : blocks) mallard_free(b);
}

// Pages of the classes above 8 KiB mixed with smaller ones: every page starts on a chunk
// boundary and is whole chunks, so none leaves a hole before the next (review of stop 19: 10 KiB
// and 8 KiB blocks together lost a quarter of an address-space limit to such holes).
TEST(ThreadHeap, PagesOfMixedClassesAllStartOnChunkBoundaries) {
  std::vector<void*> blocks;
  for (int round = 0; round < 4; ++round)
    for (std::size_t size :
         {std::size_t{10240}, std::size_t{8192}, std::size_t{20000}, std::size_t{100}}) {
      for (int i = 0; i < 12; ++i) blocks.push_back(mallard_malloc(size));
    }
  for (void* p : blocks) {
    Span* page = page_of(p);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(page->start) % segment_map::kChunkSize, 0u)
        << page->block_size;
    EXPECT_EQ(page->page_count % segment_map::kChunkPages, 0u) << page->block_size;
  }
  for (void* p : blocks) mallard_free(p);
}

TEST(ThreadHeap, SmallPagesStartOnAChunkBoundary) {
  void* p = mallard_malloc(48);
  Span* page = page_of(p);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(page->start) % segment_map::kChunkSize, 0u);
  EXPECT_EQ(segment_map::fast_chunk_of(p), page);
  mallard_free(p);
}

TEST(ThreadHeap, RemoteFreesAreCollectedByTheOwner) {
  std::vector<void*> blocks;
  for (int i = 0; i < 300; ++i) blocks.push_back(mallard_malloc(64));
  Span* page = page_of(blocks[0]);
  std::thread other([&] {
    for (void* p : blocks) mallard_free(p);  // cross-thread: one atomic push each
  });
  other.join();
  EXPECT_GT(thread_free_count(page->thread_free.load()), 0u);
  // The owner takes them back when it needs blocks of that class.
  std::vector<void*> again;
  for (int i = 0; i < 2000; ++i) again.push_back(mallard_malloc(64));
  EXPECT_EQ(thread_free_count(page->thread_free.load()), 0u);
  for (void* p : again) mallard_free(p);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// A refill takes blocks other threads freed into a full page before it carves never-used blocks
// of the current page (which would make new memory resident while freed ones wait: a producer
// whose consumer frees what it allocates).
TEST(ThreadHeap, RemoteFreesIntoAFullPageAreReusedBeforeNeverUsedBlocks) {
  constexpr std::size_t kSize = 1792;
  std::vector<void*> first_page_blocks;
  std::vector<void*> held;
  void* p = mallard_malloc(kSize);
  Span* full = page_of(p);
  first_page_blocks.push_back(p);
  for (;;) {  // fill the page: the next block comes from another one
    p = mallard_malloc(kSize);
    if (page_of(p) != full) break;
    first_page_blocks.push_back(p);
  }
  Span* current = page_of(p);
  held.push_back(p);
  ASSERT_TRUE(full->on_full_list());
  while (current->free != nullptr) held.push_back(mallard_malloc(kSize));  // its carved blocks
  ASSERT_LT(current->carved, std::uint64_t{current->capacity} * current->block_size);
  std::thread([&] {
    for (void* b : first_page_blocks) mallard_free(b);
  }).join();
  void* again = mallard_malloc(kSize);
  EXPECT_EQ(page_of(again), full);
  mallard_free(again);
  for (void* b : held) mallard_free(b);
  EXPECT_EQ(mallard_check_heap(), 0);
}

TEST(ThreadHeap, ExitedThreadsPagesAreAbandonedThenAdopted) {
  mallard_stats s0;
  mallard_get_stats(&s0);
  std::vector<void*> left_behind;
  std::thread t([&] {
    for (int i = 0; i < 100; ++i) left_behind.push_back(mallard_malloc(4000));
  });
  t.join();
  heap_registry::release_warm_heaps(UINT64_MAX);  // as if it had aged out: its pages go
  mallard_stats s1;
  mallard_get_stats(&s1);
  EXPECT_GT(s1.abandoned_pages, s0.abandoned_pages);
  EXPECT_EQ(page_of(left_behind[0])->owner(), nullptr);
  // Free half from here: the blocks of an exited thread are still valid.
  for (std::size_t i = 0; i < left_behind.size(); i += 2) mallard_free(left_behind[i]);
  // A new thread allocating the same class adopts an abandoned page.
  void* adopted_page_owner = nullptr;
  std::thread u([&] {
    void* p = mallard_malloc(4000);
    adopted_page_owner = page_of(p)->owner();
    mallard_free(p);
  });
  u.join();
  EXPECT_NE(adopted_page_owner, nullptr);
  for (std::size_t i = 1; i < left_behind.size(); i += 2) mallard_free(left_behind[i]);
  EXPECT_EQ(mallard_check_heap(), 0);
}

TEST(ThreadHeap, HeapRecordsAreReusedAcrossThreadChurn) {
  for (int i = 0; i < 200; ++i) {
    std::thread t([] { mallard_free(mallard_malloc(32)); });
    t.join();
  }
  heap_registry::Counts c = heap_registry::counts();
  EXPECT_GE(c.total, 200u);
  EXPECT_LT(c.records, 20u);  // records are recycled, not leaked
}

TEST(ThreadHeap, EmptyPagesGoBackToTheArena) {
  mallard_stats before;
  mallard_get_stats(&before);
  std::vector<void*> v;
  for (int i = 0; i < 20000; ++i) v.push_back(mallard_malloc(256));
  for (void* p : v) mallard_free(p);
  mallard_stats after;
  mallard_get_stats(&after);
  // At most the one page kept per class remains with the thread.
  EXPECT_LE(after.classes[11].pages, before.classes[11].pages + 16);
}

}  // namespace
}  // namespace mallard

namespace mallard {
namespace {

TEST(ThreadHeap, ShortLivedThreadsReuseTheArenaOfExitedThreads) {
  mallard_stats before;
  mallard_get_stats(&before);
  for (int i = 0; i < 50; ++i) {
    std::thread t([] {
      for (int k = 0; k < 100; ++k)
        mallard_free(mallard_malloc(static_cast<std::size_t>(k * 10 + 1)));
    });
    t.join();
  }
  mallard_stats after;
  mallard_get_stats(&after);
  // glibc's rule: a new thread takes an arena no live thread uses before creating one, so 50
  // threads one after another need at most one more arena, not 50 (or the cap).
  EXPECT_LE(after.arenas, before.arenas + 1);
}

}  // namespace
}  // namespace mallard

namespace mallard {
namespace {

TEST(ThreadHeap, AbandonedPagesGoBackWhenTheirLastBlockIsFreed) {
  mallard_stats before;
  mallard_get_stats(&before);
  std::vector<void*> orphans;
  orphans.reserve(64);
  std::thread t([&] {
    for (int i = 0; i < 64; ++i) orphans.push_back(mallard_malloc(20000));  // several pages
  });
  t.join();
  heap_registry::release_warm_heaps(UINT64_MAX);  // as if it had aged out: its pages go
  mallard_stats abandoned;
  mallard_get_stats(&abandoned);
  EXPECT_GT(abandoned.abandoned_pages, before.abandoned_pages);
  for (void* p : orphans) mallard_free(p);  // remote frees into pages nobody owns
  mallard_stats after;
  mallard_get_stats(&after);
  // Regression: such pages stayed abandoned (holding their memory) until a decay pass, which
  // only ran while the arena had dirty memory: thread churn made RSS grow without bound.
  EXPECT_EQ(after.abandoned_pages, before.abandoned_pages);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// ---- issue 11: memory freed by other threads returns while its owner idles ---------------------

// An owner thread that allocates blocks.capacity() blocks of `size` bytes into `blocks` (reserved
// by the caller, so that the test's own vector is counted before) and then waits, making no
// call, until the object goes.
class IdleOwner {
 public:
  IdleOwner(std::vector<void*>& blocks, std::size_t size) {
    thread_ = std::thread([this, &blocks, size] {
      while (blocks.size() < blocks.capacity()) blocks.push_back(mallard_malloc(size));
      heap_ = tl_heap;
      step_ = 1;
      while (step_.load() != 2) std::this_thread::yield();
    });
    while (step_.load() != 1) std::this_thread::yield();
  }
  ~IdleOwner() {
    step_ = 2;
    thread_.join();
  }
  ThreadHeap* heap() const { return heap_; }

 private:
  ThreadHeap* heap_ = nullptr;
  std::atomic<int> step_{0};
  std::thread thread_;
};

// Bytes of the small pages threads hold (their blocks in use and free).
std::size_t small_bytes() {
  mallard_stats s;
  mallard_get_stats(&s);
  return s.bytes_small + s.bytes_free_in_pages;
}

// The free of the last block of a page on its owner's full list gives the page back at once.
TEST(ThreadHeap, RemoteFreesGiveBackFullPagesWhileTheirOwnerIdles) {
  std::vector<void*> blocks;
  blocks.reserve(2560);  // forty 64 KiB pages of 1 KiB blocks, all full but maybe the last
  heap_registry::release_warm_heaps(UINT64_MAX);  // the owner starts with a heap of its own
  std::size_t before = small_bytes();
  IdleOwner owner(blocks, 1024);
  EXPECT_GE(small_bytes(), before + 2500 * 1024);
  for (void* p : blocks) mallard_free(p);
  // Left: the kFullPagesKept newest full pages (an active owner would reuse them), the owner's
  // current page (not on the full list: its blocks wait for the owner), and maybe a page it
  // adopted from an earlier test's thread.
  EXPECT_LE(small_bytes(), before + (ThreadHeap::kFullPagesKept + 2) * 64 * 1024);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// When the owner's lock was busy at that free, malloc_trim from any thread gives such pages back.
TEST(ThreadHeap, MallocTrimFromAnotherThreadGivesBackFullPagesWhoseBlocksCameBack) {
  std::vector<void*> blocks;
  blocks.reserve(2560);
  heap_registry::release_warm_heaps(UINT64_MAX);  // the owner starts with a heap of its own
  std::size_t before = small_bytes();
  IdleOwner owner(blocks, 1024);
  owner.heap()->slow_lock().lock();  // the owner "busy": the frees cannot reclaim
  for (void* p : blocks) mallard_free(p);
  owner.heap()->slow_lock().unlock();
  EXPECT_GE(small_bytes(), before + 2500 * 1024);
  mallard_malloc_trim(0);  // no page kept
  EXPECT_LE(small_bytes(), before + 128 * 1024);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// A thread that needs pages of a class takes the full pages of an idle thread whose blocks have
// largely come back by remote frees (ThreadHeap::give_full_page), before fresh memory: Larson's
// server threads, descheduled while the others free into their pages.
TEST(ThreadHeap, AThreadThatNeedsPagesTakesAnIdleThreadsFullPagesWithRemoteFrees) {
  constexpr std::size_t kSize = 720;  // class 768: 85 blocks per 64 KiB page, rare in other tests
  std::vector<void*> blocks;
  blocks.reserve(85 * 12);
  IdleOwner owner(blocks, kSize);
  std::vector<Span*> owner_pages;
  for (void* p : blocks)
    if (page_of(p)->owner() == owner.heap() &&
        std::find(owner_pages.begin(), owner_pages.end(), page_of(p)) == owner_pages.end())
      owner_pages.push_back(page_of(p));
  ASSERT_GE(owner_pages.size(), 10u);
  // Half of each page comes back by remote frees (no page empties: none is given back).
  std::vector<void*> kept;
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (i % 2 == 0)
      mallard_free(blocks[i]);
    else
      kept.push_back(blocks[i]);
  }
  std::size_t taken = 0;
  ThreadHeap* thief_heap = nullptr;
  std::vector<void*> got;
  std::thread thief([&] {
    for (int i = 0; i < 200; ++i) got.push_back(mallard_malloc(kSize));
    thief_heap = tl_heap;
    for (void* p : got) {
      Span* page = page_of(p);
      if (std::find(owner_pages.begin(), owner_pages.end(), page) != owner_pages.end() &&
          page->owner() == thief_heap)
        ++taken;
    }
    for (void* p : got) mallard_free(p);
  });
  thief.join();
  // Every block the thief got came from the idle owner's pages, which it now owns.
  EXPECT_EQ(taken, got.size());
  for (void* p : kept) mallard_free(p);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// A thread that grew for long with nothing to take (every look at other heaps came back empty)
// still takes an idle thread's full pages once they fill with remote frees: its looks are not
// backed off for having found no hinted heap (the second review's backoff.c: 6400 fresh
// blocks, +6.7 MiB, when 255 looks were skipped).
TEST(ThreadHeap, LooksForOtherHeapsPagesResumeAfterALongGrowth) {
  constexpr std::size_t kSize = 720;  // class 768: 85 blocks per 64 KiB page
  std::size_t taken = 0, wanted = 0;
  std::thread grower([&] {
    std::vector<void*> mine;
    for (int i = 0; i < 16384; ++i) mine.push_back(mallard_malloc(kSize));  // ~190 refills
    std::vector<void*> blocks;
    blocks.reserve(85 * 40);
    std::vector<Span*> idle_pages;
    {
      IdleOwner owner(blocks, kSize);
      for (void* p : blocks)
        if (std::find(idle_pages.begin(), idle_pages.end(), page_of(p)) == idle_pages.end())
          idle_pages.push_back(page_of(p));
      for (std::size_t i = 0; i < blocks.size(); i += 2) mallard_free(blocks[i]);
      std::vector<void*> again;
      wanted = blocks.size() / 2;
      for (std::size_t i = 0; i < wanted; ++i) {
        void* p = mallard_malloc(kSize);
        again.push_back(p);
        if (std::find(idle_pages.begin(), idle_pages.end(), page_of(p)) != idle_pages.end())
          ++taken;
      }
      for (void* p : again) mallard_free(p);
      for (std::size_t i = 1; i < blocks.size(); i += 2) mallard_free(blocks[i]);
    }
    for (void* p : mine) mallard_free(p);
  });
  grower.join();
  // All but the current page's never-used blocks and the 3 refills a look that found nothing
  // skips (85 blocks a page).
  EXPECT_GE(taken, wanted - 5 * 85) << "of " << wanted;
  EXPECT_EQ(mallard_check_heap(), 0);
}

// The same while the owner wakes up and frees its own blocks into the pages being taken (its
// free read the owner tag before the thief changed it: ThreadHeap::free_into_full_page confirms
// it under the lock) and a third thread frees more of them: no data race under TSan, every block
// handed out once, the lists whole.
TEST(ThreadHeap, TakingFullPagesRacesNothingWithTheirOwnerAndRemoteFrees) {
  constexpr std::size_t kSize = 720;
  for (int round = 0; round < 20; ++round) {
    std::vector<void*> blocks;
    blocks.reserve(85 * 8);
    std::atomic<int> go{0};
    std::thread owner([&] {
      while (blocks.size() < blocks.capacity()) blocks.push_back(mallard_malloc(kSize));
      go = 1;
      while (go.load() != 2) std::this_thread::yield();
      for (std::size_t i = 0; i < blocks.size(); i += 4) mallard_free(blocks[i]);
      std::vector<void*> more;
      for (int i = 0; i < 100; ++i) more.push_back(mallard_malloc(kSize));
      for (void* p : more) mallard_free(p);
    });
    while (go.load() != 1) std::this_thread::yield();
    for (std::size_t i = 1; i < blocks.size(); i += 4) mallard_free(blocks[i]);
    std::vector<void*> got;
    std::thread thief([&] {
      go = 2;
      for (int i = 0; i < 300; ++i) {
        got.push_back(mallard_malloc(kSize));
        std::memset(got.back(), 0x5a, kSize);
      }
    });
    for (std::size_t i = 2; i < blocks.size(); i += 4) mallard_free(blocks[i]);
    thief.join();
    owner.join();
    std::sort(got.begin(), got.end());
    EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());  // none handed out twice
    for (void* p : got) mallard_free(p);
    for (std::size_t i = 3; i < blocks.size(); i += 4) mallard_free(blocks[i]);
  }
  EXPECT_EQ(mallard_check_heap(), 0);
}

// A page that becomes current again with blocks on its own free list keeps its remote frees
// where they are until it runs dry: merging them walks the remote list, a cache miss per block
// another thread wrote (ThreadHeap::ready_or_collect; bench larson t2-t8 +19-27% throughput).
TEST(ThreadHeap, RemoteFreesWaitUntilAPageWithLocalFreesRunsDry) {
  constexpr std::size_t kSize = 720;  // class 768: 85 blocks per 64 KiB page
  std::vector<void*> first;
  std::uint64_t remote_left = 0;
  heap_registry::release_warm_heaps(UINT64_MAX);  // no earlier test's heap kept warm
  std::thread owner([&] {
    // A fresh heap: its first page of the class fills, the second becomes current.
    for (int i = 0; i < 85 + 10; ++i) first.push_back(mallard_malloc(kSize));
    Span* a = page_of(first[0]);
    ASSERT_TRUE(a->on_full_list());
    for (int i = 0; i < 5; ++i) mallard_free(first[i]);  // A: back to the queue, 5 local frees
    std::thread([&] {
      for (int i = 5; i < 25; ++i) mallard_free(first[i]);  // 20 remote frees into A
    }).join();
    ASSERT_EQ(thread_free_count(a->thread_free.load()), 20u);
    std::vector<void*> more;
    while (true) {  // until a block comes from A again
      void* p = mallard_malloc(kSize);
      more.push_back(p);
      if (page_of(p) == a) break;
      ASSERT_LT(more.size(), 200u);
    }
    remote_left = thread_free_count(a->thread_free.load());
    for (void* p : more) mallard_free(p);
    for (std::size_t i = 25; i < first.size(); ++i) mallard_free(first[i]);
  });
  owner.join();
  EXPECT_EQ(remote_left, 20u);  // A's own 5 blocks first; its remote list untouched
  EXPECT_EQ(mallard_check_heap(), 0);
}

// An owner that keeps allocating (its refills write its current pages without a lock) while
// another thread frees the last blocks of its full pages (and so gives them back) and a third
// trims: the reclaim must not read the owner's current pages (a data race under TSan).
TEST(ThreadHeap, ReclaimByOtherThreadsRacesNothingWithAnAllocatingOwner) {
  constexpr std::size_t kBatch = 1024;  // 16 pages of 1 KiB blocks
  std::mutex m;
  std::vector<std::vector<void*>> handed;
  std::atomic<bool> done{false};
  std::thread owner([&] {
    for (int round = 0; round < 40; ++round) {
      std::vector<void*> batch;
      batch.reserve(kBatch);
      for (std::size_t i = 0; i < kBatch; ++i) batch.push_back(mallard_malloc(1024));
      std::lock_guard<std::mutex> g(m);
      handed.push_back(std::move(batch));
    }
    done = true;
  });
  std::thread trimmer([&] {
    while (!done.load()) {
      mallard_malloc_trim(0);
      std::this_thread::yield();
    }
  });
  for (;;) {
    std::vector<std::vector<void*>> take;
    {
      std::lock_guard<std::mutex> g(m);
      take.swap(handed);
    }
    for (auto& batch : take)
      for (void* p : batch) mallard_free(p);
    if (take.empty()) {
      if (done.load()) {
        std::lock_guard<std::mutex> g(m);
        if (handed.empty()) break;
      }
      std::this_thread::yield();
    }
  }
  owner.join();
  trimmer.join();
  EXPECT_EQ(mallard_check_heap(), 0);
}

}  // namespace
}  // namespace mallard

namespace mallard {
namespace {

// Parked pages (docs/design.md): threads that come and go one after another, each allocating
// two size classes in alternating order and freeing everything, get back the pages the previous
// thread used for the same class. Through the span heap alone the class first asked for took the
// lowest free addresses, so the classes swapped pages each generation and each one made the
// other's untouched parts resident (bench thread_churn: +0.7 MiB at 1 thread).
TEST(ThreadHeap, ShortLivedThreadsGetThePagesOfTheirClassBack) {
  constexpr std::size_t kSmall = 48;
  constexpr std::size_t kBig = 1000;
  constexpr int kPagesEach = 3;
  constexpr int kGenerations = 40;
  using PageSet = std::vector<std::uintptr_t>;
  auto pages_of = [](const std::vector<void*>& blocks) {
    PageSet set;
    for (void* p : blocks) {
      auto page = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t{(64 << 10) - 1};
      if (std::find(set.begin(), set.end(), page) == set.end()) set.push_back(page);
    }
    std::sort(set.begin(), set.end());
    return set;
  };
  std::vector<PageSet> small_pages(kGenerations);
  std::vector<PageSet> big_pages(kGenerations);
  for (int g = 0; g < kGenerations; ++g) {
    std::thread t([&, g] {
      std::vector<void*> small;
      std::vector<void*> big;
      small.reserve(4096);
      big.reserve(256);
      auto fill = [](std::vector<void*>& v, std::size_t size) {
        for (std::size_t i = 0; i < kPagesEach * (64 << 10) / size; ++i) {
          v.push_back(mallard_malloc(size));
          static_cast<char*>(v.back())[0] = 1;
        }
      };
      if (g % 2 == 0) {
        fill(small, kSmall);
        fill(big, kBig);
      } else {
        fill(big, kBig);
        fill(small, kSmall);
      }
      small_pages[g] = pages_of(small);
      big_pages[g] = pages_of(big);
      for (void* p : small) mallard_free(p);
      for (void* p : big) mallard_free(p);
    });
    t.join();
    // Each generation's heap is given up, as when more threads churn than are kept warm.
    heap_registry::release_warm_heaps(UINT64_MAX);
  }
  // After a few generations (the arena learns that the pages come back), each class keeps its
  // pages; a page of the one class is never a page the other class had a generation before.
  int same = 0;
  int swapped = 0;
  for (int g = kGenerations / 2; g < kGenerations; ++g) {
    same += small_pages[g] == small_pages[g - 1] && big_pages[g] == big_pages[g - 1];
    for (std::uintptr_t p : small_pages[g])
      swapped +=
          std::find(big_pages[g - 1].begin(), big_pages[g - 1].end(), p) != big_pages[g - 1].end();
  }
  EXPECT_GE(same, kGenerations / 2 - 2);
  EXPECT_LE(swapped, 2);
  EXPECT_EQ(mallard_check_heap(), 0);
}

}  // namespace
}  // namespace mallard

// ---- heaps kept warm for the next thread -----------------------------------------------------

namespace mallard {
namespace {

// A malloc and free the compiler cannot elide (Clang removes an unused pair: the UBSan build's
// slow path never ran), so the allocator's slow paths really run.
void alloc_and_free(std::size_t n) {
  void* volatile p = mallard_malloc(n);
  static_cast<char*>(p)[0] = 1;
  mallard_free(p);
}

class WarmHeaps : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = config::options();
    // This thread's heap first: its first allocation would take a warm heap. (Where malloc is
    // not Mallard's, the UBSan and TSan builds, gtest's own allocations gave it none.)
    alloc_and_free(48);
    heap_registry::release_warm_heaps(UINT64_MAX);
  }
  void TearDown() override {
    heap_registry::release_warm_heaps(UINT64_MAX);
    config::options() = saved_;
  }
  config::Options saved_;
};

TEST_F(WarmHeaps, AnExitedThreadsHeapIsKeptWholeForTheNextThread) {
  ThreadHeap* first = nullptr;
  void* last = nullptr;
  std::thread([&] {
    std::vector<void*> v;
    for (int i = 0; i < 100; ++i) v.push_back(mallard_malloc(48));
    for (void* p : v) mallard_free(p);
    last = v.back();
    first = tl_heap;
  }).join();
  EXPECT_EQ(heap_registry::counts().warm, 1u);
  EXPECT_EQ(page_of(last)->owner(), first);  // its pages stayed with it
  ThreadHeap* second = nullptr;
  void* got = nullptr;
  std::thread([&] {
    got = mallard_malloc(48);
    second = tl_heap;
    mallard_free(got);
  }).join();
  EXPECT_EQ(second, first);
  EXPECT_EQ(got, last);  // the block freed last comes first, as if one thread had run on
  EXPECT_EQ(mallard_check_heap(), 0);
}

TEST_F(WarmHeaps, RemoteFreesIntoAWarmHeapAreReusedByTheNextThread) {
  std::vector<void*> all;
  std::vector<void*> handed;
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) all.push_back(mallard_malloc(48));
    for (int i = 0; i < 1000; ++i) {
      if (i % 2 == 0)
        mallard_free(all[i]);  // half freed here: the heap is worth keeping
      else
        handed.push_back(all[i]);
    }
  }).join();
  ASSERT_EQ(heap_registry::counts().warm, 1u);
  for (void* p : handed) mallard_free(p);  // remote frees: the heap has no thread now
  std::vector<void*> again;
  std::thread([&] {
    for (std::size_t i = 0; i < all.size(); ++i) again.push_back(mallard_malloc(48));
  }).join();
  std::sort(all.begin(), all.end());
  std::sort(again.begin(), again.end());
  EXPECT_EQ(again,
            all);  // the same blocks, those freed here and those freed remotely: no new memory
  for (void* p : again) mallard_free(p);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// A heap whose free bytes exceed kWarmFreeFloor and what its arena learnt comes back is given up:
// kept, it held them resident after its thread's exit (a program's one worker that ends).
TEST_F(WarmHeaps, AHeapWithMoreFreeBytesThanItsArenaLearntIsNotKept) {
  std::vector<void*> live;
  ThreadHeap* heap = nullptr;
  std::thread([&] {
    std::vector<void*> all;
    for (int i = 0; i < 64 * 64; ++i) all.push_back(mallard_malloc(1000));  // 64 pages of 1 KiB
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (i % 64 == 0)
        live.push_back(all[i]);  // one block per page stays: no page empties
      else
        mallard_free(all[i]);
    }
    heap = tl_heap;
  }).join();
  Arena* arena = heap->arena();
  std::size_t learnt;
  {
    os::LockGuard guard(arena->lock());
    learnt = arena->reuse_boost();
  }
  if (learnt >= 63 * 64 * 1024) GTEST_SKIP() << "the arena learnt more than the heap held free";
  EXPECT_EQ(heap_registry::counts().warm, 0u);
  EXPECT_EQ(page_of(live[0])->owner(), nullptr);  // abandoned
  for (void* p : live) mallard_free(p);
  EXPECT_EQ(mallard_check_heap(), 0);
}

// A heap whose blocks are mostly in use at its thread's exit (a producer whose consumer frees
// them) is given up: kept warm, it held them resident after their last free.
TEST_F(WarmHeaps, AHeapWhoseBlocksAreMostlyInUseIsNotKept) {
  std::vector<void*> handed;
  std::thread([&] {
    for (int i = 0; i < 1000; ++i) handed.push_back(mallard_malloc(48));
  }).join();
  EXPECT_EQ(heap_registry::counts().warm, 0u);
  EXPECT_EQ(page_of(handed[0])->owner(), nullptr);  // abandoned
  for (void* p : handed) mallard_free(p);
  EXPECT_EQ(mallard_check_heap(), 0);
}

TEST_F(WarmHeaps, AreGivenUpAfterDecayMsOnAnotherThreadsSlowPath) {
  config::options().decay_ms = 30;
  void* kept = nullptr;
  std::thread([&] {
    kept = mallard_malloc(48);
    alloc_and_free(48);
  }).join();
  ASSERT_EQ(heap_registry::counts().warm, 1u);
  alloc_and_free(200000);  // a slow path before the delay: too early
  EXPECT_EQ(heap_registry::counts().warm, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  alloc_and_free(200000);
  EXPECT_EQ(heap_registry::counts().warm, 0u);
  EXPECT_EQ(page_of(kept)->owner(), nullptr);  // abandoned, as at a thread's exit
  mallard_free(kept);
  EXPECT_EQ(mallard_check_heap(), 0);
}

TEST_F(WarmHeaps, MallocTrimGivesThemUp) {
  std::thread([] { alloc_and_free(48); }).join();
  ASSERT_EQ(heap_registry::counts().warm, 1u);
  mallard_malloc_trim(0);
  EXPECT_EQ(heap_registry::counts().warm, 0u);
}

TEST_F(WarmHeaps, NoneWithDecayMsZero) {
  config::options().decay_ms = 0;
  std::thread([] { alloc_and_free(48); }).join();
  EXPECT_EQ(heap_registry::counts().warm, 0u);
}

TEST_F(WarmHeaps, AHeapThatCarvedMoreThanTheBoundIsNotKept) {
  std::vector<void*> v;  // every other block live at the exit (emptied pages go at once)
  std::thread([&] {
    std::vector<void*> all;
    for (std::size_t i = 0; i < 2 * heap_registry::kWarmCarvedMax / 1024; ++i)
      all.push_back(mallard_malloc(1024));
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (i % 2 == 0)
        mallard_free(all[i]);
      else
        v.push_back(all[i]);
    }
  }).join();
  EXPECT_EQ(heap_registry::counts().warm, 0u);
  EXPECT_EQ(page_of(v[0])->owner(), nullptr);  // abandoned
  for (void* p : v) mallard_free(p);
}

// Each arena counts the heaps attached to it (arenas::assign prefers one with none). Keeping a
// heap warm detaches its arena and taking it attaches it again, inside the registry lock that
// edits the warm list: the review's arena_detach_race stopped an exiting thread after that lock
// and before its detach, while malloc_trim gave the heap up and a new thread reused the record
// for another arena; the detach then hit the new thread's arena and this one kept its count.
TEST_F(WarmHeaps, ArenaAttachmentsStayBalancedWhileTrimsGiveThemUp) {
  std::atomic<bool> stop{false};
  std::thread trimmer([&] {
    while (!stop.load()) mallard_malloc_trim(0);
  });
  for (int round = 0; round < 300; ++round) {
    std::thread a([] { alloc_and_free(48); });
    std::thread b([] { alloc_and_free(96); });
    a.join();
    b.join();
  }
  stop.store(true);
  trimmer.join();
  heap_registry::release_warm_heaps(UINT64_MAX);
  unsigned attached = 0;
  arenas::for_each([&](unsigned, Arena* a) { attached += a->attached().load(); });
  // Left attached: the arenas of the live heaps (this thread's) alone.
  EXPECT_EQ(attached, heap_registry::counts().live);
}

TEST_F(WarmHeaps, AtMostKWarmMaxAreKept) {
  constexpr unsigned kThreads = heap_registry::kWarmMax + 3;
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < kThreads; ++i)
    threads.emplace_back([&] {
      alloc_and_free(48);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
    });
  while (ready.load() != kThreads) std::this_thread::yield();
  go.store(true);
  for (std::thread& t : threads) t.join();
  heap_registry::Counts c = heap_registry::counts();
  EXPECT_EQ(c.warm, heap_registry::kWarmMax);
  EXPECT_EQ(mallard_check_heap(), 0);
}

}  // namespace
}  // namespace mallard

// ---- a refill reuses freed blocks before it carves new ones ----------------------------------

namespace mallard {
namespace {

// Page A of class 768 (85 blocks) is full, page B current with its carved blocks all handed out;
// then a quarter or more of A's blocks are freed (by `free_some`). The next malloc must come from
// A (step 2b of malloc_refill), not from B's never-used blocks.
template <class FreeSome>
void refill_takes_freed_blocks_first(FreeSome free_some) {
  constexpr std::size_t kSize = 720;  // class 768: 85 blocks per 64 KiB page, 5 per carved run
  heap_registry::release_warm_heaps(UINT64_MAX);  // a heap of its own, with no page of the class
  std::thread owner([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 85 + 10; ++i) blocks.push_back(mallard_malloc(kSize));
    Span* a = page_of(blocks[0]);
    Span* b = page_of(blocks[90]);
    ASSERT_NE(a, b);
    ASSERT_TRUE(a->on_full_list());
    ASSERT_EQ(b->free, nullptr);  // B's carved runs are all handed out
    free_some(blocks, a);
    void* next = mallard_malloc(kSize);
    EXPECT_EQ(page_of(next), a);
    EXPECT_EQ(b->carved, 10u * 768u);  // nothing new carved
    mallard_free(next);
    for (void* p : blocks)
      if (p != nullptr) mallard_free(p);
  });
  owner.join();
  EXPECT_EQ(mallard_check_heap(), 0);
}

TEST(ThreadHeap, ARefillTakesAPageWithAQuarterOfItsBlocksFreedBeforeCarving) {
  refill_takes_freed_blocks_first([](std::vector<void*>& blocks, Span*) {
    for (int i = 0; i < 30; ++i) {  // A leaves the full list at the first
      mallard_free(blocks[i]);
      blocks[i] = nullptr;
    }
  });
}

TEST(ThreadHeap, ARefillTakesAPageWithAQuarterOfItsBlocksFreedRemotelyBeforeCarving) {
  refill_takes_freed_blocks_first([](std::vector<void*>& blocks, Span* a) {
    mallard_free(blocks[0]);  // A leaves the full list: its remote frees get no hint
    blocks[0] = nullptr;
    std::thread([&] {
      for (int i = 1; i < 30; ++i) {
        mallard_free(blocks[i]);
        blocks[i] = nullptr;
      }
    }).join();
    ASSERT_EQ(thread_free_count(a->thread_free.load()), 29u);
    // The owner's one local free is handed out first: take it, so the page runs dry again.
    void* local = mallard_malloc(720);
    ASSERT_EQ(page_of(local), a);
    blocks[0] = local;
  });
}

// Looks that find no page with a quarter of its blocks free back off (1, 3, 7, 15 refills), but
// a page that qualifies later is still taken within one back-off, before the current page is
// carved out.
TEST(ThreadHeap, ARefillLooksAgainAfterLooksThatFoundNothing) {
  constexpr std::size_t kSize = 720;  // class 768: 85 blocks per page, 5 per carved run
  heap_registry::release_warm_heaps(UINT64_MAX);
  std::thread owner([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 85 + 5; ++i) blocks.push_back(mallard_malloc(kSize));
    Span* a = page_of(blocks[0]);
    Span* d = page_of(blocks[85]);
    ASSERT_NE(a, d);
    for (int i = 0; i < 5; ++i) mallard_free(blocks[i]);  // below the quarter
    for (int i = 0; i < 30; ++i) {                        // 6 refills of D: looks, back-offs
      blocks.push_back(mallard_malloc(kSize));
      ASSERT_EQ(page_of(blocks.back()), d);
    }
    for (int i = 5; i < 25; ++i) mallard_free(blocks[i]);  // now 25 of 85 free in A
    int taken_after = -1;
    for (int i = 0; i < 16 * 5 && taken_after < 0; ++i) {
      blocks.push_back(mallard_malloc(kSize));
      if (page_of(blocks.back()) == a) taken_after = i;
    }
    EXPECT_GE(taken_after, 0);
    EXPECT_LT(d->carved, std::uint64_t{d->capacity} * d->block_size);  // D not carved out first
    for (std::size_t i = 25; i < blocks.size(); ++i) mallard_free(blocks[i]);
  });
  owner.join();
  EXPECT_EQ(mallard_check_heap(), 0);
}

TEST(ThreadHeap, ARefillCarvesBeforeTakingAPageWithFewBlocksFreed) {
  constexpr std::size_t kSize = 720;
  heap_registry::release_warm_heaps(UINT64_MAX);
  std::thread owner([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 85 + 10; ++i) blocks.push_back(mallard_malloc(kSize));
    Span* a = page_of(blocks[0]);
    Span* b = page_of(blocks[90]);
    for (int i = 0; i < 5; ++i) mallard_free(blocks[i]);  // 5 of 85: below the quarter
    void* next = mallard_malloc(kSize);
    EXPECT_EQ(page_of(next), b);  // B's never-used blocks, carved in one run
    EXPECT_EQ(b->carved, 15u * 768u);
    (void)a;
    mallard_free(next);
    for (std::size_t i = 5; i < blocks.size(); ++i) mallard_free(blocks[i]);
  });
  owner.join();
  EXPECT_EQ(mallard_check_heap(), 0);
}

}  // namespace
}  // namespace mallard
