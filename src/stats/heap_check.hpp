// heap_check.hpp: the heap checker. Walks every arena, segment, span and page (and the free lists
// of the calling thread's pages, and of abandoned pages) and verifies the invariants; a violation
// prints what and where, then aborts. Allocates nothing.
#pragma once

#include <cstddef>

namespace mallard {
class Arena;
}

namespace mallard::stats {

// Returns the number of spans checked; aborts on the first violation.
[[gnu::cold]] std::size_t check_heap();
// One arena, whose lock the caller holds (unit tests check arenas of their own).
[[gnu::cold]] std::size_t check_arena_locked(Arena* arena);

}  // namespace mallard::stats
