// heap_check.cpp: the invariants of segments, spans, pages and free lists.
#include "stats/heap_check.hpp"

#include <stdlib.h>

#include "backend/arena_registry.hpp"
#include "backend/segment_map.hpp"
#include "frontend/thread_heap.hpp"
#include "os/lock.hpp"
#include "os/text_writer.hpp"

namespace mallard::stats {
namespace {

[[noreturn, gnu::cold]] void violation(const char* what, const void* where) {
  {
    os::TextWriter w(2);
    w.str("mallard: heap check failed: ").str(what).str(" at ");
    w.hex(reinterpret_cast<std::uintptr_t>(where)).ch('\n');
  }
  abort();
}

#define CHECK(cond, what, where)         \
  do {                                   \
    if (!(cond)) violation(what, where); \
  } while (0)

// Blocks of one page already seen on one of its lists (a page holds at most 4096 blocks).
struct BlockSet {
  static constexpr std::uint32_t kMax = 4096;
  std::uint64_t bits[kMax / 64] = {};
};

// Walks a free list of a page: every block inside the carved part, a block start, no cycle, and
// on no other list of the page (a block listed twice would be handed out twice).
std::uint32_t list_length(const Span* page, const FreeBlock* b, BlockSet& seen) {
  std::uint32_t n = 0;
  const char* end = page->start + page->carved;
  for (; b != nullptr; b = decode_link(b)) {
    CHECK(reinterpret_cast<const char*>(b) >= page->start && reinterpret_cast<const char*>(b) < end,
          "free block outside its page", b);
    CHECK(is_carved_block_start(page, b), "free block not at a block start", b);
    CHECK(b->marker == free_marker(b), "free block without its free marker", b);
    CHECK(++n <= page->capacity, "free list longer than the page (cycle?)", page->start);
    auto index = static_cast<std::uint32_t>(
        static_cast<std::size_t>(reinterpret_cast<const char*>(b) - page->start) /
        page->block_size);
    if (index < BlockSet::kMax) {
      std::uint64_t bit = std::uint64_t{1} << (index % 64);
      CHECK((seen.bits[index / 64] & bit) == 0, "block on two free lists (double free?)", b);
      seen.bits[index / 64] |= bit;
    }
  }
  return n;
}

// The lists and counts of a page no other thread is changing: one of the calling thread's, or
// an abandoned one (whose arena lock the caller holds). Remote frees may still be pushed: the
// list from the word read here is stable, as pushes only prepend.
void check_page_lists(const Span* s) {
  CHECK(s->page_of_entry() == s, "small page's first entry does not point at itself", s->start);
  const auto carved = static_cast<std::uint32_t>(s->carved / s->block_size);
  CHECK(s->carved % s->block_size == 0, "page carved to a partial block", s->start);
  CHECK(carved <= s->capacity, "page carved beyond capacity", s->start);
  CHECK(s->used <= carved, "page uses more blocks than carved", s->start);
  BlockSet seen;
  std::uint32_t n = list_length(s, s->free, seen);
  CHECK(n + s->used == carved, "page block count mismatch (lost or doubled blocks)", s->start);
  std::uint64_t word = s->thread_free.load(std::memory_order_acquire);
  std::uint32_t remote = list_length(s, thread_free_list(word), seen);
  CHECK(remote == thread_free_count(word), "remote-free list length differs from its count",
        s->start);
  CHECK(remote <= s->used, "more remote frees than used blocks", s->start);
}

struct Totals {
  std::size_t dirty = 0, purged = 0, free_spans = 0, small = 0, large = 0, large_count = 0;
  std::size_t mapped = 0, metadata = 0, brk = 0, segments = 0;
};

void check_small_page(Segment* seg, std::uint32_t index, Span* s) {
  CHECK(s->block_size == class_block_size(s->size_class), "page block size disagrees with class",
        s->start);
  CHECK(std::size_t{s->capacity} * s->block_size <= s->bytes(), "page capacity too large",
        s->start);
  for (std::uint32_t i = 1; i < s->page_count; ++i) {
    Span* part = &seg->pages()[index + i];
    CHECK(part->kind == kSpanSmallPart && part->back == i && part->page_of_entry() == s,
          "small page interior entry wrong", seg->page_address(index + i));
  }
  // Counts and lists only where no other thread is changing them: the calling thread's pages
  // here, abandoned ones from the abandoned lists. (A page without owner that is on no list is
  // being adopted or retired by another thread right now.)
  if (s->owner() == tl_heap) check_page_lists(s);
}

std::size_t check_segment(Arena* a, Segment* seg, Totals& t) {
  CHECK(seg->magic == kSegmentMagic && seg->kind == SegmentKind::kNormal, "bad segment header",
        seg);
  CHECK(seg->arena == a, "segment in the wrong arena", seg);
  CHECK(seg->size == std::size_t{seg->page_count} * os::kPageSize &&
            seg->first_data_page == segment_metadata_pages(Pages{seg->page_count}).narrow(),
        "segment size or metadata size wrong", seg);
  for (std::size_t off = 0; off < seg->size; off += kSegmentSize)  // no overlap with another
    CHECK(segment_map::lookup(reinterpret_cast<char*>(seg) + off) == seg,
          "segment map does not point at its segment", reinterpret_cast<char*>(seg) + off);
  t.mapped += seg->size;
  t.metadata += std::size_t{seg->first_data_page} * os::kPageSize;
  if (seg->from_brk) t.brk += seg->size;
  ++t.segments;
  Span* pages = seg->pages();
  std::uint32_t free_pages = 0;
  std::size_t spans = 0;
  int prev_free_state = -1;
  for (std::uint32_t i = 0; i < seg->first_data_page; ++i)
    CHECK(pages[i].kind == kSpanNone, "metadata page entry in use", seg->page_address(i));
  for (std::uint32_t i = seg->first_data_page; i < seg->page_count;) {
    Span* s = &pages[i];
    CHECK(s->page_count != 0 && i + s->page_count <= seg->page_count, "span size out of segment",
          seg->page_address(i));
    CHECK(s->start == seg->page_address(i), "span start address wrong", seg->page_address(i));
    ++spans;
    switch (s->kind) {
      case kSpanFree:
        CHECK(prev_free_state != s->state, "adjacent free spans not coalesced", s->start);
        if (s->page_count > 1) {
          Span* tail = s + (s->page_count - 1);
          CHECK(tail->kind == kSpanFreeTail && tail->back == s->page_count - 1,
                "free span tail wrong", s->start);
        }
        for (std::uint32_t k = 1; k + 1 < s->page_count; ++k)
          CHECK(s[k].kind == kSpanNone, "entry inside a free span in use",
                seg->page_address(i + k));
        free_pages += s->page_count;
        ++t.free_spans;
        (s->state == kDirty ? t.dirty : t.purged) += s->bytes();
        prev_free_state = s->state;
        break;
      case kSpanSmall:
        check_small_page(seg, i, s);
        t.small += s->bytes();
        prev_free_state = -1;
        break;
      case kSpanLarge:
        for (std::uint32_t k = 1; k < s->page_count; ++k)
          CHECK(s[k].kind == kSpanNone, "entry inside a large span in use",
                seg->page_address(i + k));
        t.large += s->bytes();
        ++t.large_count;
        prev_free_state = -1;
        break;
      default:
        violation("page entry that starts no span", seg->page_address(i));
    }
    i += s->page_count;
  }
  CHECK(free_pages == seg->free_pages, "segment free page count wrong", seg);
  return spans;
}

// What a list of pages without owner is called in its reports.
struct ListNames {
  const char* longer;
  const char* links;
  const char* wrong_page;
  const char* other_arena;
  const char* owned;
};
constexpr ListNames kAbandonedList{
    "abandoned list longer than its count (cycle?)", "abandoned list links broken",
    "abandoned list holds a wrong page", "abandoned page of another arena",
    "abandoned page has an owner"};
constexpr ListNames kParkedList{"parked list longer than its count (cycle?)",
                                "parked list links broken", "parked list holds a wrong page",
                                "parked page of another arena", "parked page has an owner"};

// One arena list of small pages of class c without owner (abandoned or parked): links, length
// (n counts on, up to limit), kind, class, arena and owner; then each(page).
template <class Each>
void check_ownerless_list(Arena* a, Span* head, unsigned c, std::size_t& n, std::size_t limit,
                          const ListNames& names, Each&& each) {
  Span* prev = nullptr;
  for (Span* p = head; p != nullptr; prev = p, p = p->next) {
    CHECK(++n <= limit, names.longer, a);
    CHECK(p->prev == prev, names.links, p->start);
    CHECK(p->kind == kSpanSmall && p->size_class == c, names.wrong_page, p->start);
    CHECK(segment_of_entry(p) != nullptr && segment_of_entry(p)->arena == a, names.other_arena,
          p->start);
    CHECK(p->owner_tag.load(std::memory_order_relaxed) == 0, names.owned, p->start);
    each(p);
  }
}

}  // namespace

std::size_t check_heap() {
  std::size_t spans = 0;
  // The calling thread's own pages are walked (check_page_lists): its slow-path lock keeps
  // another thread from taking one of its full pages meanwhile (ThreadHeap::give_full_page).
  // Before the arena locks, as every slow path takes them.
  os::LockGuard own(tl_heap->slow_lock());
  arenas::for_each([&](unsigned, Arena* a) {
    os::LockGuard guard(a->lock());
    spans += check_arena_locked(a);
  });
  return spans;
}

std::size_t check_arena_locked(Arena* a) {
  std::size_t spans = 0;
  Totals t;
  for (Segment* seg = a->segments_locked(); seg != nullptr; seg = seg->next)
    spans += check_segment(a, seg, t);
  const ArenaStats& st = a->stats_locked();
  if (t.dirty != st.dirty || t.dirty != a->dirty_bytes()) {
    os::TextWriter(2)
        .str("mallard: walked dirty ")
        .u(t.dirty)
        .str(", counted ")
        .u(st.dirty)
        .str(", arena ")
        .u(a->dirty_bytes())
        .ch('\n');
    violation("dirty byte count wrong", a);
  }
  CHECK(t.purged == st.purged, "purged byte count wrong", a);
  CHECK(t.free_spans == st.free_spans, "free span count wrong", a);
  CHECK(t.small == st.small_pages, "small page byte count wrong", a);
  CHECK(t.large == st.large && t.large_count == st.large_count, "large byte count wrong", a);
  CHECK(t.mapped == st.mapped && t.metadata == st.metadata && t.brk == st.brk &&
            t.segments == st.segments,
        "segment byte or count statistics wrong", a);
  // Abandoned pages (an exited thread's, with live blocks): their lists and counts are whole.
  std::size_t abandoned = 0;
  for (unsigned c = 0; c < kClassCount; ++c)
    check_ownerless_list(a, a->abandoned_list_locked(c), c, abandoned, st.abandoned_pages,
                         kAbandonedList, [](Span* p) { check_page_lists(p); });
  CHECK(abandoned == st.abandoned_pages, "abandoned page count wrong", a);
  // Parked pages: empty, reset to never carved, their resident estimate summed.
  std::size_t parked = 0;
  std::size_t parked_bytes = 0;
  std::size_t parked_resident = 0;
  for (unsigned c = 0; c < kClassCount; ++c) {
    check_ownerless_list(
        a, a->parked_list_locked(c), c, parked, st.parked_pages, kParkedList, [&](Span* p) {
          CHECK(p->flags == kSpanParked && p->used == 0 && p->free == nullptr && p->carved == 0 &&
                    p->thread_free.load(std::memory_order_relaxed) == 0,
                "parked page not empty and reset", p->start);
          CHECK(p->resident_bytes() <= p->bytes(), "parked page resident estimate beyond the page",
                p->start);
          parked_bytes += p->bytes();
          parked_resident += p->resident_bytes();
        });
  }
  CHECK(parked == st.parked_pages && parked_bytes == st.parked_bytes &&
            parked_resident == st.parked_resident,
        "parked page statistics wrong", a);
  // Quarantined pages (a forked child's pages of threads it does not have): their free lists and
  // counts may be half-written by design, so only their links and remote-free lists are checked.
  std::size_t quarantined = 0;
  Span* prev = nullptr;
  for (Span* p = a->quarantine_list_locked(); p != nullptr; prev = p, p = p->next) {
    CHECK(++quarantined <= st.quarantined_pages, "quarantine longer than its count (cycle?)", a);
    CHECK(p->prev == prev, "quarantine links broken", p->start);
    CHECK(p->kind == kSpanSmall && p->flags == kSpanQuarantined, "quarantine holds a wrong page",
          p->start);
    CHECK(segment_of_entry(p)->arena == a, "quarantined page of another arena", p->start);
    CHECK(p->owner_tag.load(std::memory_order_relaxed) == 0, "quarantined page has an owner",
          p->start);
    BlockSet seen;
    std::uint64_t word = p->thread_free.load(std::memory_order_acquire);
    CHECK(list_length(p, thread_free_list(word), seen) == thread_free_count(word),
          "remote-free list length differs from its count", p->start);
  }
  CHECK(quarantined == st.quarantined_pages, "quarantined page count wrong", a);
  return spans;
}

}  // namespace mallard::stats
