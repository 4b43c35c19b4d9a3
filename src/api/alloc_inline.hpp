// alloc_inline.hpp: the allocator's fast paths, inline, shared by the C API and the C++
// operators. Same-thread malloc of a small block: one TLS load, a class lookup, a pop. Same-thread
// free: two loads in the segment map, the page entry, owner and block-start checks, a push. No
// lock and no atomic read-modify-write on either; everything else tail-calls a slow path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/segment_map.hpp"
#include "backend/size_class.hpp"
#include "config/options.hpp"
#include "frontend/thread_heap.hpp"

namespace mallard::api {

// Largest request served by the small classes: kSmallMax, or less when the mmap threshold was set
// below it (glibc: every request at or above the threshold is mmapped). alloc_slow.cpp.
extern config::Relaxed<std::size_t> g_small_limit;  // written by mallopt while others read
// Recomputes g_small_limit after the mmap threshold changed.
void refresh_small_limit() noexcept;

// Slow paths (alloc_slow.cpp). Each sets errno (ENOMEM) only when it fails: the free paths never
// change it (glibc's free, since 2.33), even when a system call inside them fails.
[[gnu::noinline]] void* malloc_small_slow(unsigned size_class) noexcept;
[[gnu::noinline]] void* malloc_big(std::size_t n, std::size_t alignment, bool zero) noexcept;
[[gnu::noinline]] void free_slow_path(void* p, const char* call) noexcept;
// A valid small block whose page is not this thread's (or is on its full list).
[[gnu::noinline]] void free_small_other(Span* page, FreeBlock* b, std::uintptr_t mark) noexcept;
// The calling thread's own page became empty (ThreadHeap::page_emptied, errno kept).
[[gnu::noinline]] void page_emptied_slow(ThreadHeap* heap, Span* page) noexcept;
[[gnu::noinline]] void* aligned_slow(std::size_t alignment, std::size_t n) noexcept;

[[gnu::always_inline]] inline void* malloc_inline(std::size_t n) noexcept {
  if (__builtin_expect(n <= g_small_limit, 1)) {
    unsigned c = size_class_of(n);
    void* p = tl_heap->try_pop(c);
    if (__builtin_expect(p != nullptr, 1)) return p;
    return malloc_small_slow(c);
  }
  return malloc_big(n, 0, false);
}

[[gnu::always_inline]] inline void free_inline(void* p, const char* call) noexcept {
  if (p == nullptr) return;
  Segment* seg = segment_map::lookup(p);
  if (__builtin_expect(seg != nullptr && seg->kind == SegmentKind::kNormal, 1)) {
    Span* entry = seg->entry_for(p);
    Span* page = entry - entry->back;
    auto* b = static_cast<FreeBlock*>(p);
    std::uintptr_t mark = reinterpret_cast<std::uintptr_t>(p) ^ g_free_key;
    if (__builtin_expect(page->kind == kSpanSmall && is_block_start(page, p) && b->marker != mark,
                         1)) {
      ThreadHeap* heap = tl_heap;
      if (__builtin_expect(page->flags == 0 && page->owner.load(std::memory_order_relaxed) == heap,
                           1)) {
        if (__builtin_expect(ThreadHeap::push_local(page, b, mark), 1)) return;
        page_emptied_slow(heap, page);
        return;
      }
      free_small_other(page, b, mark);  // another thread's page, or a full one of ours
      return;
    }
  }
  free_slow_path(p, call);  // large, huge, or a bad pointer (reported there)
}

// Power-of-two alignment; small requests use a class whose blocks are naturally aligned.
[[gnu::always_inline]] inline void* aligned_inline(std::size_t alignment, std::size_t n) noexcept {
  if (alignment <= 16) return malloc_inline(n);
  return aligned_slow(alignment, n);
}

}  // namespace mallard::api
