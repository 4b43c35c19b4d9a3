// snapshot.hpp: exact statistics by walking every arena (under its lock), every segment and every
// span, plus the huge-block counters and the heap registry. What mallard_get_stats, mallinfo2,
// malloc_stats, malloc_info and the exit report all read. Allocates nothing.
#pragma once

#include "mallard/mallard.h"

namespace mallard {
class Arena;
}

namespace mallard::stats {

// The whole process.
[[gnu::cold]] void take_snapshot(mallard_stats* out);
// One arena (huge blocks, heaps and RSS are left zero).
[[gnu::cold]] void take_arena_snapshot(Arena* arena, mallard_stats* out);

}  // namespace mallard::stats
