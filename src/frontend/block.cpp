// block.cpp: pointer resolution and validation, the free slow path, large blocks.
#include "frontend/block.hpp"

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

// The last block of a page whose thread is gone (abandoned or quarantined) comes back: push it
// and release the page, under the arena lock. Out of line: the lock's code would otherwise
// cost every remote free its register saves.
[[gnu::noinline]] void free_last_block_of_orphan(Span* page, FreeBlock* b, std::uintptr_t mark) {
  os::KeepErrno keep;  // the release may purge (madvise): free keeps errno
  Arena* arena = segment_of_entry(page)->arena;
  os::LockGuard guard(arena->lock());
  push_remote(page, b, mark);
  arena->release_abandoned_if_empty_locked(page);
}

// The caller's own page, on a slow path (a full page, or a free that is not the fast path's).
// Out of line, like the orphan branch: its calls would cost every remote free register saves.
[[gnu::noinline]] void free_into_own_page(ThreadHeap* me, Span* page, FreeBlock* b,
                                          std::uintptr_t mark) {
  os::KeepErrno keep;  // an emptied page may go back to the arena and be purged (madvise)
  if (page->on_full_list()) {
    me->free_into_full_page(page, b, mark);
  } else if (!ThreadHeap::push_local(page, b, mark)) {
    me->page_emptied(page);
  }
}

}  // namespace

void free_small_block(Span* page, FreeBlock* b, std::uintptr_t mark) {
  ThreadHeap* me = tl_heap;
  std::uintptr_t tag = page->owner_tag.load(std::memory_order_acquire);
  auto* owner = reinterpret_cast<ThreadHeap*>(tag & ~kOwnerTagFull);
  if (owner == me) {
    free_into_own_page(me, page, b, mark);
    return;
  }
  bool was_full = (tag & kOwnerTagFull) != 0;
  unsigned c = page->size_class;
  // The page's thread has exited, and this may be its last block: nobody would ever collect the
  // page, so give it back now. Once the last block is pushed, anyone (decay, trim) may release the
  // page and unmap its segment, so push it under the arena lock, which they need: the page is
  // pinned until then by this block. (`used` only changes under that lock while abandoned.)
  if (owner == nullptr &&
      thread_free_count(page->thread_free.load(std::memory_order_relaxed)) + 1 == page->used) {
    free_last_block_of_orphan(page, b, mark);
    return;
  }
  push_remote(page, b, mark);  // the page must not be touched after this: it may be gone
  if (owner != nullptr && was_full) owner->hint_remote_free(c);
}

BlockRef resolve_block(const void* p, const char* call) {
  Segment* seg = segment_map::lookup(p);
  if (seg == nullptr || seg->magic != kSegmentMagic) os::report_bad_pointer(kForeign, call, p);
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
        os::report_bad_pointer(block_start ? kNeverHandedOut : kInterior, call, p);
      }
      if (static_cast<const FreeBlock*>(p)->marker == free_marker(p))
        os::report_bad_pointer(kDoubleFree, call, p);
      return {BlockKind::kSmall, seg, page, page->block_size};
    }
    case kSpanLarge:
      if (p != page->start) os::report_bad_pointer(kInterior, call, p);
      return {BlockKind::kLarge, seg, page, page->bytes()};
    case kSpanFree:
      if (p == page->start) os::report_bad_pointer(kDoubleFree, call, p);
      os::report_bad_pointer(kInterior, call, p);
    default:
      os::report_bad_pointer(kInterior, call, p);
  }
}

void free_slow(void* p, const char* call) {
  BlockRef block = resolve_block(p, call);
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
      huge::release(block.segment);
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
