// block.hpp: operations on one block whatever its kind (small, large, huge): resolving and
// validating a pointer (foreign, interior and double-free pointers are reported and abort), the
// slow path of free, and the allocation of large blocks (page spans from the thread's arena).
// The same-thread fast paths are in the API layer's inline code; these are the rest.
#pragma once

#include <cstddef>

#include "backend/segment.hpp"
#include "backend/span.hpp"

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
// Frees p (not nullptr) on any path: remote frees, full pages, large and huge blocks.
[[gnu::noinline]] void free_slow(void* p, const char* call);
// Frees a checked small block of `page` when the caller is not its owner (one atomic push), or
// when the page sits on the owner's full list.
void free_small_block(Span* page, FreeBlock* b, std::uintptr_t mark);
// A large block of n bytes (page span) aligned to `alignment`; nullptr when out of memory.
void* alloc_large(std::size_t n, std::size_t alignment, bool zero);
// In-place resize of a large block: true if the span now holds n bytes.
bool resize_large_in_place(const BlockRef& block, std::size_t n);

}  // namespace mallard
