// free_list.hpp: the encoding of small free blocks and the checks that guard them. A free block
// holds two words (FreeBlock): its list link, encoded with a secret key and its own address (as
// glibc's safe-linking and mimalloc's secure mode), and its free marker, its address under a
// second key. A free whose block already carries the marker is a double free; a block a free list
// hands out must lie in the carved part of its page and carry the marker, so an overwritten link
// aborts with a message instead of handing out an address chosen by whoever overwrote it. The
// keys are random per process (set once at initialisation, before any block is freed). Pure
// inline arithmetic: never allocates, never locks.
#pragma once

#include <cstdint>

#include "backend/span.hpp"
#include "os/visibility.hpp"

namespace mallard {

struct alignas(16) FreeListKeys {
  std::uintptr_t marker;
  std::uintptr_t link;
};
// Both keys on one line: the fast paths load them together.
extern FreeListKeys g_free_keys MALLARD_HIDDEN;

// The marker a free block at b carries.
[[gnu::always_inline]] inline std::uintptr_t free_marker(const void* b) {
  return reinterpret_cast<std::uintptr_t>(b) ^ g_free_keys.marker;
}

// The link key of the block at b: its address times the second key (odd), so that link ^ marker
// does not cancel the address out as an exclusive-or key would.
[[gnu::always_inline]] inline std::uintptr_t link_key(const void* b) {
  return reinterpret_cast<std::uintptr_t>(b) * g_free_keys.link;
}

[[gnu::always_inline]] inline FreeBlock* decode_link(const FreeBlock* b) {
  return reinterpret_cast<FreeBlock*>(b->link ^ link_key(b));
}

// Writes both words of a block that becomes free, linked before `next` (nullptr: end of list).
[[gnu::always_inline]] inline void make_free_block(FreeBlock* b, const FreeBlock* next,
                                                   std::uintptr_t marker) {
  b->link = reinterpret_cast<std::uintptr_t>(next) ^ link_key(b);
  b->marker = marker;
}

// Sets the link of a block already free (splicing lists).
[[gnu::always_inline]] inline void relink(FreeBlock* b, const FreeBlock* next) {
  b->link = reinterpret_cast<std::uintptr_t>(next) ^ link_key(b);
}

// Whether offset `off` from a small page's start is the start of a block that was ever handed out
// (carved): a multiple of the block size (Lemire's divisibility test: exact for off < 2^32, and a
// page's carved bytes are far below that) below the carved end. For any thread: `carved` is read
// atomically, as the owner may be extending the page.
[[gnu::always_inline]] inline bool is_block_start_below(const Span* page, std::uint64_t off,
                                                        std::uint64_t carved) {
  return off < carved && off * page->div_magic < page->div_magic;
}

[[gnu::always_inline]] inline std::uint64_t offset_in(const Span* page, const void* p) {
  return static_cast<std::uint64_t>(static_cast<const char*>(p) - page->start);
}

[[gnu::always_inline]] inline bool is_carved_block_start(const Span* page, std::uint64_t off) {
  return is_block_start_below(page, off, __atomic_load_n(&page->carved, __ATOMIC_RELAXED));
}

[[gnu::always_inline]] inline bool is_carved_block_start(const Span* page, const void* p) {
  return is_carved_block_start(page, offset_in(page, p));
}

// The same, for the page's owner only (the one thread that writes `carved`): a plain read.
[[gnu::always_inline]] inline bool is_carved_block_start_by_owner(const Span* page, const void* p) {
  return is_block_start_below(page, offset_in(page, p), page->carved);
}

// Whether b, taken from one of page's free lists by its owner, is a free block of the page:
// inside the carved part and carrying its free marker. Anything else means the list was
// overwritten (the caller reports it). Blocks on a list are block starts by construction, so the
// range is all that is checked of the address.
[[gnu::always_inline]] inline bool is_listed_free_block(const Span* page, const FreeBlock* b) {
  return offset_in(page, b) < page->carved && b->marker == free_marker(b);
}

}  // namespace mallard
