// units.hpp: one type per quantity the allocator counts in pages. Pages is a count of OS pages
// (os::kPageSize bytes each) held at full width; the 32-bit page-count fields of page entries and
// segment headers are written only through Pages::narrow(), a checked conversion. What keeps the
// conversions safe in every build is the set of limits here: the API refuses requests above
// kMaxRequest, and an arena never makes a segment of more than kMaxSegmentPages pages, so a page
// count or page index inside a segment always fits in 32 bits. Plain arithmetic; never allocates.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>

#include "os/check.hpp"
#include "os/os.hpp"

namespace mallard {

inline constexpr unsigned kPageShift = 12;
static_assert(std::size_t{1} << kPageShift == os::kPageSize);

// The largest request (bytes) any path can hold: 2^46, 64 TiB, half of the 47-bit user address
// space that the segment map covers. Larger requests fail with ENOMEM at the API, before any
// arithmetic on them (rounding to pages, adding an alignment) could overflow.
inline constexpr std::size_t kMaxRequest = std::size_t{1} << 46;
// The largest alignment accepted by the aligned calls that does not fail with EINVAL/ENOMEM at
// once (same bound: an alignment is a span of address space too).
inline constexpr std::size_t kMaxAlignment = std::size_t{1} << 46;
// The largest normal segment an arena maps, in pages: 2^31 pages (8 TiB of 4 KiB pages). Page
// counts and page indexes inside a segment are stored in 32 bits.
inline constexpr std::size_t kMaxSegmentPages = std::size_t{1} << 31;

class Pages {
 public:
  constexpr Pages() = default;
  constexpr explicit Pages(std::size_t count) : count_(count) {}
  // The pages that hold `bytes` bytes (rounded up; no overflow for any size_t).
  static constexpr Pages covering(std::size_t bytes) {
    return Pages{(bytes >> kPageShift) + ((bytes & (os::kPageSize - 1)) != 0 ? 1 : 0)};
  }
  // The whole pages in `bytes` (rounded down).
  static constexpr Pages within(std::size_t bytes) { return Pages{bytes >> kPageShift}; }

  constexpr std::size_t count() const { return count_; }
  constexpr std::size_t bytes() const {
    MALLARD_CHECK(count_ <= (SIZE_MAX >> kPageShift));
    return count_ << kPageShift;
  }
  // For the 32-bit fields of page entries and segment headers: the caller keeps counts within a
  // segment (kMaxSegmentPages); the checked build proves it.
  constexpr std::uint32_t narrow() const {
    MALLARD_CHECK(count_ <= UINT32_MAX);
    return static_cast<std::uint32_t>(count_);
  }
  constexpr bool is_zero() const { return count_ == 0; }

  friend constexpr bool operator==(Pages a, Pages b) { return a.count_ == b.count_; }
  friend constexpr auto operator<=>(Pages a, Pages b) { return a.count_ <=> b.count_; }
  friend constexpr Pages operator+(Pages a, Pages b) {
    MALLARD_CHECK(a.count_ + b.count_ >= a.count_);
    return Pages{a.count_ + b.count_};
  }
  friend constexpr Pages operator-(Pages a, Pages b) {
    MALLARD_CHECK(a.count_ >= b.count_);
    return Pages{a.count_ - b.count_};
  }

 private:
  std::size_t count_ = 0;
};

}  // namespace mallard
