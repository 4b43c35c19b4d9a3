// segment_map_test.cpp: the segment map (src/backend/segment_map.hpp): registration covers every
// granule of a segment, removal clears it, foreign and non-canonical addresses map to nothing.
#include "backend/segment_map.hpp"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "mallard/mallard.h"
#include "os/os.hpp"

namespace mallard {
namespace {

TEST(SegmentMap, ForeignAddressesAreNotOurs) {
  int on_stack = 0;
  static int in_data = 0;
  EXPECT_EQ(segment_map::lookup(&on_stack), nullptr);
  EXPECT_EQ(segment_map::lookup(&in_data), nullptr);
  EXPECT_EQ(segment_map::lookup(nullptr), nullptr);
  EXPECT_EQ(segment_map::lookup(reinterpret_cast<void*>(0xffff800000000000ull)), nullptr);
}

TEST(SegmentMap, InsertCoversEveryGranuleAndRemoveClearsThem) {
  std::size_t size = 3 * kSegmentSize;
  void* mem = os::map_aligned(size, kSegmentSize);
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ(reinterpret_cast<std::uintptr_t>(mem) % kSegmentSize, 0u);
  auto* seg = static_cast<Segment*>(mem);
  auto start = reinterpret_cast<std::uintptr_t>(mem);
  ASSERT_TRUE(segment_map::insert(start, size, seg));
  for (std::size_t off = 0; off < size; off += kSegmentSize / 2)
    EXPECT_EQ(segment_map::lookup(static_cast<char*>(mem) + off), seg) << off;
  EXPECT_EQ(segment_map::lookup(static_cast<char*>(mem) + size - 1), seg);
  EXPECT_NE(segment_map::lookup(static_cast<char*>(mem) + size), seg);
  segment_map::remove(start, size);
  EXPECT_EQ(segment_map::lookup(mem), nullptr);
  EXPECT_EQ(segment_map::lookup(static_cast<char*>(mem) + size - 1), nullptr);
  os::unmap(mem, size);
}

// Issue 9: a huge realloc to 64 TiB from a block near the top of the address space asked the map
// to register granules past 2^47, which indexed past the top table and overwrote arena 0.
TEST(SegmentMap, RangesBeyondTheAddressSpaceAreRefused) {
  auto* fake = reinterpret_cast<Segment*>(std::uintptr_t{0x1234000});
  const std::uintptr_t top = std::uintptr_t{1} << 47;
  EXPECT_FALSE(segment_map::prepare(top - kSegmentSize, 2 * kSegmentSize));
  EXPECT_FALSE(segment_map::insert(top - kSegmentSize, 2 * kSegmentSize, fake));
  EXPECT_FALSE(segment_map::insert(top - kSegmentSize, SIZE_MAX, fake));
  EXPECT_FALSE(segment_map::insert(top, kSegmentSize, fake));
  EXPECT_FALSE(segment_map::insert(kSegmentSize, 0, fake));
  EXPECT_TRUE(segment_map::prepare(top - kSegmentSize, kSegmentSize));
  EXPECT_EQ(segment_map::lookup(reinterpret_cast<void*>(top - 1)), nullptr);
}

TEST(SegmentMap, MapAlignedHonoursLargeAlignments) {
  for (std::size_t align : {kSegmentSize, 4 * kSegmentSize}) {
    void* p = os::map_aligned(kSegmentSize, align);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % align, 0u);
    os::unmap(p, kSegmentSize);
  }
}

// The entry free reads first (a 64 KiB chunk's first page entry, fast_chunk_of) starts a cache
// line, and the entries of different chunks fall in many sets of a 32 KiB 8-way L1 (64 sets of
// 64 B lines). With 128-byte entries they were 2 KiB apart and all fell in 2 sets (span.hpp).
TEST(SegmentMap, ChunkEntriesStartACacheLineAndSpreadOverL1Sets) {
  std::vector<void*> blocks;
  std::set<Span*> chunks;
  for (int i = 0; i < 64 * 48; ++i) {  // 48 pages of 1 KiB blocks, one chunk each
    void* p = mallard_malloc(1000);
    blocks.push_back(p);
    Span* e = segment_map::fast_chunk_of(p);
    ASSERT_NE(e, nullptr);
    chunks.insert(e);
  }
  ASSERT_GE(chunks.size(), 40u);
  std::set<std::uintptr_t> sets;
  for (Span* e : chunks) {
    auto a = reinterpret_cast<std::uintptr_t>(e);
    EXPECT_EQ(a % 64, 0u) << e;
    sets.insert((a >> 6) & 63);
  }
  EXPECT_GE(sets.size(), 16u);
  for (void* p : blocks) mallard_free(p);
}

}  // namespace
}  // namespace mallard
