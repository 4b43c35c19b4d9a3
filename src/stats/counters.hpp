// counters.hpp: the few process-wide counters that cannot be recomputed by walking the heap:
// bytes active (small pages held by heaps + large blocks + huge blocks) and its peak. Updated on
// slow paths only (span and huge-block changes), never by the same-thread fast paths.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace mallard::stats {

extern std::atomic<std::int64_t> g_active_bytes;
extern std::atomic<std::int64_t> g_peak_active_bytes;

inline void add_active(std::int64_t delta) {
  std::int64_t now = g_active_bytes.fetch_add(delta, std::memory_order_relaxed) + delta;
  std::int64_t peak = g_peak_active_bytes.load(std::memory_order_relaxed);
  while (now > peak &&
         !g_peak_active_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

}  // namespace mallard::stats
