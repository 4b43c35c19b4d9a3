// segment_map.cpp: leaf creation and granule registration for the segment map.
#include "backend/segment_map.hpp"

#include "os/os.hpp"

namespace mallard::segment_map {

std::atomic<Leaf*> g_top[std::size_t{1} << kTopBits];
constinit std::atomic<std::uintptr_t> g_fast_limit{0};
constinit std::atomic<std::uint8_t>* g_fast_bytes = nullptr;

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

namespace {

// 4 KiB units of the fast map made writable (set after the commit succeeded; never cleared).
constexpr std::size_t kFastUnits = kGranules / os::kPageSize;
std::atomic<std::uint64_t> g_fast_writable[kFastUnits / 64];
std::atomic<std::uint8_t*> g_fast_reserved{nullptr};

bool fast_unit_writable(std::uintptr_t g) {
  std::size_t u = g / os::kPageSize;
  return (g_fast_writable[u / 64].load(std::memory_order_acquire) >> (u % 64)) & 1;
}

// The fast map, reserved on first use (several arenas may race: one reservation wins).
std::atomic<std::uint8_t>* fast_bytes() {
  std::uint8_t* bytes = g_fast_reserved.load(std::memory_order_acquire);
  if (bytes != nullptr) return reinterpret_cast<std::atomic<std::uint8_t>*>(bytes);
  // Under an address-space limit (ulimit -v), 32 MiB of address space may be what the program
  // needs: the map is used only when it is at most 1/64 of the limit.
  if (os::address_space_limit() / 64 < kGranules) return nullptr;
  auto* fresh = static_cast<std::uint8_t*>(
      os::map_aligned(kGranules, os::page_size(), os::Access::kReadOnly));
  if (fresh == nullptr) return nullptr;  // every free asks the two-level map
  if (!g_fast_reserved.compare_exchange_strong(bytes, fresh, std::memory_order_acq_rel)) {
    // Another arena won: it alone publishes the map (g_fast_bytes is a plain word that free
    // reads after g_fast_limit's acquire, so exactly one thread may write it, once).
    os::unmap(fresh, kGranules);
    return reinterpret_cast<std::atomic<std::uint8_t>*>(bytes);
  }
  g_fast_bytes = reinterpret_cast<std::atomic<std::uint8_t>*>(fresh);
  g_fast_limit.store(kGranules, std::memory_order_release);
  return reinterpret_cast<std::atomic<std::uint8_t>*>(fresh);
}

// Makes the fast map's byte of granule g writable; false if the kernel refused.
bool make_fast_writable(std::atomic<std::uint8_t>* bytes, std::uintptr_t g) {
  if (fast_unit_writable(g)) return true;
  std::uintptr_t lo = os::page_floor(reinterpret_cast<std::uintptr_t>(bytes + g));
  std::uintptr_t hi = os::page_ceil(reinterpret_cast<std::uintptr_t>(bytes + g + 1));
  if (!os::commit(reinterpret_cast<void*>(lo), hi - lo)) return false;
  auto base = reinterpret_cast<std::uintptr_t>(bytes);
  for (std::uintptr_t a = lo; a < hi; a += os::kPageSize) {
    std::size_t u = (a - base) / os::kPageSize;
    g_fast_writable[u / 64].fetch_or(std::uint64_t{1} << (u % 64), std::memory_order_release);
  }
  return true;
}

}  // namespace

void insert_fast(const Segment* seg) {
  auto start = reinterpret_cast<std::uintptr_t>(seg);
  if (!covered(start, seg->size)) return;
  std::atomic<std::uint8_t>* bytes = fast_bytes();
  if (bytes == nullptr) return;
  std::uintptr_t first = start >> kSegmentShift;
  std::uintptr_t count = seg->size >> kSegmentShift;
  if (count > kFastGranules) count = kFastGranules;
  // Granule by granule: one whose byte cannot be made writable, and every later one, stay 0 (the
  // two-level map answers for them).
  for (std::uintptr_t k = 0; k < count; ++k) {
    if (!make_fast_writable(bytes, first + k)) return;
    bytes[first + k].store(static_cast<std::uint8_t>(k + 1), std::memory_order_release);
  }
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
  if (g_fast_limit.load(std::memory_order_acquire) != 0) {
    for (std::uintptr_t g = first; g <= last; ++g)
      if (fast_unit_writable(g)) g_fast_bytes[g].store(0, std::memory_order_release);
  }
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
