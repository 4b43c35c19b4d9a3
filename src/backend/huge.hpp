// huge.hpp: huge blocks, served by a direct mmap each (the seed's "requests >= 128 KiB go to
// mmap") and unmapped on free. Owns the dynamic mmap threshold (raised, as glibc's, when a huge
// block is freed, up to 32 MiB), the M_MMAP_MAX count and mremap-based realloc. Each block's
// mapping starts with a Segment header so the segment map can find it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "backend/segment.hpp"

namespace mallard::huge {

inline constexpr std::size_t kDynamicThresholdMax = 32u << 20;
// A huge block's header magic once a free has claimed the block (release): a racing second free
// that still found the segment sees it and reports a double free.
inline constexpr std::uint64_t kReleasedMagic = 0x4d616c6c61726446ull;  // "MallardF"

struct HugeStats {
  std::size_t live_bytes;    // usable bytes of live huge blocks
  std::size_t mapped_bytes;  // bytes mapped for them
  std::size_t live_count;
  std::size_t peak_count;
  std::size_t peak_mapped;
};

// Whether a request of n bytes goes to the huge path now.
bool wants(std::size_t n);
std::size_t threshold();

// A block of at least n usable bytes aligned to `alignment` (>= 16). nullptr if the OS refuses.
void* allocate(std::size_t n, std::size_t alignment);
// A free's window in which it may read the header of a huge block it found in the segment map:
// from before the lookup until it has claimed the block (release) or given up. release waits,
// after it cleared the block's map entries, until no such window that began before is open, so
// that a second free racing the first reads a claimed header, never an unmapped one. A counter
// in one of 64 slots (by the stack address: threads rarely share one), so that frees on
// different threads do not share a cache line. Never held while waiting for a lock.
class ReaderSection {
 public:
  ReaderSection();
  ~ReaderSection() { leave(); }
  ReaderSection(const ReaderSection&) = delete;
  ReaderSection& operator=(const ReaderSection&) = delete;
  void leave();

 private:
  std::atomic<std::uint32_t>* slot_;
};
// The fork child (one thread left): windows of the parent's other threads will never close.
void reset_readers_in_child();

// Claims the block (in `section`, which it then leaves) and unmaps it. False, and nothing done,
// if another free claimed it first (a double free).
bool release(Segment* seg, ReaderSection& section);
// Resizes in place or by moving the mapping (never copies). nullptr if impossible.
void* reallocate(Segment* seg, std::size_t n);
inline std::size_t usable_size(Segment* seg) {
  return seg->huge_usable;
}

HugeStats stats();

// ---- the record of released memory ----------------------------------------------------------
// The last kReleasedRecords ranges given back to the OS, in a static ring (no allocation; lock-
// free: a seqlock per record, so a reader never sees a torn one, and a record a writer was
// writing when the process forked is skipped in the child, as is a slot two writers race for).
// Best effort: a record may be overwritten or lost; a report then says less, never more.
inline constexpr unsigned kReleasedRecords = 128;
enum class ReleasedKind : std::uint8_t { kHugeBlock = 1, kSegment = 2 };
struct Released {
  ReleasedKind kind;
  std::uintptr_t start;  // the range given back: [start, end)
  std::uintptr_t end;
  std::uintptr_t first;  // huge block: the block's start; segment: its first data page
  bool unmapped;         // false while the release is under way (the memory is still Mallard's)
};
// Records [start, start + size) before it goes back (before its segment-map entries are cleared,
// so that a pointer the map no longer knows finds the record). Returns a ticket for
// note_unmapped (0: not recorded).
std::uint64_t note_releasing(ReleasedKind kind, std::uintptr_t start, std::size_t size,
                             std::uintptr_t first);
// The range of `ticket` is back with the OS (unmapped, or kept by the break for its owner).
void note_unmapped(std::uint64_t ticket);
// The newest record whose range holds p. False if none.
bool find_released(const void* p, Released* out);

}  // namespace mallard::huge
