// arena_registry.hpp: the set of arenas. Creates them lazily up to arena_max (default 8 x usable
// CPUs, as glibc's cap), hands them to new threads round-robin (arena 0, the brk arena, goes to
// the first thread), reuses the arenas of exited threads first, skips contended ones, and locks
// them all around fork().
#pragma once

#include <atomic>
#include <cstddef>

#include "backend/arena.hpp"

namespace mallard::arenas {

inline constexpr unsigned kArenaLimit = 1024;

void init(unsigned usable_cpus);
// The arena for a new thread heap, as glibc chooses: an arena no live thread uses, else a new
// arena while under the cap, else round-robin over the existing ones, skipping one that is
// locked right now. Counts the attachment; never nullptr after init (falls back to arena 0).
Arena* assign();
// A thread heap kept warm (detached when its thread exited) is attached to `a` again.
void attach(Arena* a);
// The thread heap attached to `a` is gone (thread exit, or reclaimed in a forked child).
void detach(Arena* a);
// An arena that is not locked right now, starting from `preferred` (for large blocks).
Arena* uncontended(Arena* preferred);
Arena* arena0();
unsigned count();
unsigned cap();
void set_cap(unsigned n);
Arena* at(unsigned i);

// Calls fn(index, arena) for every arena created so far, in index order.
template <class Fn>
void for_each(Fn fn) {
  unsigned remaining = count();
  for (unsigned i = 0; i < kArenaLimit && remaining != 0; ++i) {
    Arena* a = at(i);
    if (a == nullptr) continue;
    --remaining;
    fn(i, a);
  }
}

// fork (api/init.cpp): every arena lock and the creation lock, whoever the fork holder is.
void lock_all();
void unlock_all();
void reset_locks_in_child();

}  // namespace mallard::arenas
