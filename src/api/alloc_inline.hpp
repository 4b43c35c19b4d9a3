// alloc_inline.hpp: the allocator's fast paths, inline, shared by the C API and the C++
// operators. Same-thread malloc of a small block: one TLS load, the page from the heap's direct
// table (by size up to 1 KiB, by class above), a checked pop. Same-thread free: the fast map (one
// byte) gives the entry of the block's 64 KiB chunk, the small page's when it starts there; one
// compare of its owner tag with the caller's heap, the carved-block-start and double-free checks,
// an encoded push. No lock and no atomic read-modify-write on either; everything else calls a
// slow path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/segment_map.hpp"
#include "backend/size_class.hpp"
#include "config/options.hpp"
#include "frontend/thread_heap.hpp"
#include "os/visibility.hpp"

namespace mallard::api {

// Largest request served by the small classes: kSmallMax, or less when the mmap threshold was set
// below it (glibc: every request at or above the threshold is mmapped). alloc_slow.cpp.
extern config::Relaxed<std::size_t> g_small_limit
    MALLARD_HIDDEN;  // written by mallopt while others read
// min(g_small_limit, kDirectMax): the largest request served from the direct table.
extern config::Relaxed<std::size_t> g_direct_limit MALLARD_HIDDEN;
// Recomputes g_small_limit and g_direct_limit after the mmap threshold changed.
void refresh_small_limit() noexcept;

// Slow paths (alloc_slow.cpp). Each sets errno (ENOMEM) only when it fails: the free paths never
// change it (glibc's free, since 2.33), even when a system call inside them fails.
[[gnu::noinline]] void* malloc_small_slow(unsigned size_class) noexcept;
[[gnu::noinline]] void* malloc_big(std::size_t n, std::size_t alignment, bool zero) noexcept;
// Any malloc that is not a direct-table pop: larger small classes, refills, large, huge.
[[gnu::noinline]] void* malloc_generic(std::size_t n) noexcept;
[[gnu::noinline]] void free_slow_path(void* p, const char* call) noexcept;
// p lies in `page` (fast_page_of) but is not a same-thread free of a small block of a page on no
// full list: another thread's page, a full one, a large block or a bad pointer.
[[gnu::noinline]] void free_in_page_slow(Span* page, void* p, const char* call) noexcept;
// p lies under the fast map, and the entry of its chunk (segment_map::fast_chunk_of) is not a page
// of the calling thread's that takes the block: a page that does not start at the chunk, another
// thread's page, a full one, a large block or a bad pointer.
[[gnu::noinline]] void free_in_chunk_slow(Span* chunk, void* p, const char* call) noexcept;
// The calling thread's own page became empty and does not stay (ThreadHeap::keeps_emptied):
// back to the arena (ThreadHeap::page_emptied, errno kept).
[[gnu::noinline]] void page_emptied_slow(ThreadHeap* heap, Span* page) noexcept;
[[gnu::noinline]] void* aligned_slow(std::size_t alignment, std::size_t n) noexcept;

// The direct-table pop alone: nullptr when n is above the direct limit or its page has no free
// block (the caller then takes its slow path).
[[gnu::always_inline]] inline void* try_malloc_direct(std::size_t n) noexcept {
  if (__builtin_expect(n <= g_direct_limit, 1)) return tl_heap->try_pop_direct(n);
  return nullptr;
}

[[gnu::always_inline]] inline void* malloc_inline(std::size_t n) noexcept {
  void* p = try_malloc_direct(n);
  if (__builtin_expect(p != nullptr, 1)) return p;
  return malloc_generic(n);
}

// Same-thread free of a small block, when `fits(page)` (the sized delete's class check).
template <class Fits>
[[gnu::always_inline]] inline bool try_free_local(Span* page, void* p, Fits fits) noexcept {
  ThreadHeap* heap = tl_heap;
  auto* b = static_cast<FreeBlock*>(p);
  std::uintptr_t mark = free_marker(b);
  if (__builtin_expect(page->owner_tag.load(std::memory_order_relaxed) ==
                               reinterpret_cast<std::uintptr_t>(heap) &&
                           is_carved_block_start_by_owner(page, p) && b->marker != mark &&
                           fits(page),
                       1)) {
    // A page that empties and stays (the class's current page: a loop that allocates
    // and frees one block) is decided here, with no call: only one that goes back calls out.
    if (__builtin_expect(!ThreadHeap::push_local(page, b, mark), 0) && !heap->keeps_emptied(page))
      page_emptied_slow(heap, page);
    return true;
  }
  return false;
}

// The small page that holds p, when p lies under the fast map and `chunk` is its chunk's entry:
// the chunk's span if it is a small page with an owner (which covers the chunk: only a live small
// page's first entry has an owner tag, and the tag is the one field of an entry that any thread
// may read without the arena lock), else what p's own page entry says (fast_page_of; that may be
// stale or any span, which the caller's checks tell).
inline Span* page_of_chunk(Span* chunk, const void* p) {
  if (chunk->owner_tag.load(std::memory_order_relaxed) != 0) return chunk;
  return segment_map::fast_page_of(p);
}

[[gnu::always_inline]] inline void free_inline(void* p, const char* call) noexcept {
  Span* chunk = segment_map::fast_chunk_of(p);
  if (__builtin_expect(chunk != nullptr, 1)) {
    if (__builtin_expect(try_free_local(chunk, p, [](const Span*) { return true; }), 1)) return;
    free_in_chunk_slow(chunk, p, call);  // another page, thread or kind, or a bad pointer
    return;
  }
  free_slow_path(p, call);  // nullptr, huge, the two-level map's segments, or not Mallard's
}

// operator delete(p, n) and the aligned forms: p must be a block that new(n) (new(n, alignment))
// could have returned; a size of another class, or a misaligned p, is reported (one line,
// "invalid size or alignment", then abort). alloc_slow.cpp.
[[gnu::noinline]] void free_sized_slow(void* p, std::size_t n, std::size_t alignment,
                                       const char* call) noexcept;

// Whether a small page's blocks are the class new(n) serves (n <= kDirectMax).
[[gnu::always_inline]] inline bool page_fits_size(const Span* page, std::size_t n) {
  return page->size_class == size_class_detail::kSmallTable[direct_index(n)];
}

// p lies under the fast map and n <= kDirectMax, but `chunk` is not a page of the calling thread's
// that takes the block (what free_in_chunk_slow covers for free). Out of line, so that the fast
// path keeps free's registers (with it inline, sized delete saved and restored four).
[[gnu::noinline]] void free_sized_in_chunk_slow(Span* chunk, void* p, std::size_t n,
                                                const char* call) noexcept;

[[gnu::always_inline]] inline void free_sized_inline(void* p, std::size_t n,
                                                     const char* call) noexcept {
  Span* chunk = segment_map::fast_chunk_of(p);
  if (__builtin_expect(chunk != nullptr && n <= kDirectMax, 1)) {
    if (__builtin_expect(
            try_free_local(chunk, p, [n](const Span* s) { return page_fits_size(s, n); }), 1))
      return;
    free_sized_in_chunk_slow(chunk, p, n, call);
    return;
  }
  free_sized_slow(p, n, 0, call);
}

// Power-of-two alignment; small requests use a class whose blocks are naturally aligned.
[[gnu::always_inline]] inline void* aligned_inline(std::size_t alignment, std::size_t n) noexcept {
  if (alignment <= 16) return malloc_inline(n);
  return aligned_slow(alignment, n);
}

}  // namespace mallard::api
