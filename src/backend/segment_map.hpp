// segment_map.hpp: the segment map, a two-level radix table from every 4 MiB granule of the
// address space to the segment that covers it. It answers "is this pointer Mallard's, and whose
// header describes it?" in two loads, without touching the pointer's memory. Leaves are mapped
// from the OS on first use and never freed. Lock-free reads; writes happen when segments come and
// go (under their arena's lock or the huge path).
//
// Beside it, the fast map that free uses first: one byte per granule of the 47-bit address space
// (32 MiB of address space, reserved read-only so that it costs neither memory nor overcommit
// charge; the pages under registered segments are made writable). Under a normal segment the
// byte is 1 + the granule's index in its segment (1 where the segment starts; arena growth makes
// segments of many granules, docs/design.md "Growth"); 0 elsewhere (huge blocks, granules beyond
// the first kFastGranules of a bigger segment, memory that is not Mallard's): ask the two-level
// map. One load tells a pointer of a normal segment from any other and, with no other load,
// finds its page entry. If the reservation fails (ulimit -v), the fast map stays empty and every
// free takes the two-level map; so it does under an address-space limit (`ulimit -v`) below
// 2 GiB, where 32 MiB of it could be what the program needs.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "backend/segment.hpp"
#include "os/visibility.hpp"

namespace mallard::segment_map {

inline constexpr unsigned kLeafBits = 13;  // 8192 granules (32 GiB) per leaf
inline constexpr unsigned kTopBits = 47 - kSegmentShift - kLeafBits;

struct Leaf {
  std::atomic<Segment*> entries[std::size_t{1} << kLeafBits];
};

extern std::atomic<Leaf*> g_top[std::size_t{1} << kTopBits] MALLARD_HIDDEN;

inline constexpr std::uintptr_t kGranules = std::uintptr_t{1} << (47 - kSegmentShift);
// Granules of one normal segment the fast map describes (the byte holds 1 + the index).
inline constexpr std::uintptr_t kFastGranules = 255;
// Granules the fast map covers: 0 until it is reserved (or if that failed), then kGranules.
extern std::atomic<std::uintptr_t> g_fast_limit MALLARD_HIDDEN;
extern std::atomic<std::uint8_t>* g_fast_bytes
    MALLARD_HIDDEN;  // written once, before g_fast_limit is set

inline Segment* lookup(const void* p) {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  if ((a >> 47) != 0) return nullptr;
  Leaf* leaf = g_top[a >> (kSegmentShift + kLeafBits)].load(std::memory_order_acquire);
  if (leaf == nullptr) return nullptr;
  return leaf->entries[(a >> kSegmentShift) & ((1u << kLeafBits) - 1)].load(
      std::memory_order_acquire);
}

// When p lies in the first kFastGranules granules of a normal segment: the first entry of the
// small page that holds p, or for any other span p's own page entry (Span::page_of_entry), whose
// owner_tag is 0 and kind not small. nullptr for any other pointer (nullptr too). An entry may
// hold a stale page (a small page's later entry, after the page went and the span is large or
// free): that page does not cover p, which callers find by its carved range before anything else.
namespace detail {
// The entry of the first page of p's unit (a 4 KiB page for kUnitShift 12, a 64 KiB chunk for
// 16) in its granule, from p and the fast map alone; nullptr when p is not under the fast map.
template <unsigned kUnitShift>
[[gnu::always_inline]] inline Span* fast_entry(const void* p) {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uintptr_t g = a >> kSegmentShift;
  if (g >= g_fast_limit.load(std::memory_order_acquire)) return nullptr;
  std::uintptr_t b = g_fast_bytes[g].load(std::memory_order_acquire);
  if (b == 0) return nullptr;
  static_assert(kUnitShift >= kPageShift && kUnitShift < kSegmentShift);
  // The entry of p's page as if its granule started the segment, then moved to where it is: k =
  // b - 1 granules lower for the header, k * 1024 entries higher for the pages before the granule.
  constexpr std::uintptr_t kPerGranule =
      kSegmentSize - (kSegmentSize >> kPageShift) * sizeof(Span);  // 4 MiB - 136 KiB
  std::intptr_t back = static_cast<std::intptr_t>(b);              // becomes -b * kPerGranule
#if defined(__x86_64__)
  // One multiply by an immediate, where the compiler would spend four shifts and subtractions
  // (negative, so that the sum below is one lea).
  asm("imulq %1, %0, %0" : "+r"(back) : "i"(-static_cast<std::intptr_t>(kPerGranule)));
#else
  back *= -static_cast<std::intptr_t>(kPerGranule);
#endif
  // The unit's index times its entries' bytes: one multiply by an immediate (Span is 136 bytes,
  // span.hpp), below kSegmentSize, so that it can be or-ed into the granule's base.
  constexpr std::uintptr_t kUnits = kSegmentSize >> kUnitShift;
  constexpr std::uintptr_t kUnitEntryBytes = sizeof(Span) << (kUnitShift - kPageShift);
  static_assert(kUnits * kUnitEntryBytes <= kSegmentSize);
  std::uintptr_t entry_offset = (a >> kUnitShift) & (kUnits - 1);
#if defined(__x86_64__)
  asm("imulq %1, %0, %0" : "+r"(entry_offset) : "i"(kUnitEntryBytes));  // GCC: 2 shifts, 1 add
#else
  entry_offset *= kUnitEntryBytes;
#endif
  auto* entry = reinterpret_cast<Span*>(((a & ~(kSegmentSize - 1)) | entry_offset) +
                                        (kSegmentHeaderSize + kPerGranule) +
                                        static_cast<std::uintptr_t>(back));
#if defined(__x86_64__)
  // One register for the entry: left alone, GCC keeps the sum split in two and spends a move on
  // each field read through the other half.
  asm("" : "+r"(entry));
#endif
  if (entry == nullptr) __builtin_unreachable();  // callers' null test is for the cases above
  return entry;
}
}  // namespace detail

[[gnu::always_inline]] inline Span* fast_page_of(const void* p) {
  Span* entry = detail::fast_entry<kPageShift>(p);
  return entry == nullptr ? nullptr : entry->page_of_entry();
}

// Small pages, whole chunks each, start on a chunk boundary when the arena can place them there
// (Arena::alloc_span_locked: kChunkPages, 64 KiB, the smallest small page), so that a block's page
// is usually the span whose first entry is the entry of its chunk's first page: free reads that
// entry, found from p and the fast map byte alone, and skips the page entry of p's own 4 KiB
// page (a cache line per 4 KiB of heap, cold in a heap bigger than the cache; its to_first is
// the load fast_page_of adds).
inline constexpr unsigned kChunkShift = kPageShift + 4;
inline constexpr std::size_t kChunkPages = std::size_t{1} << (kChunkShift - kPageShift);  // 16
inline constexpr std::size_t kChunkSize = std::size_t{1} << kChunkShift;

// The entry of the first page of p's 64 KiB chunk, when p lies in the first kFastGranules
// granules of a normal segment (nullptr otherwise). It describes the small page that holds p
// when it is a live small page's first entry (an owner_tag: no other entry carries one): a small
// page is never shorter than a chunk, so one that starts at the chunk covers p. Any other content
// (the interior of a span, a stale entry, metadata) says nothing about p: ask fast_page_of.
[[gnu::always_inline]] inline Span* fast_chunk_of(const void* p) {
  return detail::fast_entry<kChunkShift>(p);
}

// Registers the normal segment at seg (its first kFastGranules granules) in the fast map: call once
// its header and page entries are written. Does nothing if the fast map's pages cannot be made
// writable (the two-level map still answers).
void insert_fast(const Segment* seg);

// Points every granule of [start, start+size) at seg. Returns false if a leaf could not be mapped
// or the range leaves the 47-bit address space the map covers (then nothing is registered).
bool insert(std::uintptr_t start, std::size_t size, Segment* seg);
// Makes the leaves that [start, start+size) needs, so that a later insert of that range cannot
// fail. Returns false if a leaf could not be mapped.
bool prepare(std::uintptr_t start, std::size_t size);
// Clears the granules of [start, start+size), in the fast map first.
void remove(std::uintptr_t start, std::size_t size);
// Bytes of leaves mapped (metadata statistics).
std::size_t mapped_bytes();

}  // namespace mallard::segment_map

namespace mallard {
inline Segment* segment_of_entry(const Span* s) {
  return segment_map::lookup(s);
}
}  // namespace mallard
