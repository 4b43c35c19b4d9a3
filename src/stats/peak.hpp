// peak.hpp: the heap as it was at the process's peak RSS, for the exit report only: off unless
// the process asked for a report (option report) when it started. Then, on allocation slow paths
// (never on a fast path, never from free), at most every kCheckIntervalMs, the process's RSS is
// read (/proc/self/statm); when it is 1/2^kGrowthShift above the RSS of the last snapshot (or
// there is none), a snapshot is taken: the exact heap statistics (snapshot.hpp) and where the RSS
// is (rss_split.hpp: all of /proc/self/smaps, mincore over Mallard's granules), and the next
// check waits kCostShare times as long as the snapshot took. The exit report prints the last one
// beside the state at exit. One mechanism for every later use of snapshots (timelines, heap
// maps). Never allocates; takes the snapshot with the caller holding no lock.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "mallard/mallard.h"
#include "os/os.hpp"
#include "stats/rss_split.hpp"

namespace mallard::stats {

struct PeakSnapshot {
  bool taken = false;
  std::uint64_t after_ms = 0;  // since the first allocation slow path of the process
  std::size_t rss = 0;         // the process's RSS when it was taken
  unsigned snapshots = 0;      // how many were taken (each a new high)
  mallard_stats heap{};
  RssSplit split;
};

inline constexpr std::uint64_t kCheckIntervalMs = 10;
inline constexpr unsigned kGrowthShift = 3;      // a new snapshot needs RSS 1/8 above the last one
inline constexpr std::uint64_t kCostShare = 20;  // snapshots take at most 1/20 of the time
inline constexpr std::uint64_t kCopyWaitMs = 10000;  // the exit report's wait for a snapshot
inline constexpr std::uint64_t kPeakWatchOff = ~std::uint64_t{0};

extern std::atomic<std::uint64_t> g_next_peak_check_ms;

void watch_peak_slow(std::uint64_t now_ms);

// Turns the watch on (a report was asked for) or off; at initialisation and by the option.
void enable_peak_watch(bool on);

// On allocation slow paths, with no allocator lock held.
inline void watch_peak() {
  std::uint64_t next = g_next_peak_check_ms.load(std::memory_order_relaxed);
  if (next == kPeakWatchOff) return;  // no report asked for: not even a clock read
  std::uint64_t now = os::now_ms();
  if (now >= next) watch_peak_slow(now);
}

// Copies the peak snapshot into *out; false if none was taken.
bool copy_peak(PeakSnapshot* out);

// In the child of fork(): a new process, with its own peak (the lock is freed; on or off as in
// the parent).
void reset_peak_in_child();

}  // namespace mallard::stats
