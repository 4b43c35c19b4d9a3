// arena.hpp: Arena, a shared, locked pool of segments. Owns the span heap (free spans binned by
// page count, best fit, coalescing with free neighbours), the decay of free spans (dirty ->
// purged -> segment released), the growth of memory (arena 0 from brk, the others from mmap) and
// the small pages abandoned by exited threads. Every method whose name ends in _locked needs the
// caller to hold lock(); the others take it themselves. Never calls the front end.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "backend/segment.hpp"
#include "backend/size_class.hpp"
#include "backend/span.hpp"
#include "os/lock.hpp"
#include "os/os.hpp"

namespace mallard {

// What option thp asks of the kernel (os::advise_huge_pages) for a mapping made now. Under
// thp=auto: never for arena segments (freed spans inside a huge page, purged 4 KiB at a time,
// stayed resident: a program freeing a 1 GiB heap kept 19 MiB of RSS against 8 MiB without; and
// small heaps would be rounded up to 2 MiB per segment); for huge blocks, huge pages once the
// heap holds kThpAutoHeapBytes in use (stats::g_active_bytes), none before.
enum class ThpMapping : std::uint8_t { kSegment, kHugeBlock };
os::HugePages thp_mode(ThpMapping mapping);
inline constexpr std::size_t kThpAutoHeapBytes = std::size_t{64} << 20;

struct ArenaStats {
  std::size_t mapped = 0;       // bytes of segments
  std::size_t brk = 0;          // of which from brk
  std::size_t metadata = 0;     // segment header pages
  std::size_t dirty = 0;        // free spans not purged
  std::size_t purged = 0;       // free spans purged (address space retained)
  std::size_t small_pages = 0;  // bytes of spans serving as small pages
  std::size_t large = 0;        // bytes of live large blocks
  std::size_t large_count = 0;
  std::size_t segments = 0;
  std::size_t purge_calls = 0;
  std::size_t abandoned_pages = 0;
  std::size_t quarantined_pages = 0;
  std::size_t parked_pages = 0;     // empty small pages kept for their class
  std::size_t parked_bytes = 0;     // their bytes (counted in small_pages too)
  std::size_t parked_resident = 0;  // of which possibly resident (Span::resident_pages)
  std::size_t free_spans = 0;
};

// Option decay_ms in milliseconds (a negative value reads as 0: purge at once). Also what a
// thread heap kept warm after its thread's exit waits before it is given up (heap_registry).
std::uint64_t decay_ms();

class Arena {
 public:
  static constexpr std::uint32_t kBinCount = 129;  // bins 1..127 exact, 128: >= 128 pages

  void init(unsigned index, bool use_brk);
  unsigned index() const { return index_; }
  os::SpinLock& lock() { return lock_; }

  // A span of `pages` pages aligned to `align_pages` pages (>= 1), taken from the span heap or
  // from fresh memory; marked with `kind` (kSpanSmall or kSpanLarge). *zeroed tells whether its
  // contents are known to be zero. nullptr when the OS refuses memory.
  // pages <= kMaxSegmentPages (larger requests fail here, never wrap).
  Span* alloc_span_locked(Pages pages, Pages align_pages, SpanKind kind, bool* zeroed);
  // Returns an in-use span to the span heap (coalescing), then applies the purge policy: decay
  // of old dirty spans if due, and the dirty budget (purging the oldest beyond it).
  void free_span_locked(Span* s);
  // Large-block resizing in place: shrink gives the tail back; grow takes free pages after the
  // span. Both return false if impossible.
  bool shrink_span_locked(Span* s, Pages new_pages);
  bool grow_span_locked(Span* s, Pages new_pages);

  // Small pages of exited threads, by size class.
  void abandon_page_locked(Span* page);
  Span* take_abandoned_locked(unsigned size_class);
  Span* abandoned_list_locked(unsigned size_class) { return abandoned_[size_class]; }
  void unlink_abandoned_locked(Span* page);
  // Empty small pages, kept for their class (docs/design.md, "Parked pages"). A page whose every
  // block is free (no owner: a thread retired it, or exited, or its blocks all came back to an
  // abandoned page) is parked on its class's list, reset to never carved, if the arena's dirty
  // bytes plus the parked pages' possibly resident bytes (what was carved, or the whole page when
  // it was taken from dirty memory: Span::resident_pages) stay within the learnt part of
  // the dirty budget (reuse_boost, at most the budget) and its class has fewer than
  // kParkedPerClass; otherwise it goes back to the span heap
  // (free_span_locked). A thread that needs a page of that class takes a parked one before the
  // span heap: its resident part is the prefix that class touches again, where a span of the
  // heap, last used by another class, makes new memory resident. Decay releases parked pages
  // older than decay_ms; malloc_trim releases them all.
  // tick: run the decay tick when the page goes back to the span heap (false inside decay).
  void park_or_free_locked(Span* page, bool tick = true);
  // A span for a new small page of `size_class`, `pages` long: a parked page of the class, else
  // the span heap (alloc_span_locked), which gets the oldest parked pages of other classes first
  // while its dirty spans could not hold the page (their resident memory is reused before new
  // memory is touched: a program that moves from one size to the next). *zeroed as there.
  Span* alloc_small_page_locked(unsigned size_class, Pages pages, bool* zeroed);
  Span* parked_list_locked(unsigned size_class) { return parked_[size_class]; }
  static constexpr unsigned kParkedPerClass = 8;
  // Small pages of threads that do not exist in a forked child (ThreadHeap::quarantine_all):
  // never adopted, released when their last block comes back.
  void quarantine_page_locked(Span* page);
  Span* quarantine_list_locked() { return quarantined_; }
  // If `page` is still abandoned or quarantined and every one of its blocks has come back (remote
  // frees), returns it to the span heap. Called by the thread whose remote free may have been the
  // last one.
  bool release_abandoned_if_empty_locked(Span* page);

  // Purges dirty spans older than decay_ms (all of them if force), and releases segments that
  // are entirely free and purged (keeping one, unless force). Returns bytes purged or released.
  std::size_t decay_locked(std::uint64_t now_ms, bool force);
  // Cheap check (no lock) whether decay_locked has work due.
  bool decay_due(std::uint64_t now_ms) const {
    return (dirty_bytes_ != 0 || stats_.parked_pages != 0) && now_ms >= next_decay_ms_;
  }
  // Runs decay_locked if it is due: the aging that happens on the program's own calls.
  void tick_locked();

  // Thread heaps attached to this arena (glibc hands an arena no thread uses to a new thread
  // before it creates or shares one).
  std::atomic<unsigned>& attached() { return attached_; }

  // The dirty budget: free bytes this arena keeps resident for reuse. Beyond it the oldest dirty
  // spans are purged at once, inside the call that freed (docs/design.md, "The purge policy"):
  // the largest of the trim threshold (option trim_threshold, glibc's M_TRIM_THRESHOLD, dynamic),
  // a quarter of the bytes the arena has in use, and the learnt part (reuse_boost); option
  // dirty_max overrides all three.
  std::size_t dirty_budget() const;
  // Purges the oldest dirty spans, then releases the oldest parked pages, until dirty_bytes()
  // plus the parked pages' resident bytes are within dirty_budget().
  void enforce_dirty_budget_locked();
  static constexpr std::size_t kActiveShareDivisor = 4;
  // Arena growth (grow_locked): a new segment is at least as large as what the arena has mapped,
  // up to this (jemalloc grows its retained extents geometrically the same way).
  static constexpr std::size_t kMaxGrowthBytes = std::size_t{128} << 20;
  // Dirty spans take_dirty_joined_locked looks at, newest first.
  static constexpr unsigned kJoinScan = 64;
  // An mmap segment is a reservation committed as it is used (commit_locked): pages at a time.
  static constexpr std::uint32_t kCommitStep = 256;  // 1 MiB
  // The learnt part of the budget: purged bytes taken again within kReuseWindowMs of their purge
  // raise it (up to kMaxReuseBoost); dirty bytes that age out unused, and malloc_trim, lower it.
  static constexpr std::uint64_t kReuseWindowMs = 1000;
  static constexpr std::size_t kMaxReuseBoost = 2u << 20;
  std::size_t reuse_boost() const { return reuse_boost_; }

  const ArenaStats& stats_locked() const { return stats_; }
  Segment* segments_locked() const { return segments_; }
  std::size_t dirty_bytes() const { return dirty_bytes_; }

 private:
  void return_span_locked(Span* s);               // free_span_locked without the decay tick
  Span* take_parked_locked(unsigned size_class);  // the newest of the class, or nullptr
  void unlink_parked_locked(Span* page);
  bool release_oldest_parked_locked();  // to the span heap (dirty); false if none is parked
  // The last purges, to tell when a span taken from the purged bins was purged moments ago.
  void note_purge_locked(const char* start, std::size_t bytes);
  void learn_from_reuse_locked(const char* start, std::size_t bytes);
  bool grow_locked(Pages pages);
  // Makes the segment's pages [0, end) read-write (os::commit), in steps of at least
  // kCommitStep pages. False when the kernel refuses (overcommit): the caller fails the request.
  bool commit_locked(Segment* seg, std::uint32_t end);
  Segment* map_segment_locked(std::size_t bytes);
  void release_segment_locked(Segment* seg);
  std::size_t purge_segment_metadata_locked(Segment* seg);
  Span* find_fit_locked(unsigned state, Pages pages, Pages align_pages);
  // A free span (dirty or purged) with room for `pages` pages starting on a 64 KiB chunk
  // boundary (segment_map::kChunkPages): best fit, looking at up to kAlignScan spans of each
  // bin where room depends on where the span starts. nullptr if none.
  Span* find_chunk_aligned_fit_locked(unsigned state, Pages pages);
  static constexpr unsigned kAlignScan = 8;
  // When no dirty span fits alone: the largest of the kJoinScan newest dirty spans that a purged
  // free neighbour (left or right) completes, taken with just the neighbour's pages it needs, and
  // marked in use with `kind`. The dirty pages are reused without a page fault; only the purged
  // part faults (glibc's heap reuses a free chunk together with its free neighbours the same
  // way). nullptr if there is none (or the pages cannot be committed): nothing changed.
  Span* take_dirty_joined_locked(Pages pages, SpanKind kind);
  Span* make_free_locked(Segment* seg, std::uint32_t first, std::uint32_t count, unsigned state,
                         std::uint64_t freed_at, bool zeroed);
  void unlink_free_locked(Span* s);
  Span* coalesce_locked(Segment* seg, Span* s, unsigned state);
  void purge_span_locked(Span* s);
  void insert_bin_locked(Span* s);
  void set_in_use_locked(Segment* seg, std::uint32_t first, std::uint32_t count, SpanKind kind);

  os::SpinLock lock_;
  std::atomic<unsigned> attached_{0};
  unsigned index_ = 0;
  bool use_brk_ = false;
  Segment* segments_ = nullptr;
  Span* bins_[2][kBinCount] = {};
  std::uint64_t nonempty_[2][3] = {};
  Span* age_head_ = nullptr;  // dirty spans, oldest first
  Span* age_tail_ = nullptr;
  std::size_t dirty_bytes_ = 0;
  std::uint64_t next_decay_ms_ = 0;
  std::size_t reuse_boost_ = 0;
  struct RecentPurge {
    const char* start;
    const char* end;
    std::uint64_t at_ms;
  };
  static constexpr unsigned kRecentPurges = 16;
  RecentPurge recent_purges_[kRecentPurges] = {};
  unsigned recent_next_ = 0;
  Span* abandoned_[kClassCount] = {};
  Span* quarantined_ = nullptr;
  Span* parked_[kClassCount] = {};  // newest first
  std::uint8_t parked_count_[kClassCount] = {};
  ArenaStats stats_;
};

}  // namespace mallard
