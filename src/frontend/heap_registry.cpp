// heap_registry.cpp: heap records, the thread-exit key and fork reclamation.
#include "frontend/heap_registry.hpp"

#include <errno.h>
#include <pthread.h>

#include <new>

#include "backend/arena_registry.hpp"
#include "backend/meta_pool.hpp"
#include "os/lock.hpp"

namespace mallard::heap_registry {
namespace {

os::SpinLock g_lock;
// Every record, newest first: prepended under g_lock (release), read without it (acquire) by
// walks that must not wait for g_lock (steal_full_page runs under the caller's slow-path lock,
// and fork's prepare handler takes g_lock, then every heap's).
std::atomic<ThreadHeap*> g_all{nullptr};
ThreadHeap* g_pool = nullptr;  // records free for reuse
std::size_t g_live = 0;
std::size_t g_total = 0;
std::size_t g_records = 0;
std::uint32_t g_next_id = 0;
pthread_key_t g_exit_key;
// Heaps kept warm (see keep_warm): newest first, through next_free, under g_lock.
ThreadHeap* g_warm = nullptr;
unsigned g_warm_count = 0;
// When the oldest warm heap was kept (os::now_ms), 0 when none: read without g_lock by
// age_warm_heaps' quick test.
std::atomic<std::uint64_t> g_warm_oldest_ms{0};

void release(ThreadHeap* h) {
  os::LockGuard guard(g_lock);
  if (h->attached_arena != nullptr) arenas::detach(h->attached_arena);
  h->attached_arena = nullptr;
  h->in_use = false;
  h->next_free = g_pool;
  g_pool = h;
  if (h->counted) --g_live;
}

void init_alive(ThreadHeap* h) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&h->alive, &attr);
  pthread_mutexattr_destroy(&attr);
}

// The calling thread holds h->alive from now until it gives the heap back.
void bind_to_calling_thread(ThreadHeap* h) {
  if (pthread_mutex_lock(&h->alive) == EOWNERDEAD) pthread_mutex_consistent(&h->alive);
  h->thread_bound.store(true, std::memory_order_release);
}

void unbind(ThreadHeap* h) {
  h->thread_bound.store(false, std::memory_order_relaxed);
  pthread_mutex_unlock(&h->alive);
}

// The oldest warm heap's time (the caller holds g_lock).
void update_warm_oldest() {
  std::uint64_t oldest = 0;
  for (ThreadHeap* w = g_warm; w != nullptr; w = w->next_free) oldest = w->warm_since_ms;
  g_warm_oldest_ms.store(oldest, std::memory_order_relaxed);
}

// Unlinks w from the warm list (the caller holds g_lock).
void unlink_warm(ThreadHeap* w) {
  for (ThreadHeap** link = &g_warm; *link != nullptr; link = &(*link)->next_free) {
    if (*link == w) {
      *link = w->next_free;
      break;
    }
  }
  w->next_free = nullptr;
  --g_warm_count;
  update_warm_oldest();
}

// A thread exits: its heap is kept whole, pages and free lists, for the next thread that starts,
// if it holds at most kWarmCarvedMax carved bytes, at most half of them in use, and fewer than
// kWarmMax heaps are kept.
// Threads that come and go one after another then reuse the same blocks, where giving the pages
// up made each new thread take other pages (of other classes before, so resident in other parts)
// and kept the union resident (bench thread_churn). As glibc's arena free list hands an exited
// thread's arena, with its free chunks, to the next thread. Not with decay_ms=0 (no free memory
// kept at all). Aged out after decay_ms by age_warm_heaps.
bool keep_warm(ThreadHeap* h) {
  if (decay_ms() == 0 || !h->counted) return false;
  // A heap whose blocks are mostly still in use (handed to other threads, which will free them
  // into its pages) gives the next thread little: kept warm, it held those pages resident after
  // the last free, where given up they went back to the arena as they emptied (bench prodcons
  // t1: its producer exits first; peak RSS 3.25 -> 3.54 MiB when it was kept).
  const ThreadHeap::PageBytes bytes = h->page_bytes();
  if (bytes.carved > kWarmCarvedMax || bytes.in_use > bytes.carved / 2) return false;
  // Its free bytes stay resident while it is kept: at most kWarmFreeFloor, or what its arena
  // learnt comes back (Arena::reuse_boost: memory purged and faulted in again within a second),
  // as for parked pages. A program whose one worker exits at the end (bench mixed) kept 0.3 MiB
  // resident through its last calls (peak RSS 1.86 -> 2.13 MiB); thread churn teaches the
  // arena with the first exits.
  std::size_t allowed = kWarmFreeFloor;
  {
    Arena* a = h->arena();
    os::LockGuard guard(a->lock());
    if (a->reuse_boost() > allowed) allowed = a->reuse_boost();
  }
  if (bytes.carved - bytes.in_use > allowed) return false;
  {
    os::LockGuard guard(g_lock);
    if (g_warm_count >= kWarmMax) return false;
    h->in_use = false;
    h->warm_since_ms = os::now_ms();
    h->next_free = g_warm;
    g_warm = h;
    ++g_warm_count;
    --g_live;
    update_warm_oldest();
    // Unbound and detached inside g_lock: a reap (which skips unbound heaps), a take or a fork
    // sees it whole. Detached here, not after the unlock: by then a malloc_trim could have given
    // the heap up and a new thread reused the record for another arena (the review's
    // arena_detach_race: the new thread's arena lost its attachment, this one kept it forever).
    unbind(h);
    if (h->attached_arena != nullptr) arenas::detach(h->attached_arena);
    h->attached_arena = nullptr;
  }
  return true;
}

// Gives up a warm heap taken off the list (its pages to the arenas) and pools its record.
void give_up_warm(ThreadHeap* h) {
  h->abandon_all();
  release(h);  // its arena was detached when it was kept (attached_arena is nullptr)
}

// Runs when a thread with a heap exits (pthread key destructor).
void on_thread_exit(void* value) {
  auto* h = static_cast<ThreadHeap*>(value);
  if (h == nullptr || h->is_sentinel()) return;
  // Allocations from later destructors take late_malloc_small; their frees the remote path.
  tl_heap = &g_exited_heap;
  age_warm_heaps();
  if (keep_warm(h)) return;
  h->abandon_all();
  unbind(h);
  release(h);
}

// Marks a record taken (the caller holds g_lock).
void mark_in_use(ThreadHeap* h, bool counted) {
  h->in_use = true;
  if (counted) {
    ++g_live;
    ++g_total;
  }
}

// A heap record, from the pool or new, initialised for `arena`. A thread's heap is counted live
// (`counted`); a late allocation's one-call heap is not. The record becomes in_use in the same
// critical section that takes it, so a fork at any point finds it in the pool or in use.
ThreadHeap* take_record(Arena* arena, bool counted) {
  ThreadHeap* h = nullptr;
  {
    os::LockGuard guard(g_lock);
    if (g_pool != nullptr) {
      h = g_pool;
      g_pool = h->next_free;
      mark_in_use(h, counted);
      h->attached_arena = arena;  // with the take: a fork child's release detaches it
    }
  }
  if (h == nullptr && reap_dead_threads() != 0) return take_record(arena, counted);
  if (h == nullptr) {
    void* mem = meta_pool().allocate(sizeof(ThreadHeap));
    if (mem == nullptr) return nullptr;
    h = new (mem) ThreadHeap();
    init_alive(h);
    os::LockGuard guard(g_lock);
    h->next_all = g_all.load(std::memory_order_relaxed);
    g_all.store(h, std::memory_order_release);
    ++g_records;
    mark_in_use(h, counted);
    h->attached_arena = arena;
    // Created inside the fork window (by the fork holder): part of the locked set, so the
    // parent's unlock and the child's reset treat it like every other heap.
    if (os::in_fork_window()) h->slow_lock().lock_for_fork();
  }
  h->init(arena, false);
  h->counted = counted;
  os::LockGuard guard(g_lock);
  h->id = g_next_id++;
  return h;
}

// The newest record, for a walk of all of them along next_all without the registry lock: records
// are only ever prepended (g_all's release store publishes next_all), never freed, so the walk is
// safe. Without g_lock: steal_full_page walks under the caller's slow-path lock, and fork's
// prepare handler takes g_lock before every heap's (a refill that waited here for g_lock, holding
// its own, deadlocked a fork: the review's fork_steal_deadlock).
ThreadHeap* all_records() {
  return g_all.load(std::memory_order_acquire);
}

}  // namespace

bool init() {
  return pthread_key_create(&g_exit_key, on_thread_exit) == 0;
}

ThreadHeap* attach_current_thread() {
  ThreadHeap* warm = nullptr;
  {
    os::LockGuard guard(g_lock);
    if ((warm = g_warm) != nullptr) {
      unlink_warm(warm);
      mark_in_use(warm, true);
      warm->id = g_next_id++;
      arenas::attach(warm->arena());  // with the take: a fork child's release detaches it
      warm->attached_arena = warm->arena();
    }
  }
  if (warm != nullptr) {
    bind_to_calling_thread(warm);
    tl_heap = warm;
    pthread_setspecific(g_exit_key, warm);
    return warm;
  }
  Arena* arena = arenas::assign();
  ThreadHeap* h = take_record(arena, true);
  if (h == nullptr) {
    arenas::detach(arena);
    return nullptr;
  }
  bind_to_calling_thread(h);
  tl_heap = h;
  pthread_setspecific(g_exit_key, h);
  return h;
}

void age_warm_heaps() {
  const std::uint64_t oldest = g_warm_oldest_ms.load(std::memory_order_relaxed);
  if (oldest == 0) return;
  const std::uint64_t now = os::now_ms();
  if (now < oldest + decay_ms()) return;
  release_warm_heaps(now - decay_ms());
}

std::size_t release_warm_heaps(std::uint64_t kept_before_ms) {
  std::size_t released = 0;
  for (;;) {
    ThreadHeap* h = nullptr;
    {
      os::LockGuard guard(g_lock);
      for (ThreadHeap* w = g_warm; w != nullptr; w = w->next_free)
        if (w->warm_since_ms <= kept_before_ms) h = w;  // the oldest that qualifies
      if (h == nullptr) return released;
      unlink_warm(h);
      mark_in_use(h, false);  // a fork now quarantines its pages in the child
      h->counted = false;     // not live: release must not count it out again
    }
    give_up_warm(h);
    ++released;
  }
}

std::size_t reclaim_returned_full_pages(ThreadHeap* self) {
  std::size_t returned = 0;
  for (ThreadHeap* h = all_records(); h != nullptr; h = h->next_all)
    if (h != self) returned += h->reclaim_returned_full_pages();
  return returned;
}

Span* steal_full_page(ThreadHeap* thief, unsigned c, bool* hinted) {
  int looked = 0;
  for (ThreadHeap* h = all_records(); h != nullptr && looked < kStealHeaps; h = h->next_all) {
    if (h == thief) continue;
    ++looked;
    if (Span* s = h->give_full_page(thief, c, hinted)) return s;
  }
  return nullptr;
}

std::size_t reap_dead_threads() {
  std::size_t reaped = 0;
  ThreadHeap* self = tl_heap;
  for (ThreadHeap* h = all_records(); h != nullptr; h = h->next_all) {
    if (h == self || !h->thread_bound.load(std::memory_order_acquire)) continue;
    int rc = pthread_mutex_trylock(&h->alive);
    if (rc == 0) {  // bound but not held: its thread is between taking and binding it
      pthread_mutex_unlock(&h->alive);
      continue;
    }
    if (rc != EOWNERDEAD) continue;  // alive (EBUSY), or being reaped by another thread
    // Its thread is gone, and was not inside the allocator when it went (a thread ends after
    // its last call returns): the heap is whole, as at a normal exit.
    pthread_mutex_consistent(&h->alive);
    h->abandon_all();
    unbind(h);
    release(h);
    ++reaped;
  }
  return reaped;
}

void rebind_in_child(ThreadHeap* survivor, bool all_records) {
  if (all_records)
    for (ThreadHeap* h = g_all.load(std::memory_order_relaxed); h != nullptr; h = h->next_all)
      init_alive(h);
  if (survivor->is_sentinel()) return;
  if (!all_records) init_alive(survivor);
  bind_to_calling_thread(survivor);
}

void* late_malloc_small(unsigned size_class) {
  Arena* arena = arenas::assign();
  ThreadHeap* h = take_record(arena, false);
  if (h == nullptr) {
    arenas::detach(arena);
    return nullptr;
  }
  void* p = h->malloc_refill(size_class);
  h->abandon_all();  // the block's page goes to the arena (abandoned while the block lives)
  release(h);
  return p;
}

Counts counts() {
  reap_dead_threads();
  os::LockGuard guard(g_lock);
  return {g_live, g_total, g_records, g_warm_count};
}

void lock_for_fork() {
  g_lock.lock_for_fork();
  for (ThreadHeap* h = g_all.load(std::memory_order_relaxed); h != nullptr; h = h->next_all)
    h->slow_lock().lock_for_fork();
}

void unlock_for_fork() {
  for (ThreadHeap* h = g_all.load(std::memory_order_relaxed); h != nullptr; h = h->next_all)
    h->slow_lock().unlock_for_fork();
  g_lock.unlock_for_fork();
}

void reclaim_in_child(ThreadHeap* survivor) {
  g_lock.reset_in_child();
  for (ThreadHeap* h = g_all.load(std::memory_order_relaxed); h != nullptr; h = h->next_all)
    h->slow_lock().reset_in_child();
  for (ThreadHeap* h = g_all.load(std::memory_order_relaxed); h != nullptr; h = h->next_all) {
    if (h->in_use && h != survivor) {
      h->quarantine_all();
      release(h);
    }
  }
}

}  // namespace mallard::heap_registry
