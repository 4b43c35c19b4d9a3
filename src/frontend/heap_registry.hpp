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
};
Counts counts();

// fork: the registry lock, then every heap's slow-path lock (before the arena locks: the slow
// paths take a heap lock, then an arena lock, never the other way).
void lock();
void unlock();
// In the child after fork(): locks are reset and every heap but `survivor` is abandoned.
void reclaim_in_child(ThreadHeap* survivor);

}  // namespace mallard::heap_registry
