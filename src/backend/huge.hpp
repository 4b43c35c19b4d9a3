// huge.hpp: huge blocks, served by a direct mmap each (the seed's "requests >= 128 KiB go to
// mmap") and unmapped on free. Owns the dynamic mmap threshold (raised, as glibc's, when a huge
// block is freed, up to 32 MiB), the M_MMAP_MAX count and mremap-based realloc. Each block's
// mapping starts with a Segment header so the segment map can find it.
#pragma once

#include <atomic>
#include <cstddef>

#include "backend/segment.hpp"

namespace mallard::huge {

inline constexpr std::size_t kDynamicThresholdMax = 32u << 20;

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
void release(Segment* seg);
// Resizes in place or by moving the mapping (never copies). nullptr if impossible.
void* reallocate(Segment* seg, std::size_t n);
inline std::size_t usable_size(Segment* seg) {
  return seg->huge_usable;
}

HugeStats stats();

}  // namespace mallard::huge
