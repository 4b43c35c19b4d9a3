// span.hpp: Span, the metadata of a run of 4 KiB pages inside a segment, and FreeBlock, the link
// stored in a free small block. A Span is either a small page (blocks of one size class, owned by
// a thread heap), a large block, or free (dirty or purged) in its arena's span heap. The entries
// live in the segment header, apart from the data, so a heap overflow cannot reach them.
// Plain data: the logic that changes spans lives in the arena (backend) and thread heap (frontend).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "os/units.hpp"

namespace mallard {

class ThreadHeap;

enum SpanKind : std::uint8_t {
  kSpanNone = 0,      // not the first page of anything (interior of a large span, metadata)
  kSpanSmall = 1,     // first page of a small page; interior entries are kSpanSmallPart
  kSpanLarge = 2,     // first page of a large block
  kSpanFree = 3,      // first page of a free span
  kSpanFreeTail = 4,  // last page of a free span of >= 2 pages (back = pages to the first)
  kSpanSmallPart = 5  // a later page of a small page (back = pages to the first)
};

enum SpanState : std::uint8_t { kDirty = 0, kPurged = 1 };  // free spans only

// Set in Span::owner_tag (beside the owner's address) while a small page sits on its heap's full
// list: the owner's free then fails the fast path's one compare and takes the slow path, which
// moves the page back to the available queue.
inline constexpr std::uintptr_t kOwnerTagFull = 1;
// Set while a small page sits on its arena's abandoned list (its thread exited); changed only
// under the arena's lock.
inline constexpr std::uint8_t kSpanAbandoned = 2;
// Set while a small page sits on its arena's quarantine (a forked child's page of a thread that
// does not exist there): freed into, never allocated from; changed only under the arena's lock.
inline constexpr std::uint8_t kSpanQuarantined = 4;
// Set while an empty small page sits on its arena's parked list (Arena::park_or_free_locked);
// changed only under the arena's lock.
inline constexpr std::uint8_t kSpanParked = 8;

// The first two words of a free small block. Both are encoded with secret keys
// (frontend/free_list.hpp): `link` is the next block of its list, `marker` says "this block is
// free" (double-free detection, and the check of every block a free list hands out).
struct FreeBlock {
  std::uintptr_t link;
  std::uintptr_t marker;
};

// Entries are 136 bytes, not 128: the first entries of consecutive 64 KiB chunks, which every
// free reads, are then 34 cache lines apart (16 entries) and fall in 32 different sets of a 32 KiB
// 8-way L1 (64 sets). At 128 bytes they were 2 KiB apart and shared 2 sets: 16 lines for all the
// pages of a segment, so that a heap of more than 16 pages missed L1 on most frees (cachegrind,
// bench larson t1: 0.63 L1 read misses per free at that one load). A chunk's first entry still
// starts a cache line (16 * 136 = 34 * 64, and the entries start a line after the header), and so
// does every 8th entry; the first entry of a small page the arena could not place on a chunk
// boundary (rare) may not, and then shares its remote-free line with the previous fields.
struct Span {
  // ---- first cache line: everything the same-thread fast paths read or write ----
  char* start;  // first byte of the span
  // Small pages: the owning heap's address, | kOwnerTagFull while on its full list; 0 for every
  // other span and for a small page without owner (abandoned, quarantined, being retired). The
  // same-thread free's one compare: equal to the caller's heap means small, its own, not full.
  std::atomic<std::uintptr_t> owner_tag;
  FreeBlock* free;          // blocks ready to hand out (links encoded)
  std::uint64_t div_magic;  // ceil(2^64 / block_size): off % block_size == 0 iff off*magic < magic
  std::uint32_t used;       // blocks handed out and not yet collected back
  std::uint32_t block_size;
  std::uint8_t kind;   // SpanKind
  std::uint8_t flags;  // kSpanAbandoned, kSpanQuarantined, kSpanParked
  std::uint8_t size_class;
  std::uint8_t state;  // SpanState, free spans
  std::uint32_t page_count;
  // Bytes from this entry to the first entry of the small page it belongs to: -(i * 136) on the
  // page's i-th entry, 0 on every other entry, so that an entry never written (zero: the header's
  // pages, purged entry pages) or of any other span resolves to itself (owner_tag 0, kind not
  // small). What free resolves a pointer to in one load and one add (page_of_entry).
  std::int64_t to_first;
  std::uint64_t carved;  // small pages: bytes from start carved into blocks so far (bump
                         // allocation); every block ever handed out lies below it
  // ---- second cache line: what other threads write (remote frees) and slow-path state. Kept
  // off the first line, which the owner writes on every malloc and free, so that a remote free
  // does not take the owner's hot line away from it.
  std::atomic<std::uint64_t> thread_free;  // frees from other threads: (count << 48) | pointer
  std::uint32_t zeroed;                    // free spans: contents known to be zero
  std::uint32_t capacity;                  // small pages: blocks that fit in the page
  std::uint32_t back;  // kSpanSmallPart / kSpanFreeTail: entries back to the first entry
  // Small pages: the first 4 KiB pages that may be resident whatever `carved` says (all of
  // them when the span was taken from dirty memory; what earlier owners carved when it was
  // parked). What a parked page counts as resident (Arena::park_or_free_locked).
  std::uint32_t resident_pages;
  Span* next;  // heap queue, arena bin, abandoned or parked list
  Span* prev;
  Span* age_next;  // free dirty spans: the arena's age list, oldest first
  Span* age_prev;
  std::uint64_t freed_at_ms;  // free spans: dirty, when freed; purged, when purged (0: fresh from
                              // the OS, never used); parked small pages: when parked
  std::uint64_t unused_pad;   // to 136 bytes (see above)

  // The small page this entry belongs to (its first entry), or the entry itself (see to_first).
  Span* page_of_entry() {
    return reinterpret_cast<Span*>(reinterpret_cast<char*>(this) + to_first);
  }
  const Span* page_of_entry() const {
    return reinterpret_cast<const Span*>(reinterpret_cast<const char*>(this) + to_first);
  }
  // The owning heap of a small page (nullptr: none), and whether the page is on its full list.
  ThreadHeap* owner(std::memory_order order = std::memory_order_acquire) const {
    return reinterpret_cast<ThreadHeap*>(owner_tag.load(order) & ~kOwnerTagFull);
  }
  bool on_full_list() const {
    return (owner_tag.load(std::memory_order_relaxed) & kOwnerTagFull) != 0;
  }
  void set_owner(ThreadHeap* heap, bool full, std::memory_order order = std::memory_order_release) {
    owner_tag.store(reinterpret_cast<std::uintptr_t>(heap) | (full ? kOwnerTagFull : 0), order);
  }
  Pages pages() const { return Pages{page_count}; }
  void set_pages(Pages p) { page_count = p.narrow(); }
  std::size_t bytes() const { return pages().bytes(); }
  // Small pages: the bytes of the first resident_pages pages.
  std::size_t resident_bytes() const { return Pages{resident_pages}.bytes(); }
};

inline constexpr std::size_t kSpanEntryBytes = 136;
static_assert(sizeof(Span) == kSpanEntryBytes, "two cache lines and a word per page entry");
static_assert(offsetof(Span, thread_free) == 64,
              "remote frees write the second line only (of an entry that starts a line)");
static_assert(16 * kSpanEntryBytes % 64 == 0, "a 64 KiB chunk's first entry starts a cache line");

inline constexpr int kThreadFreeCountShift = 48;
inline constexpr std::uint64_t kThreadFreePointerMask = (std::uint64_t{1} << 48) - 1;

inline FreeBlock* thread_free_list(std::uint64_t word) {
  return reinterpret_cast<FreeBlock*>(word & kThreadFreePointerMask);
}
inline std::uint32_t thread_free_count(std::uint64_t word) {
  return static_cast<std::uint32_t>(word >> kThreadFreeCountShift);
}

}  // namespace mallard
