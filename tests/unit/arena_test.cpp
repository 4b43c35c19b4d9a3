// arena_test.cpp: Arena (src/backend/arena.cpp): best fit, splitting, coalescing, alignment,
// in-place resize, decay and segment release, with the heap checker run after every operation.
#include "backend/arena.hpp"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/segment_map.hpp"
#include "config/options.hpp"
#include "stats/heap_check.hpp"

namespace mallard {
namespace {

class ArenaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = config::options();
    arena_ = new Arena();
    arena_->init(77, false);
  }
  void TearDown() override {
    {
      os::LockGuard g(arena_->lock());
      arena_->decay_locked(os::now_ms(), true);
    }
    config::options() = saved_;
    // The arena's empty segments were released by the forced decay; the object is leaked on
    // purpose if a test left live spans (their memory stays mapped).
  }
  Span* alloc(std::size_t pages, std::size_t align = 1) {
    bool zeroed = false;
    os::LockGuard g(arena_->lock());
    Span* s = arena_->alloc_span_locked(Pages{pages}, Pages{align}, kSpanLarge, &zeroed);
    stats::check_arena_locked(arena_);
    return s;
  }
  void free_span(Span* s) {
    os::LockGuard g(arena_->lock());
    arena_->free_span_locked(s);
    stats::check_arena_locked(arena_);
  }
  // A span taken or given back without the heap checker: small pages here are bare spans, not
  // initialised as a thread heap would (no class), which the checker would report.
  Span* bare(std::size_t pages, SpanKind kind) {
    bool zeroed = false;
    os::LockGuard g(arena_->lock());
    return arena_->alloc_span_locked(Pages{pages}, Pages{1}, kind, &zeroed);
  }
  void bare_free(Span* s) {
    os::LockGuard g(arena_->lock());
    arena_->free_span_locked(s);
  }
  ArenaStats stats() {
    os::LockGuard g(arena_->lock());
    return arena_->stats_locked();
  }
  // A small page of class c as a thread heap leaves it when every block is free: no owner, the
  // first carved_bytes carved.
  Span* empty_small_page(unsigned c, std::size_t carved_bytes) {
    bool zeroed = false;
    os::LockGuard g(arena_->lock());
    Span* p = arena_->alloc_small_page_locked(c, class_page_count(c), &zeroed);
    if (p == nullptr) return nullptr;
    p->size_class = static_cast<std::uint8_t>(c);
    p->block_size = static_cast<std::uint32_t>(class_block_size(c));
    p->div_magic = UINT64_MAX / p->block_size + 1;
    p->capacity = static_cast<std::uint32_t>(p->bytes() / p->block_size);
    p->carved = carved_bytes;
    p->used = 0;
    p->free = nullptr;
    p->thread_free.store(0, std::memory_order_relaxed);
    p->flags = 0;
    p->owner_tag.store(0, std::memory_order_relaxed);
    return p;
  }
  void park(Span* p) {
    os::LockGuard g(arena_->lock());
    arena_->park_or_free_locked(p);
    stats::check_arena_locked(arena_);
  }
  // An empty small page of class c, parked (or freed, if the arena does not park it).
  Span* parked_page(unsigned c, std::size_t carved_bytes) {
    Span* p = empty_small_page(c, carved_bytes);
    if (p != nullptr) park(p);
    return p;
  }
  Span* take_page(unsigned c) {
    bool zeroed = false;
    os::LockGuard g(arena_->lock());
    return arena_->alloc_small_page_locked(c, class_page_count(c), &zeroed);
  }
  // Teaches the arena's budget `pages` pages (as BudgetLearnsFromPurgedMemoryWantedBack shows):
  // with a 1-byte budget a freed span is purged at once, and it is taken back. Returns the span
  // taken back, still in use.
  Span* teach_budget(std::size_t pages) {
    config::options().dirty_max = 1;  // purged at once, whatever else the arena has in use
    config::options().trim_threshold = 0;
    Span* a = alloc(pages);
    free_span(a);
    config::options().dirty_max = 0;
    return alloc(pages);
  }
  Arena* arena_ = nullptr;
  config::Options saved_;
};

TEST_F(ArenaTest, FreshSpanIsZeroedAndAccounted) {
  Span* s = alloc(3);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->page_count, 3u);
  EXPECT_EQ(s->kind, kSpanLarge);
  EXPECT_EQ(stats().large, 3 * os::kPageSize);
  EXPECT_EQ(segment_map::lookup(s->start)->arena, arena_);
  for (std::size_t i = 0; i < 3 * os::kPageSize; ++i) ASSERT_EQ(s->start[i], 0);
  free_span(s);
  EXPECT_EQ(stats().large, 0u);
}

TEST_F(ArenaTest, FreedNeighboursCoalesce) {
  Span* a = alloc(4);
  Span* b = alloc(4);
  Span* c = alloc(4);
  ASSERT_TRUE(a && b && c);
  std::size_t spans_before = stats().free_spans;
  free_span(a);
  free_span(c);
  free_span(b);  // joins a and c: one dirty span
  EXPECT_LE(stats().free_spans, spans_before + 1);
  Span* big = alloc(12);  // best fit finds the coalesced run
  EXPECT_EQ(big->start, a->start < c->start ? a->start : c->start);
  free_span(big);
}

TEST_F(ArenaTest, BestFitPrefersTheSmallestHole) {
  Span* keep1 = alloc(1);
  Span* hole10 = alloc(10);
  Span* keep2 = alloc(1);
  Span* hole5 = alloc(5);
  Span* keep3 = alloc(1);
  char* five = hole5->start;
  free_span(hole10);
  free_span(hole5);
  Span* got = alloc(5);
  EXPECT_EQ(got->start, five);
  for (Span* s : {keep1, keep2, keep3, got}) free_span(s);
}

TEST_F(ArenaTest, AlignedSpansAreAligned) {
  for (std::size_t align : {2u, 16u, 64u, 256u}) {
    Span* s = alloc(3, align);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s->start) % (align * os::kPageSize), 0u) << align;
    free_span(s);
  }
}

// Small pages start on a 64 KiB chunk boundary where the span heap has room, so that free finds
// them from the chunk's entry (segment_map::fast_chunk_of); a hole with no aligned room is still
// used (dirty memory first), and a misaligned hole with room is used at its aligned part.
TEST_F(ArenaTest, SmallPagesStartOnAChunkBoundaryWhenThereIsRoom) {
  auto small = [&](std::size_t pages) { return bare(pages, kSpanSmall); };
  auto chunk_aligned = [](const Span* s) {
    return reinterpret_cast<std::uintptr_t>(s->start) % segment_map::kChunkSize == 0;
  };
  std::vector<Span*> pages;
  for (int i = 0; i < 8; ++i) {
    pages.push_back(small(16));
    ASSERT_NE(pages.back(), nullptr);
    EXPECT_TRUE(chunk_aligned(pages.back())) << i;
    EXPECT_EQ(segment_map::fast_chunk_of(pages.back()->start + 12345), pages.back());
  }
  // 80 KiB pages (the 10 KiB class) are not whole chunks: placed back to back, not aligned,
  // which would leave a 48 KiB hole no span can use after each (review of stop 19).
  Span* big = small(20);
  Span* big2 = small(20);
  ASSERT_TRUE(big && big2);
  EXPECT_EQ(big2->start, big->start + 20 * os::kPageSize);
  EXPECT_EQ(segment_map::fast_page_of(big->start + 70000), big);
  // A 3-page large span then a 16-page hole: the hole after it is not aligned, the page is.
  Span* odd = bare(3, kSpanLarge);
  Span* after = small(16);
  ASSERT_TRUE(odd && after);
  EXPECT_TRUE(chunk_aligned(after));
  // A freed aligned page's hole is reused as it is.
  char* hole = pages[3]->start;
  bare_free(pages[3]);
  pages[3] = small(16);
  EXPECT_EQ(pages[3]->start, hole);
  for (Span* s : pages) bare_free(s);
  for (Span* s : {big, big2, odd, after}) bare_free(s);
  os::LockGuard g(arena_->lock());
  stats::check_arena_locked(arena_);
}

TEST_F(ArenaTest, SpanLargerThanASegmentGetsItsOwnSegment) {
  Span* s = alloc(3000);  // ~12 MiB
  ASSERT_NE(s, nullptr);
  Segment* seg = segment_map::lookup(s->start);
  EXPECT_GE(seg->size, 3000 * os::kPageSize);
  EXPECT_EQ(segment_map::lookup(s->start + 3000 * os::kPageSize - 1), seg);
  free_span(s);
}

// Issue 9 (../shared/cases/dropin/realloc_huge_overlap.c): a page count above 2^32 was taken modulo
// 2^32 on the in-place growth path, which then "grew" a 17-page block by 20 pages and promised
// 16 TiB.
TEST_F(ArenaTest, GrowInPlaceNeverWrapsAPageCount) {
  Span* s = alloc(17);
  Span* after = alloc(64);
  free_span(after);  // free pages to the right, so a wrapped count would find room
  {
    os::LockGuard g(arena_->lock());
    for (std::size_t want : {(std::size_t{1} << 32) + 37, (std::size_t{1} << 32) + 17,
                             std::size_t{1} << 40, SIZE_MAX >> 12}) {
      EXPECT_FALSE(arena_->grow_span_locked(s, Pages{want})) << want;
      EXPECT_EQ(s->page_count, 17u);
    }
    EXPECT_FALSE(arena_->shrink_span_locked(s, Pages{(std::size_t{1} << 32) + 1}));
    EXPECT_EQ(s->page_count, 17u);
    stats::check_arena_locked(arena_);
  }
  free_span(s);
}

TEST_F(ArenaTest, SpansBeyondTheLargestSegmentAreRefused) {
  std::size_t mapped = stats().mapped;
  EXPECT_EQ(alloc(kMaxSegmentPages + 1), nullptr);
  EXPECT_EQ(alloc(std::size_t{1} << 33), nullptr);
  EXPECT_EQ(alloc(SIZE_MAX >> 12), nullptr);
  EXPECT_EQ(alloc(1, std::size_t{1} << 40), nullptr);         // alignment of 4 PiB
  EXPECT_EQ(alloc(SIZE_MAX >> 13, SIZE_MAX >> 13), nullptr);  // the sum must not wrap
  EXPECT_EQ(stats().mapped, mapped);
}

// The permissions of the mapping that holds `p`, from /proc/self/maps ("rw-p", "---p").
std::string protection_at(const void* p) {
  FILE* f = std::fopen("/proc/self/maps", "r");
  char line[512];
  std::string perms;
  auto a = reinterpret_cast<std::uintptr_t>(p);
  while (f != nullptr && std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long lo = 0, hi = 0;
    char prot[8] = {};
    if (std::sscanf(line, "%lx-%lx %7s", &lo, &hi, prot) == 3 && a >= lo && a < hi) perms = prot;
  }
  if (f != nullptr) std::fclose(f);
  return perms;
}

// Issue 9 (overcommit): an mmap segment is a reservation; only what is handed out is committed.
TEST_F(ArenaTest, SegmentsCommitWhatTheyHandOut) {
  Span* s = alloc(2);
  ASSERT_NE(s, nullptr);
  Segment* seg = segment_map::lookup(s->start);
  ASSERT_FALSE(seg->from_brk);
  std::uint32_t end = seg->index_of(s) + 2;
  EXPECT_GE(seg->committed_pages, end);
  EXPECT_LE(seg->committed_pages, end + Arena::kCommitStep);
  EXPECT_LT(seg->committed_pages, seg->page_count);
  EXPECT_EQ(protection_at(s->start), "rw-p");
  EXPECT_EQ(protection_at(seg->page_address(seg->page_count - 1)), "---p");
  // Taking the rest of the segment commits it.
  Span* rest = alloc(seg->data_pages() - end + seg->first_data_page);
  ASSERT_NE(rest, nullptr);
  EXPECT_EQ(segment_map::lookup(rest->start), seg);
  EXPECT_EQ(seg->committed_pages, seg->page_count);
  rest->start[rest->bytes() - 1] = 1;
  EXPECT_EQ(protection_at(seg->page_address(seg->page_count - 1)), "rw-p");
  free_span(rest);
  free_span(s);
}

// Under heuristic overcommit the kernel refuses to commit more than RAM + swap: the span request
// fails and its segment does not stay mapped.
TEST_F(ArenaTest, ImpossibleCommitFailsAndReleasesItsSegment) {
  FILE* f = std::fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = f != nullptr ? std::fgetc(f) : -1;
  if (f != nullptr) std::fclose(f);
  if (mode != '0') GTEST_SKIP() << "vm.overcommit_memory is not 0";
  long pages = sysconf(_SC_PHYS_PAGES);
  std::size_t want = 4 * static_cast<std::size_t>(pages);  // twice RAM, with swap up to RAM
  std::size_t mapped = stats().mapped;
  EXPECT_EQ(alloc(want), nullptr);
  EXPECT_EQ(stats().mapped, mapped);
}

TEST_F(ArenaTest, ResizeInPlace) {
  Span* s = alloc(8);
  Span* after = alloc(8);
  char* start = s->start;
  free_span(after);
  {
    os::LockGuard g(arena_->lock());
    EXPECT_TRUE(arena_->grow_span_locked(s, Pages{14}));
    stats::check_arena_locked(arena_);
    EXPECT_EQ(s->page_count, 14u);
    EXPECT_TRUE(arena_->shrink_span_locked(s, Pages{2}));
    stats::check_arena_locked(arena_);
    EXPECT_EQ(s->page_count, 2u);
  }
  EXPECT_EQ(s->start, start);
  free_span(s);
}

TEST_F(ArenaTest, DecayPurgesAndReleases) {
  config::options().decay_ms = 0;  // purge at once
  Span* s = alloc(100);
  std::size_t mapped = stats().mapped;
  EXPECT_GT(mapped, 0u);
  free_span(s);
  EXPECT_EQ(stats().dirty, 0u);
  {
    os::LockGuard g(arena_->lock());
    arena_->decay_locked(os::now_ms(), true);
    stats::check_arena_locked(arena_);
  }
  EXPECT_EQ(stats().mapped, 0u);  // the empty segment went back to the OS
}

TEST_F(ArenaTest, DirtyMemoryIsBounded) {
  config::options().decay_ms = 100000;  // nothing ages out: only the bound purges
  config::options().dirty_max = 1 << 20;
  std::vector<Span*> spans;
  for (int i = 0; i < 20; ++i) spans.push_back(alloc(64));  // 256 KiB each
  for (Span* s : spans) {
    free_span(s);
    EXPECT_LE(stats().dirty, std::size_t{1} << 20);
  }
  EXPECT_GT(stats().purge_calls, 0u);
}

// The purge policy (docs/design.md): beyond the trim threshold the oldest dirty span is purged
// inside the free that crossed it; the newer ones stay dirty for reuse.
TEST_F(ArenaTest, BudgetIsTheTrimThresholdAndPurgesOldestFirst) {
  config::options().decay_ms = 100000;
  config::options().dirty_max = 0;
  config::options().trim_threshold = 128 << 10;
  Span* a = alloc(16);  // 64 KiB each, kept apart by live one-page spans so none coalesce
  Span* sep1 = alloc(1);
  Span* b = alloc(16);
  Span* sep2 = alloc(1);
  Span* c = alloc(16);
  Span* sep3 = alloc(1);
  ASSERT_TRUE(a && b && c && sep1 && sep2 && sep3);
  {
    os::LockGuard g(arena_->lock());
    EXPECT_EQ(arena_->dirty_budget(), std::size_t{128} << 10);
  }
  free_span(a);
  free_span(b);
  EXPECT_EQ(stats().dirty, std::size_t{128} << 10);  // at the budget: all kept
  EXPECT_EQ(a->state, kDirty);
  free_span(c);  // past it: the oldest (a) goes
  EXPECT_EQ(stats().dirty, std::size_t{128} << 10);
  EXPECT_EQ(a->kind, kSpanFree);
  EXPECT_EQ(a->state, kPurged);
  EXPECT_EQ(b->state, kDirty);
  EXPECT_EQ(c->state, kDirty);
  free_span(sep1);
  free_span(sep2);
  free_span(sep3);
}

TEST_F(ArenaTest, BudgetFollowsTheArenaActivityAndNegativeTrimMeansNone) {
  config::options().dirty_max = 0;
  config::options().trim_threshold = 128 << 10;
  Span* big = alloc(16384);  // 64 MiB in use: a quarter of it may stay dirty
  ASSERT_NE(big, nullptr);
  {
    os::LockGuard g(arena_->lock());
    EXPECT_EQ(arena_->dirty_budget(), (std::size_t{64} << 20) / Arena::kActiveShareDivisor);
  }
  config::options().trim_threshold = -1;  // mallopt(M_TRIM_THRESHOLD, -1): never trim
  {
    os::LockGuard g(arena_->lock());
    EXPECT_EQ(arena_->dirty_budget(), SIZE_MAX);
  }
  config::options().dirty_max = 3 << 20;  // dirty_max replaces the automatic budget
  {
    os::LockGuard g(arena_->lock());
    EXPECT_EQ(arena_->dirty_budget(), std::size_t{3} << 20);
  }
  free_span(big);
}

// With no thread, dirty spans within the budget age on the program's later calls.
TEST_F(ArenaTest, DirtySpansAgeOnLaterCalls) {
  config::options().decay_ms = 30;
  config::options().dirty_max = 0;
  config::options().trim_threshold = 64 << 20;
  Span* keep = alloc(1);
  Span* a = alloc(32);
  Span* sep = alloc(1);
  ASSERT_TRUE(keep && a && sep);
  free_span(a);
  EXPECT_EQ(stats().dirty, std::size_t{32} * os::kPageSize);
  std::size_t purges = stats().purge_calls;
  os::sleep_ms(60);
  Span* other = alloc(2);  // any call that reaches the arena runs the decay that is due
  ASSERT_NE(other, nullptr);
  EXPECT_GT(stats().purge_calls, purges);
  EXPECT_EQ(stats().dirty, 0u);
  free_span(other);
  free_span(sep);
  free_span(keep);
}

// Memory purged and wanted again at once teaches the arena to keep that much dirty (thread churn:
// each exiting thread's pages are what the next one takes); aging unused unlearns it.
TEST_F(ArenaTest, BudgetLearnsFromPurgedMemoryWantedBack) {
  config::options().decay_ms = 30;
  config::options().dirty_max = 0;
  config::options().trim_threshold = 0;  // every free purged at once, unless learnt otherwise
  Span* keep = alloc(1);
  Span* sep = alloc(1);  // keeps `keep` from coalescing with `a` (a merge is a new free)
  Span* a = alloc(64);   // 256 KiB, fresh from the OS: taking it teaches nothing
  ASSERT_TRUE(keep && sep && a);
  EXPECT_EQ(arena_->reuse_boost(), 0u);
  free_span(a);
  EXPECT_EQ(stats().dirty, 0u);  // purged at once
  Span* again = alloc(64);       // wanted back within the second: the purge was wasted
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(arena_->reuse_boost(), std::size_t{64} * os::kPageSize);
  free_span(again);
  EXPECT_EQ(stats().dirty, std::size_t{64} * os::kPageSize);  // kept for the next reuse
  os::sleep_ms(60);
  free_span(keep);  // a later call: the dirty span aged unused, purged, and the lesson unlearnt
  EXPECT_EQ(stats().dirty, 0u);
  EXPECT_EQ(arena_->reuse_boost(), 0u);
  free_span(sep);
}

// Issue 10 (large blocks): an arena grows geometrically, each new segment at least as large as
// what it has mapped (up to kMaxGrowthBytes), so that a growing heap is a few segments whose free
// spans can coalesce, not sixteen 4 MiB ones.
TEST_F(ArenaTest, GrowthIsGeometric) {
  std::vector<Span*> held;
  std::size_t mapped = stats().mapped;
  int growths = 0;
  while (stats().mapped < (std::size_t{64} << 20)) {
    Span* s = alloc(256);  // 1 MiB
    ASSERT_NE(s, nullptr);
    held.push_back(s);
    std::size_t now = stats().mapped;
    if (now == mapped) continue;
    ++growths;
    std::size_t floor = std::min(mapped, Arena::kMaxGrowthBytes) / kSegmentSize * kSegmentSize;
    EXPECT_GE(now - mapped, floor) << "growth " << growths;
    mapped = now;
  }
  EXPECT_LE(growths, 6);  // 4 + 4 + 8 + 16 + 32 MiB
  for (Span* s : held) free_span(s);
}

// The fast map describes every granule of a segment larger than 4 MiB: free finds a small page in
// a later granule in one load, and any other span's entry resolves to itself (not small, no owner).
TEST_F(ArenaTest, FastMapCoversTheLaterGranulesOfABigSegment) {
  if (segment_map::g_fast_limit.load() == 0) GTEST_SKIP() << "no fast map (address-space limit)";
  Span* big = alloc(3000);  // ~12 MiB: a segment of several granules
  ASSERT_NE(big, nullptr);
  Segment* seg = segment_map::lookup(big->start);
  ASSERT_GT(seg->size, 2 * kSegmentSize);
  Span* small = bare(16, kSpanSmall);
  ASSERT_NE(small, nullptr);
  ASSERT_EQ(segment_map::lookup(small->start), seg);
  ASSERT_GE(small->start - reinterpret_cast<char*>(seg), static_cast<std::ptrdiff_t>(kSegmentSize));
  for (std::size_t off : {std::size_t{0}, std::size_t{48}, 16 * os::kPageSize - 16})
    EXPECT_EQ(segment_map::fast_page_of(small->start + off), small) << off;
  for (std::size_t page : {std::size_t{0}, std::size_t{1500}, std::size_t{2999}}) {
    Span* e = segment_map::fast_page_of(big->start + page * os::kPageSize + 8);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e, seg->entry_for(big->start + page * os::kPageSize)) << page;
    EXPECT_NE(e->kind, kSpanSmall);
    EXPECT_EQ(e->owner_tag.load(), 0u);
  }
  bare_free(small);
  free_span(big);
}

// Issue 10 (large blocks): a request no dirty span fits alone takes a dirty span together with its
// purged neighbour, so only the purged part faults; the rest of the neighbour stays purged.
TEST_F(ArenaTest, ADirtySpanJoinsItsPurgedNeighbour) {
  config::options().decay_ms = 100000;
  config::options().dirty_max = std::size_t{1} << 30;
  Span* x = alloc(300);
  Span* y = alloc(300);
  Span* guard = alloc(1);
  ASSERT_TRUE(x && y && guard);
  ASSERT_EQ(y->start, x->start + 300 * os::kPageSize);
  free_span(x);
  {
    os::LockGuard g(arena_->lock());
    arena_->decay_locked(os::now_ms(), true);  // x purged
  }
  ASSERT_EQ(x->state, kPurged);
  char* y_start = y->start;
  free_span(y);  // dirty, with the purged x on its left
  ASSERT_EQ(y->state, kDirty);
  std::size_t dirty = stats().dirty;
  Span* got = alloc(400);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->start, y_start - 100 * os::kPageSize);  // y and the last 100 pages of x
  EXPECT_EQ(stats().dirty, dirty - 300 * os::kPageSize);
  EXPECT_EQ(x->kind, kSpanFree);  // the first 200 pages of x, still purged
  EXPECT_EQ(x->state, kPurged);
  EXPECT_EQ(x->page_count, 200u);
  free_span(got);
  free_span(guard);
}

// The page entries inside a purged free span go back to the OS with it (136 bytes per page stay
// resident otherwise: 34 MiB per GiB a big segment once had in use).
TEST_F(ArenaTest, PurgingAFreeSpanPurgesTheEntriesInsideIt) {
  config::options().decay_ms = 100000;
  config::options().dirty_max = std::size_t{1} << 30;
  Span* guard = alloc(1);  // keeps the segment (the heap checker is not run on these bare pages)
  std::vector<Span*> pages;
  for (int i = 0; i < 50; ++i) {  // small pages write every one of their entries
    pages.push_back(bare(16, kSpanSmall));
    ASSERT_NE(pages.back(), nullptr);
  }
  Span* first = pages.front();
  for (Span* s : pages) bare_free(s);
  ASSERT_EQ(first->kind, kSpanFree);
  ASSERT_GE(first->page_count, 800u);
  auto resident = [](const void* p) {
    auto a =
        reinterpret_cast<std::uintptr_t>(p) & ~(static_cast<std::uintptr_t>(os::page_size()) - 1);
    unsigned char v = 0;
    EXPECT_EQ(mincore(reinterpret_cast<void*>(a), 1, &v), 0);
    return (v & 1) != 0;
  };
  Span* middle = first + 400;
  EXPECT_TRUE(resident(middle));
  {
    os::LockGuard g(arena_->lock());
    arena_->decay_locked(os::now_ms(), true);
  }
  // Before anything reads the entries again (a read maps the kernel's zero page, which mincore
  // counts as resident, though it is no memory of the process's).
  EXPECT_FALSE(resident(middle));
  EXPECT_EQ(middle->kind, kSpanNone);
  EXPECT_EQ(middle->page_of_entry(), middle);
  free_span(guard);
}

// A remote free of an abandoned page's last block takes the arena lock and gives the page back
// if it is still abandoned; a thread that adopted the page meanwhile (took it under the same lock,
// then released the lock before writing the page) must not lose it: taking the page clears its
// "abandoned" flag under the lock (unlink_page), the adopter writes no flag afterwards.
TEST_F(ArenaTest, APageTakenFromTheAbandonedListIsNoLongerAbandoned) {
  bool zeroed = false;
  os::LockGuard g(arena_->lock());
  Span* page = arena_->alloc_span_locked(Pages{1}, Pages{1}, kSpanSmall, &zeroed);
  ASSERT_NE(page, nullptr);
  page->size_class = 3;
  page->used = 1;  // one block, left by the exited thread
  page->thread_free.store(0, std::memory_order_relaxed);
  arena_->abandon_page_locked(page);
  EXPECT_EQ(arena_->stats_locked().abandoned_pages, 1u);
  ASSERT_EQ(arena_->take_abandoned_locked(3), page);  // a new thread adopts it
  EXPECT_EQ(arena_->stats_locked().abandoned_pages, 0u);
  // Before the adopter writes anything, another thread frees the block (its count reaches used).
  page->thread_free.store(std::uint64_t{1} << kThreadFreeCountShift, std::memory_order_relaxed);
  EXPECT_FALSE(arena_->release_abandoned_if_empty_locked(page));
  EXPECT_EQ(arena_->stats_locked().abandoned_pages, 0u);
  EXPECT_EQ(page->kind, kSpanSmall);  // still the adopter's page
  page->thread_free.store(0, std::memory_order_relaxed);
  page->used = 0;
  arena_->free_span_locked(page);
  stats::check_arena_locked(arena_);
}

// Parked pages (docs/design.md): an empty small page given back is kept for its class, reset to
// never carved, and the next page of that class is that one, so its resident part is reused by
// the blocks that made it resident, not by another class that touches more of it.
TEST_F(ArenaTest, AnEmptySmallPageIsParkedForItsClassAndTakenBackFirst) {
  config::options().decay_ms = 10000;
  const unsigned c = 5;
  // Taken fresh (known zero) before the lesson, whose purge may leave the rest of the segment
  // not known zero where the kernel's pages are larger than 4 KiB (the checked build pretends
  // 16 KiB).
  Span* p = empty_small_page(c, 3 * os::kPageSize + 100);  // four 4 KiB pages carved
  ASSERT_NE(p, nullptr);
  Span* taught = teach_budget(64);  // 256 KiB learnt
  ASSERT_NE(taught, nullptr);
  ASSERT_EQ(arena_->reuse_boost(), std::size_t{64} * os::kPageSize);
  const std::size_t small_before = stats().small_pages;
  park(p);
  ArenaStats st = stats();
  EXPECT_EQ(st.parked_pages, 1u);
  EXPECT_EQ(st.parked_resident, 4 * os::kPageSize);
  EXPECT_EQ(st.parked_bytes, p->bytes());
  EXPECT_EQ(st.small_pages, small_before);  // still a span in use, to the span heap
  EXPECT_EQ(p->carved, 0u);
  EXPECT_EQ(p->flags, kSpanParked);
  Span* again = take_page(c);
  EXPECT_EQ(again, p);
  EXPECT_EQ(stats().parked_pages, 0u);
  EXPECT_EQ(stats().parked_resident, 0u);
  EXPECT_EQ(p->flags, 0);
  bare_free(again);
  free_span(taught);
}

// A page taken from dirty memory (a freed large block: resident throughout) counts whole when
// it is parked, not just its carved part: statistics and the budget must not call resident
// memory purged (review of the parked pages).
TEST_F(ArenaTest, APageTakenFromDirtyMemoryCountsWholeWhenParked) {
  config::options().decay_ms = 10000;
  Span* taught = teach_budget(64);
  ASSERT_NE(taught, nullptr);
  const unsigned c = 5;
  const std::size_t page_pages = class_page_count(c).count();
  Span* large = alloc(page_pages);
  ASSERT_NE(large, nullptr);
  std::memset(large->start, 1, large->bytes());  // resident
  free_span(large);                              // dirty, within the learnt budget
  ASSERT_GE(arena_->dirty_bytes(), page_pages * os::kPageSize);
  Span* p = empty_small_page(c, os::kPageSize);  // the dirty span, one 4 KiB page carved
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->resident_pages, page_pages);
  park(p);
  ASSERT_EQ(stats().parked_pages, 1u);
  EXPECT_EQ(stats().parked_resident, page_pages * os::kPageSize);
  // Taken again and parked again, it still counts whole.
  Span* again = take_page(c);
  ASSERT_EQ(again, p);
  again->carved = 0;
  park(again);
  EXPECT_EQ(stats().parked_resident, page_pages * os::kPageSize);
  free_span(taught);
}

// Without a learnt budget (nothing purged was wanted back) a page goes to the span heap as
// before: a program's last frees must not keep pages no one will take (bench size_sweep).
TEST_F(ArenaTest, AnEmptySmallPageIsFreedWhenNothingWasLearnt) {
  config::options().decay_ms = 10000;
  ASSERT_EQ(arena_->reuse_boost(), 0u);
  Span* p = empty_small_page(3, os::kPageSize);
  ASSERT_NE(p, nullptr);
  park(p);
  EXPECT_EQ(stats().parked_pages, 0u);
  EXPECT_NE(p->kind, kSpanSmall);  // back in the span heap
  EXPECT_GT(stats().dirty, 0u);
}

// Parked pages stay within the learnt budget (their carved bytes) and kParkedPerClass per class.
TEST_F(ArenaTest, ParkedPagesAreBoundedByTheLearntBudgetAndPerClass) {
  config::options().decay_ms = 10000;
  // All taken fresh before any is parked (a new page takes parked ones of other classes first)
  // and before the lesson (see AnEmptySmallPageIsParkedForItsClassAndTakenBackFirst).
  std::vector<Span*> pages;
  for (unsigned i = 0; i < Arena::kParkedPerClass + 2; ++i) {
    pages.push_back(empty_small_page(7, os::kPageSize));
    ASSERT_NE(pages.back(), nullptr);
  }
  Span* big = empty_small_page(9, 15 * os::kPageSize);
  ASSERT_NE(big, nullptr);
  // Room for 8 pages of one kernel page carved each, and 16 KiB more: not for `big`.
  const std::size_t unit = (os::kPageSize + os::page_size() - 1) & ~(os::page_size() - 1);
  Span* taught = teach_budget((Arena::kParkedPerClass * unit + 16384) / os::kPageSize);
  ASSERT_NE(taught, nullptr);
  for (Span* p : pages) park(p);
  EXPECT_EQ(stats().parked_pages, Arena::kParkedPerClass);  // 8 x 4 KiB carved: within
  // A page whose carved part no longer fits the budget goes to the span heap.
  park(big);
  EXPECT_EQ(stats().parked_pages, Arena::kParkedPerClass);
  EXPECT_NE(big->kind, kSpanSmall);  // back in the span heap (maybe merged into a neighbour)
  EXPECT_LE(stats().parked_resident + arena_->dirty_bytes(), arena_->dirty_budget());
  free_span(taught);
}

// Decay gives back parked pages that aged unused (they become dirty spans, purged by the next
// pass); a forced decay (malloc_trim) gives back all of them and purges them at once.
TEST_F(ArenaTest, DecayAndTrimGiveBackParkedPages) {
  config::options().decay_ms = 50;
  Span* taught = teach_budget(64);
  ASSERT_NE(taught, nullptr);
  // Both taken before either is parked: a new page takes a parked one first.
  Span* pages[] = {empty_small_page(4, 2 * os::kPageSize), empty_small_page(6, os::kPageSize)};
  for (Span* p : pages) park(p);
  ASSERT_EQ(stats().parked_pages, 2u);
  {
    os::LockGuard g(arena_->lock());
    EXPECT_TRUE(arena_->decay_due(os::now_ms() + 60));  // parked pages alone make decay due
    arena_->decay_locked(os::now_ms(), false);          // too young
    EXPECT_EQ(arena_->stats_locked().parked_pages, 2u);
    // Aged: back to the span heap as dirty spans, nothing purged or released yet (the count once
    // took in their resident bytes, which a forced pass then counted again as purged).
    EXPECT_EQ(arena_->decay_locked(os::now_ms() + 60, false), 0u);
    EXPECT_EQ(arena_->stats_locked().parked_pages, 0u);
    EXPECT_GT(arena_->dirty_bytes(), 0u);
    stats::check_arena_locked(arena_);
  }
  ASSERT_NE(parked_page(4, 2 * os::kPageSize), nullptr);
  ASSERT_EQ(stats().parked_pages, 1u);
  {
    os::LockGuard g(arena_->lock());
    arena_->decay_locked(os::now_ms(), true);
    EXPECT_EQ(arena_->stats_locked().parked_pages, 0u);
    EXPECT_EQ(arena_->dirty_bytes(), 0u);
    stats::check_arena_locked(arena_);
  }
  free_span(taught);
}

// A thread that needs a page of a class with none parked, when the arena's dirty spans cannot
// hold it, gets a parked page of another class (resident memory reused before new memory).
TEST_F(ArenaTest, AParkedPageOfAnotherClassIsReusedBeforeNewMemory) {
  config::options().decay_ms = 10000;
  Span* taught = teach_budget(64);
  ASSERT_NE(taught, nullptr);
  Span* p = parked_page(4, 2 * os::kPageSize);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(stats().parked_pages, 1u);
  char* start = p->start;
  ASSERT_EQ(arena_->dirty_bytes(), 0u);  // taught: purged at once, taken back
  Span* other = take_page(8);            // same page size
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(other->start, start);
  EXPECT_EQ(stats().parked_pages, 0u);
  bare_free(other);
  free_span(taught);
}

TEST_F(ArenaTest, RandomOperationsKeepEveryInvariant) {
  std::mt19937 rng(12345);
  std::vector<Span*> live;
  // A short decay makes purges and segment releases happen between operations (this found a
  // segment released while half of it was still a dirty span: the regression this guards).
  config::options().decay_ms = 2;
  for (int step = 0; step < 4000; ++step) {
    unsigned op = rng() % 10;
    if (step % 97 == 0) {  // a decay pass that purges every dirty span (a time far ahead)
      os::LockGuard g(arena_->lock());
      arena_->decay_locked(os::now_ms() + 1000000, false);
      stats::check_arena_locked(arena_);
    }
    if (op < 5 || live.empty()) {
      std::size_t pages = 1 + rng() % (rng() % 8 == 0 ? 600 : 40);
      std::size_t align = rng() % 6 == 0 ? std::size_t{1} << (rng() % 6) : 1;
      Span* s = alloc(pages, align);
      ASSERT_NE(s, nullptr);
      for (Span* o : live) {  // no overlap with any live span
        ASSERT_TRUE(s->start + s->bytes() <= o->start || o->start + o->bytes() <= s->start);
      }
      s->start[0] = 1;
      s->start[s->bytes() - 1] = 2;
      live.push_back(s);
    } else if (op < 9) {
      std::size_t i = rng() % live.size();
      free_span(live[i]);
      live.erase(live.begin() + static_cast<long>(i));
    } else {
      Span* s = live[rng() % live.size()];
      std::size_t pages = 1 + rng() % 60;
      os::LockGuard g(arena_->lock());
      if (pages < s->page_count)
        arena_->shrink_span_locked(s, Pages{pages});
      else
        arena_->grow_span_locked(s, Pages{pages});
      stats::check_arena_locked(arena_);
    }
  }
  for (Span* s : live) free_span(s);
  EXPECT_EQ(stats().large, 0u);
}

}  // namespace
}  // namespace mallard
