// block.cpp: pointer resolution and validation, the free slow path, large blocks.
#include "frontend/block.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>

#include "backend/arena_registry.hpp"
#include "backend/huge.hpp"
#include "backend/segment_map.hpp"
#include "frontend/thread_heap.hpp"
#include "os/fatal.hpp"
#include "os/keep_errno.hpp"
#include "os/lock.hpp"

namespace mallard {
namespace {

constexpr const char* kForeign = "invalid pointer (not allocated by mallard)";
constexpr const char* kInterior = "invalid pointer (not the start of a block)";
constexpr const char* kDoubleFree = "double free";
constexpr const char* kNeverHandedOut = "invalid pointer (a block never handed out)";

// ---- reports of pointers into freed memory ------------------------------------------------
// A freed large block leaves no trace of itself: its span is free, maybe merged with its
// neighbours, maybe purged, maybe released to the OS with its whole segment. What is left is the
// address: large blocks, and the first block of every small page, start on a page (4 KiB)
// boundary. So a page-aligned pointer into free memory that blocks were once handed out of is
// reported as a double free. It may also have been a page-aligned interior pointer of a freed
// block (a bug of its own, rarer): the report then names the wrong one of two bugs. A pointer that
// is not page-aligned is not the start of a block that can be told (small blocks of a page that
// went back are not distinguishable from interior pointers) and keeps that report; memory never
// handed out (fresh from the OS) is not Mallard's allocation.

// p is in no segment Mallard has now: foreign, unless the record of released memory holds it and
// the address was not mapped again since (by the program or a library: then it is theirs).
[[noreturn, gnu::cold, gnu::noinline]] void report_unregistered(const void* p, const char* call) {
  const char* problem = kForeign;
  huge::Released r;
  if (huge::find_released(p, &r) && (!r.unmapped || !os::address_mapped(p))) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    bool block_start = r.kind == huge::ReleasedKind::kHugeBlock
                           ? a == r.first
                           : a >= r.first && (a & (os::kPageSize - 1)) == 0;
    problem = block_start ? kDoubleFree : kInterior;
  }
  os::report_bad_pointer(problem, call, p);
}

// The verdict on a page-aligned p inside a live normal segment whose entry starts no in-use span:
// walks the entries back to the span holding p. Under the arena's lock.
const char* verdict_in_segment_locked(Segment* seg, const void* p) {
  const std::uint32_t index = static_cast<std::uint32_t>(seg->entry_for(p) - seg->pages());
  if (index < seg->first_data_page || index >= seg->page_count) return kInterior;
  Span* pages = seg->pages();
  for (std::uint32_t i = index + 1; i-- > seg->first_data_page;) {
    Span* e = &pages[i];
    if (e->kind == kSpanNone) continue;  // the interior of a span (or purged metadata)
    Span* head = e;
    if (e->kind == kSpanFreeTail) {
      if (i != index) return kInterior;  // a free span ending before p: p starts nothing
      head = e - e->back;
    }
    if (head->kind != kSpanFree || seg->index_of(head) + head->page_count <= index)
      return kInterior;  // inside a live span (a large block's interior)
    return head->freed_at_ms != 0 ? kDoubleFree : kForeign;  // 0: fresh, never handed out
  }
  return kInterior;
}

// p lies in a normal segment but starts no in-use block.
[[noreturn, gnu::cold, gnu::noinline]] void report_in_segment(Segment* seg, const void* p,
                                                              const char* call) {
  const char* problem = kInterior;
  if ((reinterpret_cast<std::uintptr_t>(p) & (os::kPageSize - 1)) == 0) {
    Arena* arena = seg->arena;
    bool gone;
    {
      os::LockGuard guard(arena->lock());
      // Released (or released and mapped again for another arena) since it was looked up.
      gone = segment_map::lookup(p) != seg || seg->arena != arena;
      if (!gone) problem = verdict_in_segment_locked(seg, p);
    }
    if (gone) report_unregistered(p, call);
  }
  os::report_bad_pointer(problem, call, p);
}

}  // namespace

void free_last_block_of_orphan(Span* page, FreeBlock* b, std::uintptr_t mark) {
  os::KeepErrno keep;  // the release may purge (madvise): free keeps errno
  Arena* arena = segment_of_entry(page)->arena;
  os::LockGuard guard(arena->lock());
  push_remote(page, b, mark);
  arena->release_abandoned_if_empty_locked(page);
}

void free_into_full_page_of(ThreadHeap* owner, Span* page, FreeBlock* b, std::uintptr_t mark) {
  const unsigned c = page->size_class;
  // While full, a page's `used` is its capacity: the cheap test, confirmed under the owner's lock.
  if (thread_free_count(page->thread_free.load(std::memory_order_relaxed)) + 1 == page->capacity &&
      owner->full_pages(c) > ThreadHeap::kFullPagesKept) {
    os::KeepErrno keep;  // the page goes back to the arena, which may purge (madvise)
    if (owner->reclaim_emptied_full_page(page)) return;
  }
  push_remote(page, b, mark);  // the page must not be touched after this: it may be gone
  owner->hint_remote_free(c);
}

void free_into_own_page(ThreadHeap* me, Span* page, FreeBlock* b, std::uintptr_t mark,
                        std::uintptr_t tag) {
  os::KeepErrno keep;  // an emptied page may go back to the arena and be purged (madvise)
  if ((tag & kOwnerTagFull) != 0) {
    me->free_into_full_page(page, b, mark);
  } else if (!ThreadHeap::push_local(page, b, mark)) {
    me->page_emptied(page);
  }
}

BlockRef resolve_block(const void* p, const char* call) {
  Segment* seg = segment_map::lookup(p);
  if (seg == nullptr) report_unregistered(p, call);
  std::uint64_t magic = std::atomic_ref<std::uint64_t>(seg->magic).load(std::memory_order_acquire);
  if (magic != kSegmentMagic) {
    // A huge block another free has just claimed (and is unmapping): this one is the second.
    if (magic == huge::kReleasedMagic)
      os::report_bad_pointer(p == seg->huge_block ? kDoubleFree : kInterior, call, p);
    report_unregistered(p, call);
  }
  if (seg->kind == SegmentKind::kHuge) {
    if (p != seg->huge_block) os::report_bad_pointer(kInterior, call, p);
    return {BlockKind::kHuge, seg, nullptr, seg->huge_usable};
  }
  Span* e = seg->entry_for(p);
  Span* page = e - e->back;
  switch (page->kind) {
    case kSpanSmall: {
      auto off = static_cast<std::uint64_t>(static_cast<const char*>(p) - page->start);
      if (!is_carved_block_start(page, off)) {
        bool block_start = off % page->block_size == 0 && off / page->block_size < page->capacity;
        // Beyond the carved part, a block that still holds its free marker was carved and freed
        // before the page was parked or given back and taken again (reset to never carved): it
        // is freed again. (A block never carved holds no marker.)
        if (block_start && static_cast<const FreeBlock*>(p)->marker == free_marker(p))
          os::report_bad_pointer(kDoubleFree, call, p);
        os::report_bad_pointer(block_start ? kNeverHandedOut : kInterior, call, p);
      }
      if (static_cast<const FreeBlock*>(p)->marker == free_marker(p))
        os::report_bad_pointer(kDoubleFree, call, p);
      return {BlockKind::kSmall, seg, page, page->block_size};
    }
    case kSpanLarge:
      if (p != page->start) os::report_bad_pointer(kInterior, call, p);
      return {BlockKind::kLarge, seg, page, page->bytes()};
    default:  // a free span, or a page no span starts at (metadata, a large block's interior)
      report_in_segment(seg, p, call);
  }
}

namespace {

// The class new(n, alignment) serves n from (as the aligned path chooses it), or kClassCount when
// such a request is never small.
unsigned requested_class(std::size_t n, std::size_t alignment) {
  if (n > kSmallMax || alignment > os::kPageSize) return kClassCount;
  return alignment <= 16 ? size_class_of(n) : aligned_size_class(n, alignment);
}

// Whether `block` is what new(claim.size, claim.alignment) returns. The class or the mapping is
// compared, not the threshold: a mallopt between new and delete does not change the block.
bool fits_claim(const BlockRef& block, const void* p, const DeleteClaim& claim) {
  std::size_t n = claim.size;
  if (claim.alignment != 0 && reinterpret_cast<std::uintptr_t>(p) % claim.alignment != 0)
    return false;
  switch (block.kind) {
    case BlockKind::kSmall:
      return requested_class(n, claim.alignment) == block.page->size_class;
    case BlockKind::kLarge:  // whole pages for n
      return Pages::covering(n == 0 ? 1 : n) == block.page->pages();
    case BlockKind::kHuge:  // the kernel pages that hold the header and n bytes
      return n <= block.usable && block.usable - n < os::page_size();
  }
  return false;
}

}  // namespace

void free_slow(void* p, const char* call, const DeleteClaim* claim) {
  // Until a huge block is claimed: a racing free of it must not unmap the header read here.
  huge::ReaderSection section;
  BlockRef block = resolve_block(p, call);
  if (claim != nullptr && !fits_claim(block, p, *claim))
    os::report_bad_pointer("invalid size or alignment (not what it was allocated with)", call, p);
  if (block.kind != BlockKind::kHuge) section.leave();
  switch (block.kind) {
    case BlockKind::kSmall:
      free_small_block(block.page, static_cast<FreeBlock*>(p), free_marker(p));
      return;
    case BlockKind::kLarge: {
      Arena* arena = block.segment->arena;
      os::LockGuard guard(arena->lock());
      // Re-check under the lock: a racing double free must not free the span twice.
      if (block.page->kind != kSpanLarge) os::report_bad_pointer(kDoubleFree, call, p);
      arena->free_span_locked(block.page);
      return;
    }
    case BlockKind::kHuge:
      if (!huge::release(block.segment, section)) os::report_bad_pointer(kDoubleFree, call, p);
      return;
  }
}

void* alloc_large(std::size_t n, std::size_t alignment, bool zero) {
  MALLARD_CHECK(n <= kMaxRequest && alignment <= kMaxAlignment);
  Pages pages = Pages::covering(n);
  if (pages.is_zero()) pages = Pages{1};
  Pages align_pages = alignment > os::kPageSize ? Pages::within(alignment) : Pages{1};
  ThreadHeap* h = tl_heap;
  Arena* home = h->is_sentinel() || h->arena() == nullptr ? arenas::arena0() : h->arena();
  Arena* arena = arenas::uncontended(home);
  bool zeroed = false;
  Span* span;
  {
    os::LockGuard guard(arena->lock());
    span = arena->alloc_span_locked(pages, align_pages, kSpanLarge, &zeroed);
  }
  if (span == nullptr) return nullptr;
  if (zero && !zeroed) std::memset(span->start, 0, n);
  return span->start;
}

bool resize_large_in_place(const BlockRef& block, std::size_t n) {
  Pages pages = Pages::covering(n);
  Arena* arena = block.segment->arena;
  os::LockGuard guard(arena->lock());
  if (pages <= block.page->pages()) return arena->shrink_span_locked(block.page, pages);
  return arena->grow_span_locked(block.page, pages);
}

}  // namespace mallard
