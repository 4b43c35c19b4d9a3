// thread_heap.cpp: the slow paths of ThreadHeap: refilling a class (collect, bump-extend, other
// pages, remote frees on full pages, adopting abandoned pages, fresh pages from the arena),
// retiring empty pages, and abandoning everything when the thread exits.
#include "frontend/thread_heap.hpp"

#include "backend/arena_registry.hpp"
#include "frontend/heap_registry.hpp"
#include "os/fatal.hpp"
#include "os/lock.hpp"

#include <array>

namespace mallard {

// Set from the kernel's randomness at initialisation (api/init.cpp), before any block is freed.
constinit FreeListKeys g_free_keys{0x5bd1e9955bd1e995ull, 0x9e3779b97f4a7c15ull};
constinit Span g_empty_page{};
constinit ThreadHeap g_sentinel_heap{SentinelTag{}};
constinit ThreadHeap g_exited_heap{SentinelTag{}};
constinit thread_local ThreadHeap* tl_heap __attribute__((tls_model("initial-exec"))) =
    &g_sentinel_heap;

namespace {

void queue_push_front(PageQueue& q, Span* s) {
  s->prev = nullptr;
  s->next = q.first;
  if (q.first != nullptr)
    q.first->prev = s;
  else
    q.last = s;
  q.first = s;
  __atomic_store_n(&q.count, q.count + 1, __ATOMIC_RELAXED);
}

void queue_push_back(PageQueue& q, Span* s) {
  s->next = nullptr;
  s->prev = q.last;
  if (q.last != nullptr)
    q.last->next = s;
  else
    q.first = s;
  q.last = s;
  __atomic_store_n(&q.count, q.count + 1, __ATOMIC_RELAXED);
}

void queue_remove(PageQueue& q, Span* s) {
  if (s->prev != nullptr)
    s->prev->next = s->next;
  else
    q.first = s->next;
  if (s->next != nullptr)
    s->next->prev = s->prev;
  else
    q.last = s->prev;
  s->next = s->prev = nullptr;
  __atomic_store_n(&q.count, q.count - 1, __ATOMIC_RELAXED);
}

Arena* arena_of(Span* page) {
  return segment_of_entry(page)->arena;
}

// The first request size of each class up to kDirectMax, and one past its last, in direct slots.
struct DirectRange {
  std::uint8_t first, end;
};
constexpr std::array<DirectRange, kClassCount> make_direct_ranges() {
  std::array<DirectRange, kClassCount> r{};
  for (std::size_t i = 0; i < kDirectCount; ++i) {
    unsigned c = size_class_detail::class_of_slow(i * 16);
    if (r[c].end == 0) r[c].first = static_cast<std::uint8_t>(i);
    r[c].end = static_cast<std::uint8_t>(i + 1);
  }
  return r;
}
constexpr std::array<DirectRange, kClassCount> kDirectRanges = make_direct_ranges();

}  // namespace

void report_corrupt_free_list(const Span* page, const void* block) {
  (void)page;
  os::report_bad_pointer("free list corrupted (a free block was overwritten: use after free?)",
                         "malloc", block);
}

void ThreadHeap::set_current(unsigned c, Span* page) {
  current_[c] = page;
  for (unsigned i = kDirectRanges[c].first; i < kDirectRanges[c].end; ++i) direct_[i] = page;
}

void ThreadHeap::init(Arena* arena, bool sentinel) {
  // A reused record: another thread's malloc_trim (reclaim_returned_full_pages) or remote free
  // (full_pages) may still look at its queues, under slow_lock_ taken with a try-lock.
  os::LockGuard guard(slow_lock_);
  for (unsigned c = 0; c < kClassCount; ++c) {
    set_current(c, &g_empty_page);
    avail_[c].first = avail_[c].last = nullptr;
    full_[c].first = full_[c].last = nullptr;
    // Read by other threads (full_pages) that may still hold a page tagged with this record.
    __atomic_store_n(&avail_[c].count, 0u, __ATOMIC_RELAXED);
    __atomic_store_n(&full_[c].count, 0u, __ATOMIC_RELAXED);
    remote_hint_[c].store(0, std::memory_order_relaxed);
    steal_skip_[c] = steal_backoff_[c] = 0;
    ready_skip_[c] = ready_backoff_[c] = 0;
  }
  arena_ = arena;
  sentinel_ = sentinel;
}

// Moves remote frees onto the page's free list. True if it has blocks to hand out. (The owner's
// own frees go straight onto the free list: LIFO, so the block just freed is reused while hot.)
bool ThreadHeap::collect(Span* page) {
  if (page->thread_free.load(std::memory_order_relaxed) != 0) {
    std::uint64_t word = page->thread_free.exchange(0, std::memory_order_acquire);
    os::race_window(os::RaceWindow::kCollect);
    FreeBlock* list = thread_free_list(word);
    if (list != nullptr) {
      // Spliced in front of the local list. When that is empty (a refill: the page ran dry),
      // the list is taken whole, without walking it: each block is a cache line another thread
      // wrote last, touched again anyway when it is handed out.
      if (page->free != nullptr) {
        FreeBlock* tail = list;
        for (;;) {  // each block checked as pop checks it, before its link is followed
          if (!is_listed_free_block(page, tail)) report_corrupt_free_list(page, tail);
          FreeBlock* next = decode_link(tail);
          if (next == nullptr) break;
          tail = next;
        }
        relink(tail, page->free);
      }
      page->free = list;
      page->used -= thread_free_count(word);
    }
  }
  return page->free != nullptr;
}

// A page about to become the current one: its own free list if it has one, else its remote
// frees taken whole. Merging a remote list into a non-empty free list walks it to find its tail,
// a cache miss per block that another thread wrote last (bench larson t2: collect was a quarter
// of the samples); left where it is, the list is taken whole when the page runs dry.
bool ThreadHeap::ready_or_collect(Span* page) {
  return page->free != nullptr || collect(page);
}

bool ThreadHeap::carved_out(const Span* page) {
  return page->carved >= std::uint64_t{page->capacity} * page->block_size;
}

// Carves the next run of never-used blocks (about one OS page's worth) from the page's bump area:
// the seed's "top chunk", one page at a time so untouched memory stays unresident.
bool ThreadHeap::extend(Span* page) {
  std::uint32_t bs = page->block_size;
  auto carved_blocks = static_cast<std::uint32_t>(page->carved / bs);
  if (carved_blocks >= page->capacity) return false;
  std::uint32_t n = bs >= 4096 ? 1 : 4096 / bs;
  if (n > page->capacity - carved_blocks) n = page->capacity - carved_blocks;
  char* first = page->start + page->carved;
  // Every carved block is marked free, so that a free of one never handed out is a double free.
  for (std::uint32_t i = 0; i + 1 < n; ++i) {
    auto* b = reinterpret_cast<FreeBlock*>(first + std::size_t{i} * bs);
    make_free_block(b, reinterpret_cast<FreeBlock*>(first + std::size_t{i + 1} * bs),
                    free_marker(b));
  }
  auto* last = reinterpret_cast<FreeBlock*>(first + std::size_t{n - 1} * bs);
  make_free_block(last, page->free, free_marker(last));
  // The carved end before the list that hands the blocks out, in that order for the compiler
  // and the CPU: a fork between the two must not leave a child with blocks on the free list that
  // `carved` says are still uncarved (they would be carved and handed out again).
  __atomic_store_n(&page->carved, page->carved + std::uint64_t{n} * bs, __ATOMIC_RELAXED);
  std::atomic_thread_fence(std::memory_order_release);
  os::race_window(os::RaceWindow::kExtendPublish);
  __atomic_store_n(&page->free, reinterpret_cast<FreeBlock*>(first), __ATOMIC_RELAXED);
  return true;
}

void ThreadHeap::init_page(Span* page, unsigned c) {
  std::uint32_t bs = static_cast<std::uint32_t>(class_block_size(c));
  page->size_class = static_cast<std::uint8_t>(c);
  page->block_size = bs;
  page->div_magic = UINT64_MAX / bs + 1;
  MALLARD_CHECK(page->bytes() / bs <= UINT32_MAX && c < kClassCount);
  MALLARD_CHECK(page->bytes() < (std::uint64_t{1} << 32));  // the divisibility test's range
  page->capacity = static_cast<std::uint32_t>(page->bytes() / bs);
  page->carved = 0;
  page->used = 0;
  page->free = nullptr;
  page->thread_free.store(0, std::memory_order_relaxed);
  page->flags = 0;
  page->set_owner(this, false);
}

void ThreadHeap::move_to_full(unsigned c, Span* page) {
  queue_remove(avail_[c], page);
  os::race_window(os::RaceWindow::kQueueEdit);
  queue_push_back(full_[c], page);
  // Release: a remote free that sees the full bit reads the page's capacity (reclaim).
  page->set_owner(this, true);
  if (current_[c] == page) set_current(c, &g_empty_page);
}

void ThreadHeap::retire_page(unsigned c, Span* page) {
  if (page->on_full_list()) {  // never a current page
    give_back_full_page(c, page);
    return;
  }
  queue_remove(avail_[c], page);
  if (current_[c] == page)
    set_current(c, avail_[c].first != nullptr ? avail_[c].first : &g_empty_page);
  release_to_arena(page);
}

// Also for another thread (under slow_lock_ taken with a try-lock): a page on the full list is
// never a current page, and current_/direct_ are the owner's alone (written by its lock-free
// refill step 1), so they are neither read nor written here. Every block of the page has come
// back: its remote-free list is dropped with it.
void ThreadHeap::give_back_full_page(unsigned c, Span* page) {
  MALLARD_CHECK(page->on_full_list());
  queue_remove(full_[c], page);
  page->thread_free.store(0, std::memory_order_relaxed);
  release_to_arena(page);
}

void ThreadHeap::release_to_arena(Span* page) {
  page->set_owner(nullptr, false, std::memory_order_relaxed);
  Arena* a = arena_of(page);
  os::LockGuard guard(a->lock());
  a->park_or_free_locked(page);
}

void* ThreadHeap::pop_from(unsigned c, Span* page) {
  set_current(c, page);
  return try_pop(c);
}

// Every page is whole chunks (class_page_count rounds to kClassPageUnit). free's page lookup
// (segment_map::fast_chunk_of) relies on it: a small page that starts at a chunk boundary covers
// the whole chunk; so does the arena's placement: pages of whole chunks never push the next one
// off a boundary.
static_assert(kClassPageUnit % segment_map::kChunkSize == 0);

Span* ThreadHeap::fresh_page(unsigned c) {
  Arena* a = arenas::uncontended(arena_);
  bool zeroed = false;
  Span* page;
  {  // The page is initialised under the lock: the heap checker and statistics may look at it.
    os::LockGuard guard(a->lock());
    page = a->alloc_small_page_locked(c, class_page_count(c), &zeroed);
    if (page != nullptr) init_page(page, c);
  }
  if (page == nullptr && a != arena_) {
    os::LockGuard guard(arena_->lock());
    page = arena_->alloc_small_page_locked(c, class_page_count(c), &zeroed);
    if (page != nullptr) init_page(page, c);
  }
  return page;
}

Span* ThreadHeap::collect_full_pages(unsigned c) {
  remote_hint_[c].store(0, std::memory_order_relaxed);
  Span* first = nullptr;
  for (Span* s = full_[c].first; s != nullptr;) {
    Span* next = s->next;
    if (s->thread_free.load(std::memory_order_relaxed) != 0 && collect(s)) {
      queue_remove(full_[c], s);
      s->set_owner(this, false, std::memory_order_relaxed);
      queue_push_back(avail_[c], s);
      if (first == nullptr) first = s;
    }
    s = next;
  }
  return first;
}

void* ThreadHeap::malloc_refill(unsigned c) {
  // 1. The current page's frees from other threads. This edits no queue, so it needs no lock (a
  // fork landing here can at worst lose these blocks in the child).
  Span* page = current_[c];
  if (page != &g_empty_page && collect(page)) return pop_from(c, page);
  // 2. Blocks other threads freed into full pages, before the current page's never-used ones:
  // carving first would make new memory resident while freed blocks wait (a producer whose
  // consumer frees what it allocates: bench prodcons).
  if (remote_hint_[c].load(std::memory_order_relaxed) != 0) {
    os::LockGuard fork_guard(slow_lock_);  // see slow_lock_
    if (Span* s = collect_full_pages(c)) return pop_from(c, s);
  }
  // 2b. Another page of the queue (among its first kReadyScan) with a quarter of its blocks
  // free, by this thread's frees or other threads' waiting on its remote list, before the
  // current page's never-used blocks: carving while freed blocks waited made new memory
  // resident. Peak RSS (bench/out/rusage_run, median of 5, scale 0.5): prodcons t2 5.42 -> 5.05
  // MiB, t4 8.63 -> 8.36; larson t4 43.4 -> 37.4; churn t4 14.25 -> 13.99. Time unchanged
  // (paired runs, median of 9: larson t2 0.98, t4 1.00, prodcons t2 0.96, churn t1 1.00).
  // A page with fewer free blocks waits for step 4: taking any page with a free block handed out
  // scattered, cold blocks where carving writes one run (churn t1 +6% time), and collecting
  // remote lists that trickle in costs a cache miss per block (larson t2 +24%). This edits no
  // queue but the move of a spent current page to the full list, under the lock.
  // A look that found pages but none that qualifies makes the class skip the next 1, 3, 7 or 15
  // looks (the second review's scan_cost: 8 KiB blocks, one carved per refill, 16 pages with one
  // block free each: 51 -> 96 instructions per refill without it).
  if (ready_skip_[c] != 0) {
    --ready_skip_[c];
  } else {
    int looked = 0;
    for (Span* s = avail_[c].first; s != nullptr && looked < kReadyScan; s = s->next) {
      if (s == page) continue;
      ++looked;
      // Free bytes: carved and not in use (this thread's frees), and remote frees waiting.
      const std::uint64_t bs = s->block_size;
      const std::uint64_t remote =
          thread_free_count(s->thread_free.load(std::memory_order_relaxed));
      if (s->carved - s->used * bs + remote * bs >= s->capacity * bs / 4 && ready_or_collect(s)) {
        ready_backoff_[c] = 0;
        if (page != &g_empty_page && page->free == nullptr && carved_out(page) &&
            page->thread_free.load(std::memory_order_relaxed) == 0) {
          os::LockGuard fork_guard(slow_lock_);  // see slow_lock_
          move_to_full(c, page);
        }
        return pop_from(c, s);
      }
    }
    if (looked != 0) {
      ready_backoff_[c] = static_cast<std::uint8_t>((ready_backoff_[c] * 2 + 1) & 15);
      ready_skip_[c] = ready_backoff_[c];
    }
  }
  // 3. The current page's never-used blocks.
  if (page != &g_empty_page && extend(page)) return pop_from(c, page);
  os::LockGuard fork_guard(slow_lock_);  // see slow_lock_
  if (page != &g_empty_page) move_to_full(c, page);
  // 4. Other pages with frees waiting, or never-used blocks.
  while ((page = avail_[c].first) != nullptr) {
    if (ready_or_collect(page) || extend(page)) return pop_from(c, page);
    move_to_full(c, page);
  }
  // 5. Full pages that other threads have freed into since step 2.
  if (remote_hint_[c].load(std::memory_order_relaxed) != 0) {
    if (Span* s = collect_full_pages(c)) return pop_from(c, s);
  }
  // 6. A page abandoned by an exited thread.
  {
    Span* adopted = nullptr;
    {
      os::LockGuard guard(arena_->lock());
      adopted = arena_->take_abandoned_locked(c);
    }
    if (adopted != nullptr) {
      os::race_window(os::RaceWindow::kAdopt);  // flags were cleared under the arena lock
      adopted->set_owner(this, false);
      queue_push_front(avail_[c], adopted);
      if (ready_or_collect(adopted) || extend(adopted)) return pop_from(c, adopted);
      move_to_full(c, adopted);
    }
  }
  // 7. A page of another thread's full list whose blocks have largely come back to it (that
  // thread has not refilled since, or it would have collected them). Its owner tag is ours.
  // A look that met hinted heaps but no page that qualifies makes the class skip the next 1, 3,
  // 7 ... 63 looks: idle heaps with remote frees below the quarter would otherwise cost every
  // refill try-locks and scans (the review's scan_cost: 16 KiB blocks, 64 idle heaps, 67 -> 1195
  // ns per malloc+free). A look that met no hinted heap (only unlocked reads of 64 records)
  // skips the next 3 and resets that: a back-off learnt while the program grew kept a thread
  // from looking at all when an idle thread's pages filled with remote frees later (the second
  // review's backoff.c: 6400 fresh blocks, +6.7 MiB, against 6368 of 6400 reused).
  bool hinted = false;
  if (steal_skip_[c] != 0) {
    --steal_skip_[c];
  } else if (Span* stolen = heap_registry::steal_full_page(this, c, &hinted)) {
    steal_backoff_[c] = 0;
    queue_push_front(avail_[c], stolen);
    if (collect(stolen)) return pop_from(c, stolen);
    move_to_full(c, stolen);  // not reached: a stolen page has remote frees to collect
  } else if (hinted) {
    steal_backoff_[c] = static_cast<std::uint8_t>((steal_backoff_[c] * 2 + 1) & 63);
    steal_skip_[c] = steal_backoff_[c];
  } else {
    steal_backoff_[c] = 0;
    steal_skip_[c] = 3;
  }
  // 8. A fresh page from the arena.
  page = fresh_page(c);
  if (page == nullptr) return nullptr;
  queue_push_front(avail_[c], page);
  extend(page);
  return pop_from(c, page);
}

void ThreadHeap::page_emptied(Span* page) {
  os::LockGuard fork_guard(slow_lock_);  // see slow_lock_
  page_emptied_locked(page);
}

void ThreadHeap::page_emptied_locked(Span* page) {
  if (keeps_emptied(page)) return;
  retire_page(page->size_class, page);
}

void ThreadHeap::free_into_full_page(Span* page, FreeBlock* b, std::uintptr_t mark) {
  os::race_window(os::RaceWindow::kOwnFullFree);
  os::LockGuard fork_guard(slow_lock_);  // see slow_lock_
  // Another heap took the page while this free waited for the lock (give_full_page): b is a
  // block in use, so the page stays live, and b goes to its new owner as any remote free, with
  // the hint if the page is on that owner's full list (heap records are never freed).
  const unsigned c = page->size_class;
  std::uintptr_t tag = page->owner_tag.load(std::memory_order_acquire);
  if (tag != (reinterpret_cast<std::uintptr_t>(this) | kOwnerTagFull)) {
    push_remote(page, b, mark);
    if ((tag & kOwnerTagFull) != 0)
      reinterpret_cast<ThreadHeap*>(tag & ~kOwnerTagFull)->hint_remote_free(c);
    return;
  }
  queue_remove(full_[c], page);
  page->set_owner(this, false, std::memory_order_relaxed);
  queue_push_back(avail_[c], page);
  if (!push_local(page, b, mark)) page_emptied_locked(page);
}

bool ThreadHeap::reclaim_emptied_full_page(Span* page) {
  if (!slow_lock_.try_lock()) return false;
  // Under the owner's lock: the page is still this heap's and full, and every block handed out
  // but the caller's is on its remote list (used only changes under this lock while full).
  bool done =
      page->owner_tag.load(std::memory_order_relaxed) ==
          (reinterpret_cast<std::uintptr_t>(this) | kOwnerTagFull) &&
      thread_free_count(page->thread_free.load(std::memory_order_acquire)) + 1 == page->used;
  if (done) give_back_full_page(page->size_class, page);
  slow_lock_.unlock();
  return done;
}

std::size_t ThreadHeap::reclaim_returned_full_pages() {
  if (!slow_lock_.try_lock()) return 0;
  std::size_t returned = 0;
  for (unsigned c = 0; c < kClassCount; ++c) {
    for (Span* s = full_[c].first; s != nullptr;) {
      Span* next = s->next;
      if (thread_free_count(s->thread_free.load(std::memory_order_acquire)) == s->used) {
        returned += s->bytes();
        give_back_full_page(c, s);
      }
      s = next;
    }
  }
  slow_lock_.unlock();
  return returned;
}

Span* ThreadHeap::give_full_page(ThreadHeap* thief, unsigned c, bool* hinted) {
  // Unlocked hints first: most heaps have no remote frees waiting in c's full pages.
  if (remote_hint_[c].load(std::memory_order_relaxed) == 0 || full_pages(c) == 0) return nullptr;
  *hinted = true;
  if (!slow_lock_.try_lock()) return nullptr;
  Span* best = nullptr;
  std::uint32_t best_count = 0;
  int looked = 0;
  for (Span* s = full_[c].first; s != nullptr && looked < kStealScan; s = s->next, ++looked) {
    std::uint32_t n = thread_free_count(s->thread_free.load(std::memory_order_relaxed));
    if (n > best_count) {
      best = s;
      best_count = n;
    }
  }
  if (best != nullptr && std::uint64_t{best_count} * kStealFraction >= best->capacity) {
    queue_remove(full_[c], best);
    os::race_window(os::RaceWindow::kQueueEdit);
    // Release, before the unlock: this heap's free that read the old tag waits for the lock and
    // then sees the new one (free_into_full_page); the thief reads the page under no lock.
    best->set_owner(thief, false);
  } else {
    best = nullptr;
  }
  slow_lock_.unlock();
  return best;
}

std::size_t ThreadHeap::collect_all() {
  os::LockGuard fork_guard(slow_lock_);  // see slow_lock_
  std::size_t returned = 0;
  for (unsigned c = 0; c < kClassCount; ++c) {
    for (PageQueue* q : {&avail_[c], &full_[c]}) {
      for (Span* s = q->first; s != nullptr;) {
        Span* next = s->next;
        collect(s);
        if (s->used == 0) {  // empty, even the current page: a trim gives everything back
          returned += s->bytes();
          retire_page(c, s);
        } else if (s->on_full_list() && s->free != nullptr) {
          queue_remove(full_[c], s);
          s->set_owner(this, false, std::memory_order_relaxed);
          queue_push_back(avail_[c], s);
        }
        s = next;
      }
    }
  }
  return returned;
}

// Takes every page off this heap's queues, full pages first, and hands each to fn(arena, page)
// under its arena's lock; every class is left with no current page.
template <class Fn>
void ThreadHeap::give_up_pages(Fn&& fn) {
  for (unsigned c = 0; c < kClassCount; ++c) {
    // Full pages first: each page given up goes to the head of its arena's list, and the next
    // adopter of an abandoned page takes the head, which should be one with free blocks.
    for (PageQueue* q : {&full_[c], &avail_[c]}) {
      while (Span* s = q->first) {
        queue_remove(*q, s);
        Arena* a = arena_of(s);
        os::LockGuard guard(a->lock());
        fn(a, s);
      }
    }
    set_current(c, &g_empty_page);
  }
}

void ThreadHeap::quarantine_all() {
  give_up_pages([](Arena* a, Span* s) {
    s->set_owner(nullptr, false);
    // A cut fast path leaves `used` off only by blocks held by no thread of the child (too low by
    // one, or too high by one or by a collected batch): 0 with no remote frees means none is used.
    if (s->used == 0 && thread_free_count(s->thread_free.load(std::memory_order_acquire)) == 0)
      a->free_span_locked(s);
    else
      a->quarantine_page_locked(s);
  });
}

ThreadHeap::PageBytes ThreadHeap::page_bytes() {
  os::LockGuard guard(slow_lock_);
  PageBytes bytes;
  for (unsigned c = 0; c < kClassCount; ++c) {
    for (PageQueue* q : {&full_[c], &avail_[c]}) {
      for (Span* s = q->first; s != nullptr; s = s->next) {
        bytes.carved += __atomic_load_n(&s->carved, __ATOMIC_RELAXED);
        const std::uint32_t remote =
            thread_free_count(s->thread_free.load(std::memory_order_relaxed));
        if (s->used > remote) bytes.in_use += std::size_t{s->used - remote} * s->block_size;
      }
    }
  }
  return bytes;
}

void ThreadHeap::abandon_all() {
  os::LockGuard fork_guard(slow_lock_);  // see slow_lock_
  give_up_pages([this](Arena* a, Span* s) {
    collect(s);
    if (s->used == 0) {
      s->set_owner(nullptr, false, std::memory_order_relaxed);
      a->park_or_free_locked(s);
    } else {
      s->flags = 0;
      s->set_owner(nullptr, false);
      a->abandon_page_locked(s);
    }
  });
}

}  // namespace mallard
