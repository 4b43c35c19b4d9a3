// segment.hpp: Segment, a 4 MiB-aligned region of memory (a multiple of 4 MiB) taken from the OS
// by an arena (normal segments: a header, the page entries, then pages of data) or by the huge
// path (one block of one direct mapping). The header sits at the segment's start; the segment map
// finds it from any address inside. Plain data plus address arithmetic; never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/span.hpp"
#include "os/os.hpp"
#include "os/units.hpp"

namespace mallard {

class Arena;

inline constexpr std::size_t kSegmentShift = 22;
inline constexpr std::size_t kSegmentSize = std::size_t{1} << kSegmentShift;  // 4 MiB
inline constexpr std::uint64_t kSegmentMagic = 0x4d616c6c61726453ull;         // "MallardS"
inline constexpr std::size_t kSegmentHeaderSize = 128;  // bytes before the page entries

enum class SegmentKind : std::uint8_t { kNormal = 1, kHuge = 2 };

struct Segment {
  std::uint64_t magic;
  SegmentKind kind;
  bool from_brk;
  std::uint32_t page_count;       // 4 KiB pages in the segment (normal segments)
  std::uint32_t first_data_page;  // pages before it hold this header and the page entries
  std::uint32_t free_pages;       // pages in free spans (normal segments)
  std::size_t size;               // bytes mapped
  Arena* arena;                   // owner (normal segments)
  Segment* next;                  // the arena's segment list
  Segment* prev;
  // Huge segments: the block and its usable size.
  char* huge_block;
  std::size_t huge_usable;
  std::size_t huge_alignment;
  std::uint64_t metadata_purged;  // normal segments: entry pages given back while all free
  // Normal segments: pages from the start that are read-write (committed, charged to the
  // kernel's overcommit accounting); the rest is a PROT_NONE reservation (Arena::commit_locked).
  std::uint32_t committed_pages;
  std::uint32_t reserved32_;
  std::uint64_t reserved_[1];

  Span* pages() {
    return reinterpret_cast<Span*>(reinterpret_cast<char*>(this) + kSegmentHeaderSize);
  }
  Span* entry_for(const void* p) {
    auto offset =
        static_cast<std::size_t>(static_cast<const char*>(p) - reinterpret_cast<char*>(this));
    return pages() + (offset >> 12);
  }
  std::uint32_t index_of(const Span* s) {
    MALLARD_CHECK(s >= pages() && s < pages() + page_count);
    return static_cast<std::uint32_t>(s - pages());
  }
  char* page_address(std::uint32_t index) {
    return reinterpret_cast<char*>(this) + (std::size_t{index} << 12);
  }
  std::uint32_t data_pages() const { return page_count - first_data_page; }
  Pages pages_total() const { return Pages{page_count}; }
  bool entirely_free() const { return free_pages == page_count - first_data_page; }
};

static_assert(sizeof(Segment) <= kSegmentHeaderSize);

// Pages a normal segment of `page_count` pages needs for its header and entries.
inline constexpr Pages segment_metadata_pages(Pages page_count) {
  return Pages::covering(kSegmentHeaderSize + page_count.count() * sizeof(Span));
}

// The segment that holds a page entry (defined in segment_map.hpp: an entry may lie beyond the
// first 4 MiB of a very large segment, so the map is asked).
inline Segment* segment_of_entry(const Span* s);

}  // namespace mallard
