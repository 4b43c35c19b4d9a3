// segment_map.cpp: leaf creation and granule registration for the segment map.
#include "backend/segment_map.hpp"

#include "os/os.hpp"

namespace mallard::segment_map {

std::atomic<Leaf*> g_top[std::size_t{1} << kTopBits];

namespace {

std::atomic<std::size_t> g_leaf_bytes{0};

Leaf* leaf_for(std::uintptr_t granule, bool create) {
  auto& slot = g_top[granule >> kLeafBits];
  Leaf* leaf = slot.load(std::memory_order_acquire);
  if (leaf != nullptr || !create) return leaf;
  static_assert(sizeof(Leaf) % 65536 == 0, "a leaf is a whole number of the largest kernel pages");
  auto* fresh = static_cast<Leaf*>(os::map_aligned(sizeof(Leaf), os::page_size()));
  if (fresh == nullptr) return nullptr;
  if (slot.compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel)) {
    g_leaf_bytes.fetch_add(sizeof(Leaf), std::memory_order_relaxed);
    return fresh;
  }
  os::unmap(fresh, sizeof(Leaf));  // another thread won the race
  return leaf;
}

}  // namespace

namespace {

// The map covers the 47-bit user address space: a range that leaves it (a mapping request that
// no kernel could place there, or a bad size) has no slots, and must not index past the table.
bool covered(std::uintptr_t start, std::size_t size) {
  constexpr std::uintptr_t kLimit = std::uintptr_t{1} << 47;
  return size != 0 && start < kLimit && size <= kLimit - start;
}

}  // namespace

bool prepare(std::uintptr_t start, std::size_t size) {
  if (!covered(start, size)) return false;
  std::uintptr_t first = start >> kSegmentShift;
  std::uintptr_t last = (start + size - 1) >> kSegmentShift;
  for (std::uintptr_t g = first; g <= last; ++g) {
    if (leaf_for(g, true) == nullptr) return false;
  }
  return true;
}

bool insert(std::uintptr_t start, std::size_t size, Segment* seg) {
  if (!prepare(start, size)) return false;  // nothing written yet beyond leaves
  std::uintptr_t first = start >> kSegmentShift;
  std::uintptr_t last = (start + size - 1) >> kSegmentShift;
  for (std::uintptr_t g = first; g <= last; ++g)
    leaf_for(g, false)->entries[g & ((1u << kLeafBits) - 1)].store(seg, std::memory_order_release);
  return true;
}

void remove(std::uintptr_t start, std::size_t size) {
  MALLARD_CHECK(covered(start, size));
  if (!covered(start, size)) return;
  std::uintptr_t first = start >> kSegmentShift;
  std::uintptr_t last = (start + size - 1) >> kSegmentShift;
  for (std::uintptr_t g = first; g <= last; ++g) {
    Leaf* leaf = leaf_for(g, false);
    if (leaf != nullptr)
      leaf->entries[g & ((1u << kLeafBits) - 1)].store(nullptr, std::memory_order_release);
  }
}

std::size_t mapped_bytes() {
  return g_leaf_bytes.load(std::memory_order_relaxed);
}

}  // namespace mallard::segment_map
