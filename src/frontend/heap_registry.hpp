// heap_registry.hpp: the registry of thread heaps. Attaches a heap to a thread on its first
// allocation (reusing heaps of exited threads), detaches it when the thread exits (its pages are
// abandoned to the arenas, to be adopted later), and after fork() reclaims the heaps of the
// threads that do not exist in the child. Heap records are never freed, only reused.
#pragma once

#include <cstddef>

#include "frontend/thread_heap.hpp"

namespace mallard::heap_registry {

// Creates the thread-exit key. Called once by initialisation.
bool init();
// Gives the calling thread a heap (and sets tl_heap). nullptr if out of memory.
ThreadHeap* attach_current_thread();

struct Counts {
  std::size_t live;     // heaps attached to threads
  std::size_t total;    // heaps ever attached
  std::size_t records;  // heap records created
  std::size_t warm;     // heaps of exited threads kept warm
};
Counts counts();

// fork (api/init.cpp): the registry lock, then every heap's slow-path lock (before the arena
// locks: the slow paths take a heap lock, then an arena lock, never the other way).
void lock_for_fork();
void unlock_for_fork();
// In the child after fork(): locks are reset and every heap but `survivor` is given up; its pages
// are quarantined (ThreadHeap::quarantine_all): their owners' lock-free fast paths may have been
// cut in half by the fork, so the child never allocates from them again, only frees into them.
void reclaim_in_child(ThreadHeap* survivor);

// Heaps kept warm: an exiting thread's heap stays whole (pages, free lists) for the next thread
// that starts, which takes the newest (see keep_warm in heap_registry.cpp). At most kWarmMax
// heaps, each holding at most kWarmCarvedMax carved bytes (at most half of them in use, and
// free bytes within kWarmFreeFloor or its arena's learnt reuse), each for at most decay_ms.
inline constexpr unsigned kWarmMax = 4;
inline constexpr std::size_t kWarmCarvedMax = std::size_t{2} << 20;
// Free bytes a kept heap may hold beyond what its arena learnt comes back (Arena::reuse_boost).
inline constexpr std::size_t kWarmFreeFloor = std::size_t{64} << 10;
// Gives up the warm heaps kept for decay_ms or longer (their pages go to the arenas, as at a
// thread's exit). A quick unlocked test when none is due. Runs on every allocation slow path,
// at thread exit and before each pass of the opt-in purger; malloc_trim gives up all of them
// (release_warm_heaps).
void age_warm_heaps();
// Gives up every warm heap kept at or before kept_before_ms (all: UINT64_MAX). Returns how many.
std::size_t release_warm_heaps(std::uint64_t kept_before_ms);

// Reclaims the heaps of threads that ended without giving theirs back (see ThreadHeap::alive).
// Runs when a new heap record is needed, for statistics and for malloc_trim. Returns how many.
std::size_t reap_dead_threads();
// In a forked child (every fork, locked or not): the surviving thread has a new thread id, so
// its heap's liveness mutex is made again and taken by it; in a locked fork, every other
// record's too (their holders do not exist in the child).
void rebind_in_child(ThreadHeap* survivor, bool all_records);

// For malloc_trim: every heap but `self` gives back the full pages whose blocks have all come
// back by remote frees (ThreadHeap::reclaim_returned_full_pages; a busy heap is skipped).
// Returns bytes given back.
std::size_t reclaim_returned_full_pages(ThreadHeap* self);

// A refill of class c by `thief` found nothing of its own: the first page another heap hands it
// (ThreadHeap::give_full_page), looking at no more than kStealHeaps records; nullptr if none.
// *hinted: some heap had a remote-free hint and full pages for c.
Span* steal_full_page(ThreadHeap* thief, unsigned c, bool* hinted);
inline constexpr int kStealHeaps = 64;

// A late allocation: the calling thread's heap was already torn down (a pthread key destructor
// that runs after Mallard's). Serves one small block from a heap attached for this call only and
// given up at once; the thread stays without a heap, so nothing is left behind when it exits.
void* late_malloc_small(unsigned size_class);

}  // namespace mallard::heap_registry
