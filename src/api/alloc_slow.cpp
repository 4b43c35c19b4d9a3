// alloc_slow.cpp: the slow paths behind the inline fast paths: first use (initialisation and
// heap attachment), page refills, large and huge blocks, aligned classes, and every free that is
// not a same-thread small free. Sets errno = ENOMEM on failure and leaves it unchanged otherwise:
// a system call that fails on the way to a success (a refused brk before an mmap, a contended
// futex, an madvise or munmap refused at the map-count limit) must not show. glibc's free keeps
// errno since 2.33, whatever happens inside it; the free paths here do the same.
#include <errno.h>

#include "api/alloc_inline.hpp"
#include "api/init.hpp"
#include "backend/huge.hpp"
#include "backend/purger.hpp"
#include "config/options.hpp"
#include "frontend/block.hpp"
#include "frontend/heap_registry.hpp"
#include "os/fatal.hpp"
#include "os/keep_errno.hpp"
#include "os/units.hpp"
#include "stats/heap_check.hpp"
#include "stats/peak.hpp"

namespace mallard::api {

constinit config::Relaxed<std::size_t> g_small_limit{kSmallMax};
constinit config::Relaxed<std::size_t> g_direct_limit{kDirectMax};

void refresh_small_limit() noexcept {
  long threshold = config::options().mmap_threshold;
  // With direct mmap off (mmap_max 0) the threshold routes nothing: as glibc, small requests
  // stay small (a zero threshold must not give every malloc(16) a page of its own).
  if (config::options().mmap_max == 0) threshold = static_cast<long>(kSmallMax) + 1;
  std::size_t limit = threshold <= 0 ? 0
                      : static_cast<std::size_t>(threshold) > kSmallMax
                          ? kSmallMax
                          : static_cast<std::size_t>(threshold) - 1;
  g_small_limit = limit;
  g_direct_limit = limit < kDirectMax ? limit : kDirectMax;
}

namespace {

std::atomic<unsigned long> g_slow_calls{0};

// Option check=N: the heap checker runs on every Nth slow-path call.
void maybe_check_heap() {
  long every = config::options().check;
  if (every > 0 &&
      g_slow_calls.fetch_add(1, std::memory_order_relaxed) % static_cast<unsigned long>(every) == 0)
    stats::check_heap();
}

// The calling thread's heap, attached on its first allocation. A thread whose heap was torn down
// at its exit (g_exited_heap: a later pthread key destructor is allocating) gets none: a heap
// attached now would outlive the thread.
ThreadHeap* current_heap() {
  ensure_initialized();
  ThreadHeap* h = tl_heap;
  if (h->is_sentinel() && h != &g_exited_heap) h = heap_registry::attach_current_thread();
  return h;
}

}  // namespace

void* malloc_small_slow(unsigned size_class) noexcept {
  int saved_errno = errno;
  ThreadHeap* h = current_heap();
  maybe_check_heap();
  void* p = h == nullptr          ? nullptr
            : h == &g_exited_heap ? heap_registry::late_malloc_small(size_class)
                                  : h->malloc_refill(size_class);
  purger::maybe_start();            // opt-in; here no allocator lock is held, and never from free
  stats::watch_peak();              // likewise
  heap_registry::age_warm_heaps();  // likewise (it takes the registry and heap locks)
  errno = p == nullptr ? ENOMEM : saved_errno;
  return p;
}

void* malloc_big(std::size_t n, std::size_t alignment, bool zero) noexcept {
  // What no path can hold is refused here, before any arithmetic on it (os/units.hpp).
  if (n > kMaxRequest || alignment > kMaxAlignment) {
    errno = ENOMEM;
    return nullptr;
  }
  int saved_errno = errno;
  current_heap();
  maybe_check_heap();
  void* p = nullptr;
  if (huge::wants(n)) p = huge::allocate(n, alignment < 16 ? 16 : alignment);
  if (p == nullptr) p = alloc_large(n, alignment, zero);
  purger::maybe_start();  // opt-in; here no allocator lock is held, and never from free
  stats::watch_peak();    // likewise
  heap_registry::age_warm_heaps();
  errno = p == nullptr ? ENOMEM : saved_errno;
  return p;
}

void* malloc_generic(std::size_t n) noexcept {
  if (n <= g_small_limit) {
    unsigned c = size_class_of(n);
    void* p = tl_heap->try_pop(c);
    return p != nullptr ? p : malloc_small_slow(c);
  }
  return malloc_big(n, 0, false);
}

namespace {

[[gnu::always_inline]] inline void free_in_page(Span* page, void* p, const char* call) noexcept {
  auto* b = static_cast<FreeBlock*>(p);
  std::uintptr_t mark = free_marker(b);
  if (page->kind == kSpanSmall && is_carved_block_start(page, p) && b->marker != mark) {
    free_small_block(page, b, mark);  // keeps errno itself, only on its branches that may purge
    return;
  }
  free_slow_path(p, call);  // large blocks; bad pointers are resolved and reported there
}

}  // namespace

void free_in_page_slow(Span* page, void* p, const char* call) noexcept {
  free_in_page(page, p, call);
}

void free_in_chunk_slow(Span* chunk, void* p, const char* call) noexcept {
  Span* page = page_of_chunk(chunk, p);
  // The calling thread's own page that could not start at its chunk (the arena had no aligned
  // room), or a class above 8 KiB whose page spans several chunks.
  if (page != chunk && try_free_local(page, p, [](const Span*) { return true; })) return;
  free_in_page(page, p, call);
}

void free_sized_slow(void* p, std::size_t n, std::size_t alignment, const char* call) noexcept {
  if (p == nullptr) return;
  os::KeepErrno keep;
  DeleteClaim claim{n, alignment};
  free_slow(p, call, &claim);  // reports a pointer that is no live block, or not this one
  maybe_check_heap();
}

void free_sized_in_chunk_slow(Span* chunk, void* p, std::size_t n, const char* call) noexcept {
  auto fits = [n](const Span* s) { return page_fits_size(s, n); };
  Span* page = page_of_chunk(chunk, p);
  if (page != chunk && try_free_local(page, p, fits)) return;  // not at its chunk's start
  if (page->kind == kSpanSmall && fits(page)) {  // another thread's page, or a full one
    free_in_page_slow(page, p, call);
    return;
  }
  free_sized_slow(p, n, 0, call);
}

void page_emptied_slow(ThreadHeap* heap, Span* page) noexcept {
  os::KeepErrno keep;  // the page goes back to the arena, which may purge (madvise)
  heap->page_emptied(page);
}

void free_slow_path(void* p, const char* call) noexcept {
  if (p == nullptr) return;
  os::KeepErrno keep;
  free_slow(p, call);
  maybe_check_heap();
}

void* aligned_slow(std::size_t alignment, std::size_t n) noexcept {
  if (n <= g_small_limit && alignment <= os::kPageSize) {
    unsigned c = aligned_size_class(n, alignment);
    if (c < kClassCount) {
      void* p = tl_heap->try_pop(c);
      return p != nullptr ? p : malloc_small_slow(c);
    }
  }
  return malloc_big(n == 0 ? 1 : n, alignment, false);
}

}  // namespace mallard::api
