// segment_map.hpp: the segment map, a two-level radix table from every 4 MiB granule of the
// address space to the segment that covers it. It answers "is this pointer Mallard's, and whose
// header describes it?" in two loads, without touching the pointer's memory. Leaves are mapped
// from the OS on first use and never freed. Lock-free reads; writes happen when segments come and
// go (under their arena's lock or the huge path).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "backend/segment.hpp"

namespace mallard::segment_map {

inline constexpr unsigned kLeafBits = 13;  // 8192 granules (32 GiB) per leaf
inline constexpr unsigned kTopBits = 47 - kSegmentShift - kLeafBits;

struct Leaf {
  std::atomic<Segment*> entries[std::size_t{1} << kLeafBits];
};

extern std::atomic<Leaf*> g_top[std::size_t{1} << kTopBits];

inline Segment* lookup(const void* p) {
  auto a = reinterpret_cast<std::uintptr_t>(p);
  if ((a >> 47) != 0) return nullptr;
  Leaf* leaf = g_top[a >> (kSegmentShift + kLeafBits)].load(std::memory_order_acquire);
  if (leaf == nullptr) return nullptr;
  return leaf->entries[(a >> kSegmentShift) & ((1u << kLeafBits) - 1)].load(
      std::memory_order_acquire);
}

// Points every granule of [start, start+size) at seg. Returns false if a leaf could not be mapped
// or the range leaves the 47-bit address space the map covers (then nothing is registered).
bool insert(std::uintptr_t start, std::size_t size, Segment* seg);
// Makes the leaves that [start, start+size) needs, so that a later insert of that range cannot
// fail. Returns false if a leaf could not be mapped.
bool prepare(std::uintptr_t start, std::size_t size);
// Clears the granules of [start, start+size).
void remove(std::uintptr_t start, std::size_t size);
// Bytes of leaves mapped (metadata statistics).
std::size_t mapped_bytes();

}  // namespace mallard::segment_map

namespace mallard {
inline Segment* segment_of_entry(const Span* s) {
  return segment_map::lookup(s);
}
}  // namespace mallard
