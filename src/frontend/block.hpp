// block.hpp: operations on one block whatever its kind (small, large, huge): resolving and
// validating a pointer (foreign, interior and double-free pointers are reported and abort), the
// slow path of free, and the allocation of large blocks (page spans from the thread's arena).
// The same-thread fast paths are in the API layer's inline code; these are the rest.
#pragma once

#include <cstddef>

#include "backend/segment.hpp"
#include "backend/span.hpp"
#include "frontend/thread_heap.hpp"

namespace mallard {

enum class BlockKind { kSmall, kLarge, kHuge };

struct BlockRef {
  BlockKind kind;
  Segment* segment;
  Span* page;          // small and large blocks
  std::size_t usable;  // bytes the caller may use
};

// Resolves a live block; reports (naming `call`) and aborts if p is not one.
BlockRef resolve_block(const void* p, const char* call);
// What a sized or aligned operator delete says of its block: the size and alignment (0: none
// given) that new was called with.
struct DeleteClaim {
  std::size_t size;
  std::size_t alignment;
};
// Frees p (not nullptr) on any path: remote frees, full pages, large and huge blocks. With a
// claim, first reports (and aborts) if the block is not one that new(size, alignment) returns.
[[gnu::noinline]] void free_slow(void* p, const char* call, const DeleteClaim* claim = nullptr);
// The last block of a page whose thread is gone (abandoned or quarantined) comes back: push it
// and release the page, under the arena lock. Out of line: the lock's code would otherwise cost
// every remote free its register saves.
[[gnu::noinline]] void free_last_block_of_orphan(Span* page, FreeBlock* b, std::uintptr_t mark);
// The caller's own page, on a slow path (a full page, or a free that is not the fast path's);
// `tag` is the owner tag read once by the caller. Decided on that value, not read again: a page on
// the full list may be taken by another heap at any moment (ThreadHeap::give_full_page), and
// free_into_full_page confirms it under the lock. Out of line, like the orphan branch.
[[gnu::noinline]] void free_into_own_page(ThreadHeap* me, Span* page, FreeBlock* b,
                                          std::uintptr_t mark, std::uintptr_t tag);

// A remote free into a page on its live owner's full list. If it is the page's last block and
// the owner holds more than ThreadHeap::kFullPagesKept full pages of the class, the page goes
// back to the arena now, under the owner's slow-path lock if it can be taken at once (memory
// freed by other threads returns while its owner idles; errno kept: the arena may purge).
// Otherwise b is pushed and the owner told to look at its full list.
[[gnu::noinline]] void free_into_full_page_of(ThreadHeap* owner, Span* page, FreeBlock* b,
                                              std::uintptr_t mark);

// Frees a checked small block of `page` when the caller is not its owner (one atomic push), or
// when the page sits on the owner's full list. Inline: it is the whole of a remote free.
[[gnu::always_inline]] inline void free_small_block(Span* page, FreeBlock* b, std::uintptr_t mark) {
  ThreadHeap* me = tl_heap;
  std::uintptr_t tag = page->owner_tag.load(std::memory_order_acquire);
  auto* owner = reinterpret_cast<ThreadHeap*>(tag & ~kOwnerTagFull);
  if (owner == me) {
    free_into_own_page(me, page, b, mark, tag);
    return;
  }
  // A page on its live owner's full list: out of line (it may give the page back).
  if (owner != nullptr && (tag & kOwnerTagFull) != 0) {
    free_into_full_page_of(owner, page, b, mark);
    return;
  }
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
}

// A large block of n bytes (page span) aligned to `alignment`; nullptr when out of memory.
void* alloc_large(std::size_t n, std::size_t alignment, bool zero);
// In-place resize of a large block: true if the span now holds n bytes.
bool resize_large_in_place(const BlockRef& block, std::size_t n);

}  // namespace mallard
