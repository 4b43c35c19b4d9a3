// size_class.hpp: SizeClass, the table of small block sizes. 16-byte steps to 128 B, then four
// classes per doubling up to kSmallMax, and one more at 9/8 of each power of two from 512 B to
// 8 KiB, where requests just above a power of two are common (a 4 KiB page plus its header, 1 KiB
// plus a size word). Internal waste is at most 25%, 12.5% for requests up to 9/8 of a power of
// two. Every class is a multiple of 16, so every block is 16-aligned; the power-of-two classes also
// serve aligned requests. Pure functions and constants: no state, no allocation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "os/os.hpp"
#include "os/units.hpp"

namespace mallard {

inline constexpr std::size_t kSmallMax = 64 * 1024;  // largest small block
inline constexpr unsigned kClassCount = 49;          // at most MALLARD_MAX_SIZE_CLASSES (mallard.h)

namespace size_class_detail {

// 16-byte steps to 128 B; then four classes per doubling, (2^k, 2^(k+1)] in quarters; and for
// 2^k from 512 B to 8 KiB one class more at 9/8 of 2^k (576, 1152, 2304, 4608, 9216), for the
// requests just above a power of two that a header on a power-of-two buffer makes (review of
// 763ec75: eight classes per doubling there had the same effect on those, but multi-threaded
// programs with few blocks per class paid up to 20% more RSS for the extra partly used pages).
constexpr std::array<std::uint32_t, kClassCount> make_class_sizes() {
  std::array<std::uint32_t, kClassCount> t{};
  unsigned c = 0;
  for (std::uint32_t size = 16; size <= 128; size += 16) t[c++] = size;
  for (unsigned k = 7; k < 16; ++k) {
    const std::uint32_t base = std::uint32_t{1} << k;
    if (k >= 9 && k <= 13) t[c++] = base + base / 8;
    for (std::uint32_t q = 1; q <= 4; ++q) t[c++] = base + q * (base / 4);
  }
  return t;
}

inline constexpr std::array<std::uint32_t, kClassCount> kClassSizes = make_class_sizes();
inline constexpr unsigned kFirstAbove16K = kClassCount - 8;  // 20 KiB: four per doubling from here

constexpr std::size_t block_size_of(unsigned c) {
  return kClassSizes[c];
}

constexpr unsigned class_of_slow(std::size_t n) {
  for (unsigned c = 0; c < kClassCount; ++c)
    if (block_size_of(c) >= n) return c;
  return kClassCount;
}

// The class of every multiple of kStep up to (kEntries - 1) * kStep: the lookup tables below.
template <std::size_t kEntries, std::size_t kStep>
constexpr std::array<std::uint8_t, kEntries> make_step_table() {
  std::array<std::uint8_t, kEntries> t{};
  for (std::size_t i = 0; i < kEntries; ++i)
    t[i] = static_cast<std::uint8_t>(class_of_slow(i * kStep));
  return t;
}

inline constexpr std::array<std::uint8_t, 65> kSmallTable = make_step_table<65, 16>();

// The classes of (1 KiB, 16 KiB] by 128-byte steps: every class boundary there is a multiple of
// 128, so one load gives the class, as kSmallTable does below.
inline constexpr std::array<std::uint8_t, 129> kMidTable = make_step_table<129, 128>();

}  // namespace size_class_detail

// Class index for a request of n <= kSmallMax bytes (n == 0 gets the 16-byte class).
inline unsigned size_class_of(std::size_t n) {
  if (n <= 1024) return size_class_detail::kSmallTable[(n + 15) >> 4];
  if (n <= 16 * 1024) return size_class_detail::kMidTable[(n + 127) >> 7];
  std::size_t m = n - 1;
  unsigned k = 63u - static_cast<unsigned>(__builtin_clzll(m));  // 2^k <= m < 2^(k+1)
  unsigned sub = static_cast<unsigned>(m >> (k - 2)) & 3u;
  return size_class_detail::kFirstAbove16K + 4 * (k - 14) + sub;
}

inline constexpr std::size_t class_block_size(unsigned c) {
  return size_class_detail::block_size_of(c);
}

// The class that serves n bytes aligned to `alignment` (a power of two, at most 4 KiB; n at most
// kSmallMax): the smallest class holding max(n, alignment) whose block size is a multiple of the
// alignment, or kClassCount when there is none.
inline unsigned aligned_size_class(std::size_t n, std::size_t alignment) {
  unsigned c = size_class_of(n < alignment ? alignment : n);
  while (c < kClassCount && class_block_size(c) % alignment != 0) ++c;
  return c;
}

// 4 KiB pages in one page (run) of class c: 64 KiB, or enough for 8 blocks of the larger classes
// rounded up to a multiple of 64 KiB (more blocks: 12 of 10 KiB in 128 KiB), so that every page
// is whole 64 KiB chunks. The arena starts pages on chunk boundaries (free's lookup,
// segment_map::fast_chunk_of); a page that ended between two would leave the next one a hole of
// up to 48 KiB no span can use (review of stop 19: 10 KiB and 8 KiB blocks together got 71% of a
// 256 MiB address-space limit, 95% before the chunks). The rest of the last chunk, less than a
// block, is never touched.
inline constexpr std::size_t kClassPageUnit = 64 * 1024;
inline constexpr Pages class_page_count(unsigned c) {
  std::size_t bytes = 8 * class_block_size(c);
  bytes = (bytes + kClassPageUnit - 1) / kClassPageUnit * kClassPageUnit;
  return Pages::covering(bytes);
}

static_assert(class_block_size(kClassCount - 1) == kSmallMax);
static_assert(class_block_size(7) == 128 && class_block_size(8) == 160);
static_assert(class_block_size(size_class_detail::kFirstAbove16K - 1) == 16 * 1024 &&
              class_block_size(size_class_detail::kFirstAbove16K) == 20 * 1024);

}  // namespace mallard
