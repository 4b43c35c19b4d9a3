// arena_registry.hpp: the set of arenas. Creates them lazily up to arena_max (default 8 x usable
// CPUs, as glibc's cap), hands them to new threads round-robin (arena 0, the brk arena, goes to
// the first thread), skips contended ones, and locks them all around fork().
#pragma once

#include <atomic>
#include <cstddef>

#include "backend/arena.hpp"

namespace mallard::arenas {

inline constexpr unsigned kArenaLimit = 1024;

void init(unsigned usable_cpus);
// The arena for a new thread heap: round-robin over the cap, creating arenas as needed and
// skipping one that is locked right now. Never nullptr after init (falls back to arena 0).
Arena* assign();
// An arena that is not locked right now, starting from `preferred` (for large blocks).
Arena* uncontended(Arena* preferred);
Arena* arena0();
unsigned count();
unsigned cap();
void set_cap(unsigned n);
Arena* at(unsigned i);

void lock_all();
void unlock_all();
void reset_locks_in_child();

}  // namespace mallard::arenas
