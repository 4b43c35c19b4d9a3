// alloc_api.cpp: the C allocation API (malloc, free, calloc, realloc, reallocarray, the aligned
// family, malloc_usable_size), defined under the mallard_ prefix and exported under the standard
// names as aliases. Holds the same-thread fast paths (inline: a class lookup, a pop or a push)
// and the argument checks (sizes, alignments, overflow) with glibc's documented answers.
// Never includes <stdlib.h>: the standard names are declared here, as aliases.
#include <errno.h>
#include <string.h>

#include <cstddef>
#include <cstdint>

#include "api/alloc_inline.hpp"
#include "backend/huge.hpp"
#include "frontend/block.hpp"
#include "os/units.hpp"
#include "stats/peak.hpp"

using namespace mallard;

#define MALLARD_API extern "C" __attribute__((visibility("default")))

namespace {

// Requests above kMaxRequest (os/units.hpp: 64 TiB) fail with ENOMEM before any rounding.

bool is_power_of_two(std::size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

// realloc of a block that cannot simply stay where it is: resized in place (large, huge), else
// moved. Returns the block, or nullptr with errno ENOMEM (p is then untouched).
void* realloc_resize_or_move(void* p, std::size_t n, const BlockRef& block) {
  switch (block.kind) {
    case BlockKind::kSmall:
      break;
    case BlockKind::kLarge:
      if (n > kSmallMax && !huge::wants(n) && resize_large_in_place(block, n)) {
        stats::watch_peak();  // a slow path: the heap may have grown
        return p;
      }
      break;
    case BlockKind::kHuge:
      if (n > kSmallMax && huge::wants(n)) {
        void* q = huge::reallocate(block.segment, n);
        if (q != nullptr) {
          stats::watch_peak();
          return q;
        }
      }
      break;
  }
  void* q = api::malloc_inline(n);
  if (q == nullptr) return nullptr;  // errno is ENOMEM
  memcpy(q, p, n < block.usable ? n : block.usable);
  api::free_inline(p, "realloc");
  return q;
}

}  // namespace

MALLARD_API void* mallard_malloc(std::size_t n) noexcept {
  return api::malloc_inline(n);
}

MALLARD_API void mallard_free(void* p) noexcept {
  api::free_inline(p, "free");
}

MALLARD_API void* mallard_calloc(std::size_t count, std::size_t size) noexcept {
  std::size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (n <= api::g_small_limit) {
    void* p = api::malloc_inline(n);
    if (p != nullptr) memset(p, 0, n);
    return p;
  }
  return api::malloc_big(n, 0, true);
}

MALLARD_API void* mallard_realloc(void* p, std::size_t n) noexcept {
  if (p == nullptr) return api::malloc_inline(n);
  if (n == 0) {  // glibc: realloc(p, 0) frees p and returns NULL
    api::free_inline(p, "realloc");
    return nullptr;
  }
  BlockRef block = resolve_block(p, "realloc");
  if (n > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  // A small block stays in place while it is not more than twice too big (no system call).
  if (block.kind == BlockKind::kSmall && n <= block.usable &&
      (n > block.usable / 2 || block.usable <= 64))
    return p;
  // errno changes only when realloc fails: an mremap refused in place before a move succeeds, a
  // purge of a shrunk block's tail refused, must not show (as glibc's realloc in practice, whose
  // MREMAP_MAYMOVE call does not fail on the way to a success).
  int saved_errno = errno;
  void* q = realloc_resize_or_move(p, n, block);
  if (q != nullptr) errno = saved_errno;
  return q;
}

MALLARD_API void* mallard_reallocarray(void* p, std::size_t count, std::size_t size) noexcept {
  std::size_t n;
  if (__builtin_mul_overflow(count, size, &n)) {
    errno = ENOMEM;
    return nullptr;
  }
  return mallard_realloc(p, n);
}

MALLARD_API void* mallard_memalign(std::size_t alignment, std::size_t n) noexcept {
  if (alignment > SIZE_MAX / 2 + 1) {  // glibc's bound: 2^63 itself fails later, with ENOMEM
    errno = EINVAL;
    return nullptr;
  }
  if (!is_power_of_two(alignment)) {  // glibc rounds a bad alignment up to a power of two
    std::size_t a = 1;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  return api::aligned_inline(alignment, n);
}

MALLARD_API void* mallard_aligned_alloc(std::size_t alignment, std::size_t n) noexcept {
  if (!is_power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return api::aligned_inline(alignment, n);
}

// As glibc's posix_memalign (checked against glibc 2.36): returns EINVAL for an alignment that is
// not a power of two multiple of sizeof(void*), errno untouched; returns ENOMEM when the memory
// cannot be had, and then errno is ENOMEM too (POSIX leaves errno alone here; glibc sets it, and
// programs written against glibc may read it). *memptr is written only on success.
MALLARD_API int mallard_posix_memalign(void** memptr, std::size_t alignment,
                                       std::size_t n) noexcept {
  if (!is_power_of_two(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  void* p = api::aligned_inline(alignment, n);
  if (p == nullptr) return ENOMEM;  // errno is ENOMEM; *memptr is left as it was
  *memptr = p;
  return 0;
}

MALLARD_API void* mallard_valloc(std::size_t n) noexcept {
  return api::aligned_inline(os::page_size(), n);  // glibc: the kernel's page
}

MALLARD_API void* mallard_pvalloc(std::size_t n) noexcept {
  if (n > kMaxRequest) {
    errno = ENOMEM;
    return nullptr;
  }
  const std::size_t page = os::page_size();  // glibc: the kernel's page
  std::size_t rounded = os::page_ceil(n);
  return api::aligned_inline(page, rounded == 0 ? page : rounded);
}

MALLARD_API std::size_t mallard_malloc_usable_size(void* p) noexcept {
  if (p == nullptr) return 0;
  return resolve_block(p, "malloc_usable_size").usable;
}

// ---- the standard names --------------------------------------------------------------------
#define MALLARD_ALIAS(target) __attribute__((visibility("default"), alias(#target)))

#ifndef MALLARD_NO_STANDARD_NAMES  // sanitizer builds keep the standard names for the runtime
extern "C" {
void* malloc(std::size_t n) noexcept MALLARD_ALIAS(mallard_malloc);
void free(void* p) noexcept MALLARD_ALIAS(mallard_free);
void* calloc(std::size_t count, std::size_t size) noexcept MALLARD_ALIAS(mallard_calloc);
void* realloc(void* p, std::size_t n) noexcept MALLARD_ALIAS(mallard_realloc);
void* reallocarray(void* p, std::size_t count, std::size_t size) noexcept
    MALLARD_ALIAS(mallard_reallocarray);
void* memalign(std::size_t alignment, std::size_t n) noexcept MALLARD_ALIAS(mallard_memalign);
void* aligned_alloc(std::size_t alignment, std::size_t n) noexcept
    MALLARD_ALIAS(mallard_aligned_alloc);
int posix_memalign(void** memptr, std::size_t alignment, std::size_t n) noexcept
    MALLARD_ALIAS(mallard_posix_memalign);
void* valloc(std::size_t n) noexcept MALLARD_ALIAS(mallard_valloc);
void* pvalloc(std::size_t n) noexcept MALLARD_ALIAS(mallard_pvalloc);
std::size_t malloc_usable_size(void* p) noexcept MALLARD_ALIAS(mallard_malloc_usable_size);
// glibc's internal names, which some programs and libraries call directly.
void* __libc_malloc(std::size_t n) noexcept MALLARD_ALIAS(mallard_malloc);
void __libc_free(void* p) noexcept MALLARD_ALIAS(mallard_free);
void* __libc_calloc(std::size_t count, std::size_t size) noexcept MALLARD_ALIAS(mallard_calloc);
void* __libc_realloc(void* p, std::size_t n) noexcept MALLARD_ALIAS(mallard_realloc);
void* __libc_memalign(std::size_t alignment, std::size_t n) noexcept
    MALLARD_ALIAS(mallard_memalign);
void* __libc_valloc(std::size_t n) noexcept MALLARD_ALIAS(mallard_valloc);
void* __libc_pvalloc(std::size_t n) noexcept MALLARD_ALIAS(mallard_pvalloc);
int __posix_memalign(void** memptr, std::size_t alignment, std::size_t n) noexcept
    MALLARD_ALIAS(mallard_posix_memalign);
void cfree(void* p) noexcept MALLARD_ALIAS(mallard_free);
}
#endif
