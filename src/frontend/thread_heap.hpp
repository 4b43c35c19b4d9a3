// thread_heap.hpp: ThreadHeap, the per-thread cache (the seed's tcache / tcmalloc thread cache).
// For each size class it owns small pages: a current page to allocate from, a queue of pages with
// free blocks and a list of full pages. Same-thread malloc and free touch only this heap and its
// pages: no lock, no atomic read-modify-write. Frees from other threads arrive on each page's
// atomic thread_free list and are collected here. The inline functions below are the fast paths;
// everything else is out of line in thread_heap.cpp. Never calls the API layer.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "backend/arena.hpp"
#include "backend/segment.hpp"
#include "backend/segment_map.hpp"
#include "backend/size_class.hpp"
#include "backend/span.hpp"
#include "frontend/free_list.hpp"
#include "os/lock.hpp"
#include "os/race_delay.hpp"
#include "os/visibility.hpp"

namespace mallard {

struct PageQueue {
  Span* first = nullptr;
  Span* last = nullptr;
  // Pages on the queue. Written by the owner (atomically, relaxed), read by other threads
  // (ThreadHeap::full_pages).
  std::uint32_t count = 0;
};

// The page with no blocks that every empty slot of every heap points at, so the fast path needs
// no null test.
extern Span g_empty_page MALLARD_HIDDEN;

struct SentinelTag {};

// Requests up to kDirectMax bytes find their page in one load: ThreadHeap::direct_ is indexed by
// the size rounded up to 16 (mimalloc's pages_free_direct), every slot mirroring current_ of its
// class (class boundaries up to 1 KiB are multiples of 16).
inline constexpr std::size_t kDirectMax = 1024;
inline constexpr std::size_t kDirectCount = kDirectMax / 16 + 1;
[[gnu::always_inline]] inline std::size_t direct_index(std::size_t n) {
  return (n + 15) >> 4;
}

// A free list handed out a block that is not a free block of its page: reports and aborts.
[[noreturn, gnu::noinline, gnu::cold]] void report_corrupt_free_list(const Span* page,
                                                                     const void* block);

class ThreadHeap {
 public:
  ThreadHeap() = default;
  // The sentinel heap: every class slot points at the empty page, so a thread's first malloc
  // falls through to the slow path, which attaches a real heap.
  explicit constexpr ThreadHeap(SentinelTag) : sentinel_(true) {
    for (auto& slot : direct_) slot = &g_empty_page;
    for (auto& slot : current_) slot = &g_empty_page;
  }

  // ---- fast paths ----
  // Pops a block for a request of n <= kDirectMax bytes, or nullptr when its class's current
  // page has none ready.
  [[gnu::always_inline]] void* try_pop_direct(std::size_t n) {
    return pop(direct_[direct_index(n)]);
  }
  // Pops a block of class c from the current page, or nullptr when the page has none ready.
  [[gnu::always_inline]] void* try_pop(unsigned c) { return pop(current_[c]); }
  // Pops the first block of page's free list after checking it (inside the carved part, marked
  // free: anything else means the list was overwritten).
  [[gnu::always_inline]] static void* pop(Span* page) {
    FreeBlock* b = page->free;
    if (__builtin_expect(b == nullptr, 0)) return nullptr;
    MALLARD_CHECK(page->used < page->capacity);
    if (__builtin_expect(!is_listed_free_block(page, b), 0)) report_corrupt_free_list(page, b);
    page->free = decode_link(b);
    os::race_window(os::RaceWindow::kPop);
    ++page->used;
    b->marker = 0;
    return b;
  }
  // Pushes b (already checked to be a carved block start of `page`, owned by this heap and not
  // full). Returns false when the page became empty (the caller then calls page_emptied).
  [[gnu::always_inline]] static bool push_local(Span* page, FreeBlock* b, std::uintptr_t mark) {
    MALLARD_CHECK(page->used != 0 && page->kind == kSpanSmall);
    make_free_block(b, page->free, mark);
    page->free = b;
    os::race_window(os::RaceWindow::kPush);
    return --page->used != 0;
  }

  // ---- slow paths ----
  // Refills class c and pops a block; nullptr when out of memory.
  [[gnu::noinline]] void* malloc_refill(unsigned c);
  // Whether an emptied page stays with this heap as it is: the current page of its class (a loop
  // that allocates and frees one block must not take the arena lock each time; the other pages
  // of the class go back as they empty, so one empty page at most stays). One compare: bench
  // fastpath `empty` 90 -> 84 instructions per pair against also asking that it be the class's
  // only page. Reads only what the owner writes: no lock.
  bool keeps_emptied(const Span* page) const { return current_[page->size_class] == page; }
  // The owner freed the last block of `page` and does not keep it: back to the arena.
  [[gnu::noinline]] void page_emptied(Span* page);
  // The owner frees into a page that sits on the full list.
  [[gnu::noinline]] void free_into_full_page(Span* page, FreeBlock* b, std::uintptr_t mark);
  // Gives every page back (empty ones to the arena, parked or freed, the others to the arena's
  // abandoned list).
  void abandon_all();
  // In a forked child, for a heap whose thread does not exist there: its pages' free lists and
  // counts may be half-written (the fork cut its lock-free fast paths), so they are never
  // allocated from again; pages with no block in use go back to the arena, the others to its
  // quarantine, where frees still arrive and the page is released when its last block comes back.
  void quarantine_all();
  // Collects remote frees on every page and returns every empty page, the current ones too
  // (malloc_trim: a kept page could pin a brk segment, and every segment under it).
  std::size_t collect_all();
  // Bytes carved from this heap's pages (at most what they hold resident), and of those the
  // bytes of blocks in use (handed out, not freed back by any thread yet): the tests of a heap
  // kept warm after its thread exits (heap_registry). Under slow_lock_.
  struct PageBytes {
    std::size_t carved = 0;
    std::size_t in_use = 0;
  };
  PageBytes page_bytes();
  // ---- reclaim by other threads (issue 11: memory freed by other threads returns without its
  // owner). Only pages on this heap's full list: the owner touches those only under slow_lock_
  // (its fast paths see the full bit and go slow), so another thread that takes slow_lock_ with a
  // try-lock (never waiting on another thread's heap) may give such a page back.
  // Another thread frees b, and with it every block of `page` (on this heap's full list) has come
  // back: the page goes back to the arena at once (b with it; see kFullPagesKept). False if it
  // cannot be done now (the lock is busy, the page changed); the caller then pushes b as any remote
  // free.
  bool reclaim_emptied_full_page(Span* page);
  // Pages on the full list of class c, as another thread may read it (no lock; a hint).
  std::uint32_t full_pages(unsigned c) const {
    return __atomic_load_n(&full_[c].count, __ATOMIC_RELAXED);
  }
  // A free gives back an emptied full page only while its owner holds more full pages of the
  // class than this: an owner that allocates as others free (a producer) reuses its last few
  // pages itself, without a trip through the arena (which cost bench prodcons 40% when every
  // emptied full page went back); an owner that stopped with thousands keeps at most these.
  static constexpr std::uint32_t kFullPagesKept = 8;
  // malloc_trim from another thread: every page on this heap's full lists whose blocks have all
  // come back by remote frees goes back to the arena. Returns bytes given back (0 if busy).
  std::size_t reclaim_returned_full_pages();
  // Another heap's refill of class c found nothing of its own (heap_registry::steal_full_page):
  // hands it the page of c's full list, among the kStealScan oldest, with the most blocks come
  // back by remote frees, if at least 1/kStealFraction of its blocks did (this heap has not run
  // its refill since: a thread that is descheduled or idle, whose pages the other threads' frees
  // fill while they take fresh memory; Larson's server threads). Under slow_lock_ taken with a
  // try-lock; the page's owner tag becomes `thief`'s (not full) before the lock is released, and
  // the thief puts it on its own queue. nullptr when busy or none qualifies; *hinted is set when
  // this heap had a remote-free hint and full pages for c (the look cost a try-lock and a scan).
  Span* give_full_page(ThreadHeap* thief, unsigned c, bool* hinted);
  static constexpr int kStealScan = 8;
  static constexpr std::uint32_t kStealFraction = 4;

  void init(Arena* arena, bool sentinel);
  bool is_sentinel() const { return sentinel_; }
  Arena* arena() const { return arena_; }
  void set_arena(Arena* a) { arena_ = a; }
  // A remote thread freed into a full page of class c: look at the full list at the next refill.
  // Stores only when the hint is clear: a line that every freeing thread writes would bounce
  // between their caches on each free (it is read-shared while set).
  void hint_remote_free(unsigned c) {
    if (remote_hint_[c].load(std::memory_order_relaxed) == 0)
      remote_hint_[c].store(1, std::memory_order_relaxed);
  }

  // Taken by every slow path that edits this heap's page queues, and by fork's prepare handler:
  // a fork cannot land in the middle of such an edit, so the child can walk the queues of the
  // threads it does not have. The owner and fork take it; other threads only try it
  // (reclaim_emptied_full_page, reclaim_returned_full_pages), so the owner may find it busy
  // while another thread gives back its full pages.
  os::SpinLock& slow_lock() { return slow_lock_; }

  // Registry links (heap_registry.cpp).
  ThreadHeap* next_all = nullptr;
  ThreadHeap* next_free = nullptr;
  bool in_use = false;
  bool counted = false;  // a thread's heap (not a late allocation's one-call heap)
  std::uint32_t id = 0;
  // Liveness of the thread the heap is attached to: a robust mutex that thread holds while the
  // heap is its own. If the thread ends without giving the heap back (its first allocation came
  // in the last round of key destructors, when Mallard's own is no longer called), the kernel
  // marks the mutex "owner died" and heap_registry::reap_dead_threads reclaims the heap.
  pthread_mutex_t alive = PTHREAD_MUTEX_INITIALIZER;  // made robust when the record is created
  std::atomic<bool> thread_bound{false};
  // The arena this record holds an attachment of (arenas::assign/attach), nullptr when none:
  // what release detaches, whatever arena() says by then. Under the registry lock, so that a
  // fork child's release of a record caught between two states detaches it exactly once.
  Arena* attached_arena = nullptr;
  // Kept warm (heap_registry): its thread exited, its pages stay on its queues for the next
  // thread, since when (os::now_ms). Under the registry lock.
  std::uint64_t warm_since_ms = 0;

 private:
  void page_emptied_locked(Span* page);
  template <class Fn>
  void give_up_pages(Fn&& fn);
  bool collect(Span* page);
  bool ready_or_collect(Span* page);
  static bool carved_out(const Span* page);  // no never-used block left
  static constexpr int kReadyScan = 8;       // pages malloc_refill's step 2b looks at
  bool extend(Span* page);
  void init_page(Span* page, unsigned c);
  void move_to_full(unsigned c, Span* page);
  void retire_page(unsigned c, Span* page);
  // Takes a page whose blocks have all come back off the full list and gives it to the arena.
  void give_back_full_page(unsigned c, Span* page);
  void release_to_arena(Span* page);  // clears the owner, parks or frees it under the arena lock
  void* pop_from(unsigned c, Span* page);
  // Collects the remote frees of the pages on class c's full list (clearing its hint) and moves
  // those that got blocks to the available queue. Returns the first of them, or nullptr.
  Span* collect_full_pages(unsigned c);
  Span* fresh_page(unsigned c);
  // Makes page the current page of class c (and of its direct slots).
  void set_current(unsigned c, Span* page);

  Span* direct_[kDirectCount] = {};
  Span* current_[kClassCount] = {};
  PageQueue avail_[kClassCount] = {};
  PageQueue full_[kClassCount] = {};
  std::atomic<std::uint8_t> remote_hint_[kClassCount] = {};
  // Refills of each class that skip looking for another heap's page (step 7 of malloc_refill),
  // and the length of the last skip: doubled (up to 63) after a look that found hinted heaps but
  // no page that qualifies; 3 refills skipped after a look that found no hinted heap.
  std::uint8_t steal_skip_[kClassCount] = {};
  std::uint8_t steal_backoff_[kClassCount] = {};
  // The same for step 2b (another page of the queue with a quarter of its blocks free): looks
  // skipped, and the length of the last skip (1, 3, 7, 15 after looks that found none).
  std::uint8_t ready_skip_[kClassCount] = {};
  std::uint8_t ready_backoff_[kClassCount] = {};
  Arena* arena_ = nullptr;
  os::SpinLock slow_lock_;
  bool sentinel_ = false;
};

// The calling thread's heap (initial-exec TLS: one instruction to reach it; the only static TLS
// the library uses, so dlopen works). Points at the sentinel heap until the thread's first
// allocation slow path attaches a real one.
extern ThreadHeap g_sentinel_heap MALLARD_HIDDEN;
// What tl_heap points at once the thread's heap was torn down at thread exit: a sentinel too, so
// allocations from later pthread key destructors take the slow path, which serves them without
// attaching a heap the thread would keep (heap_registry::late_malloc_small).
extern ThreadHeap g_exited_heap MALLARD_HIDDEN;
extern thread_local constinit ThreadHeap* tl_heap MALLARD_HIDDEN
    __attribute__((tls_model("initial-exec")));

// Pushes b onto page's remote list: the one atomic operation of a cross-thread free.
inline void push_remote(Span* page, FreeBlock* b, std::uintptr_t mark) {
  std::uint64_t old = page->thread_free.load(std::memory_order_relaxed);
  std::uint64_t desired;
  do {
    os::race_window(os::RaceWindow::kRemotePush);
    make_free_block(b, thread_free_list(old), mark);
    desired = (std::uint64_t{thread_free_count(old) + 1} << kThreadFreeCountShift) |
              reinterpret_cast<std::uintptr_t>(b);
  } while (!page->thread_free.compare_exchange_weak(old, desired, std::memory_order_release,
                                                    std::memory_order_relaxed));
}

}  // namespace mallard
