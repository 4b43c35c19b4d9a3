// snapshot.cpp: the heap walk behind every statistic.
#include "stats/snapshot.hpp"

#include <cstring>

#include "backend/arena_registry.hpp"
#include "backend/huge.hpp"
#include "backend/meta_pool.hpp"
#include "backend/segment_map.hpp"
#include "frontend/heap_registry.hpp"
#include "os/lock.hpp"
#include "os/os.hpp"
#include "stats/counters.hpp"

namespace mallard::stats {
namespace {

void walk_segment(Segment* seg, mallard_stats* out) {
  Span* pages = seg->pages();
  for (std::uint32_t i = seg->first_data_page; i < seg->page_count;) {
    Span* s = &pages[i];
    std::uint32_t count = s->page_count == 0 ? 1 : s->page_count;
    if (s->kind == kSpanSmall && (s->flags & kSpanParked) != 0) {
      // An empty page kept for its class (read under the arena lock): free memory, resident at
      // most in its first resident_pages pages (Arena::park_or_free_locked).
      const std::size_t resident = s->resident_bytes();
      out->bytes_dirty += resident;
      out->bytes_purged += s->bytes() - resident;
    } else if (s->kind == kSpanSmall) {
      // The owner updates `used` without atomics; a relaxed read gives a consistent snapshot
      // of each page (blocks freed remotely but not yet collected are not in use).
      std::uint32_t used = __atomic_load_n(&s->used, __ATOMIC_RELAXED);
      std::uint32_t pending = thread_free_count(s->thread_free.load(std::memory_order_relaxed));
      std::uint32_t live = used >= pending ? used - pending : 0;
      mallard_class_stats& c = out->classes[s->size_class];
      c.blocks_used += live;
      c.blocks_free += s->capacity - live;
      c.pages += count;
      out->bytes_small += std::size_t{live} * s->block_size;
      out->bytes_free_in_pages += std::size_t{s->capacity - live} * s->block_size +
                                  (s->bytes() - std::size_t{s->capacity} * s->block_size);
    } else if (s->kind == kSpanLarge) {
      out->bytes_large += s->bytes();
    } else if (s->kind != kSpanFree) {
      count = 1;  // not a span start: should not happen; the heap checker reports it
    }
    i += count;
  }
}

void clear(mallard_stats* out) {
  std::memset(out, 0, sizeof *out);
  static_assert(kClassCount <= MALLARD_MAX_SIZE_CLASSES, "mallard_stats::classes is too short");
  out->class_count = kClassCount;
  for (unsigned c = 0; c < kClassCount; ++c) out->classes[c].block_size = class_block_size(c);
}

void add_arena(Arena* a, mallard_stats* out) {
  {
    os::LockGuard guard(a->lock());
    const ArenaStats& st = a->stats_locked();
    out->bytes_mapped += st.mapped;
    out->bytes_brk += st.brk;
    out->bytes_dirty += st.dirty;
    out->bytes_purged += st.purged;
    out->bytes_metadata += st.metadata;
    out->segments += st.segments;
    out->purges += st.purge_calls;
    out->abandoned_pages += st.abandoned_pages + st.quarantined_pages;
    out->free_spans += st.free_spans;
    for (Segment* seg = a->segments_locked(); seg != nullptr; seg = seg->next)
      walk_segment(seg, out);
  }
  out->bytes_in_use = out->bytes_small + out->bytes_large;
}

}  // namespace

void take_arena_snapshot(Arena* a, mallard_stats* out) {
  clear(out);
  add_arena(a, out);
}

void take_snapshot(mallard_stats* out) {
  clear(out);
  arenas::for_each([&](unsigned, Arena* a) { add_arena(a, out); });
  huge::HugeStats h = huge::stats();
  out->bytes_huge = h.live_bytes;
  out->huge_blocks = h.live_count;
  out->bytes_mapped += h.mapped_bytes;
  out->bytes_in_use = out->bytes_small + out->bytes_large + out->bytes_huge;
  std::int64_t peak = g_peak_active_bytes.load(std::memory_order_relaxed);
  out->peak_bytes_in_use = peak > 0 ? static_cast<std::size_t>(peak) : 0;
  if (out->peak_bytes_in_use < out->bytes_in_use) out->peak_bytes_in_use = out->bytes_in_use;
  out->bytes_metadata += meta_pool().bytes_mapped() + segment_map::mapped_bytes();
  out->bytes_resident = os::resident_bytes();
  out->peak_resident = os::peak_resident_bytes();
  out->arenas = arenas::count();
  out->arena_max = arenas::cap();
  heap_registry::Counts hc = heap_registry::counts();
  out->threads_live = hc.live;
  out->threads_total = hc.total;
  out->mmap_threshold = huge::threshold();
}

}  // namespace mallard::stats
