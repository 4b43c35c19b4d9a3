// peak.cpp: the peak snapshot (peak.hpp): rate-limited RSS checks and the snapshot kept.
#include "stats/peak.hpp"

#include "stats/owned_lock.hpp"
#include "stats/snapshot.hpp"

namespace mallard::stats {

std::atomic<std::uint64_t> g_next_peak_check_ms{kPeakWatchOff};

namespace {

OwnedLock
    g_peak_lock;  // snapshots take it with try_lock: a busy check is skipped, never waited for
std::uint64_t g_first_ms = 0;
std::size_t g_last_rss = 0;
constinit PeakSnapshot g_peak;     // the last snapshot, complete (guarded by g_peak_lock)
constinit PeakSnapshot g_scratch;  // the one being taken (guarded by g_peak_lock)

}  // namespace

void enable_peak_watch(bool on) {
  g_next_peak_check_ms.store(on ? 0 : kPeakWatchOff, std::memory_order_relaxed);
}

void watch_peak_slow(std::uint64_t now_ms) {
  std::uint64_t due = g_next_peak_check_ms.load(std::memory_order_relaxed);
  // One thread per interval: the others go on at once.
  if (now_ms < due || !g_next_peak_check_ms.compare_exchange_strong(due, now_ms + kCheckIntervalMs,
                                                                    std::memory_order_relaxed))
    return;
  if (!g_peak_lock.try_lock()) return;
  if (g_first_ms == 0) g_first_ms = now_ms;
  std::size_t rss = os::resident_bytes();
  if (rss != 0 && (!g_peak.taken || rss > g_last_rss + (g_last_rss >> kGrowthShift))) {
    std::uint64_t start_us = os::now_us();
    g_scratch.taken = true;
    g_scratch.after_ms = now_ms - g_first_ms;
    g_scratch.rss = rss;
    g_scratch.snapshots = g_peak.snapshots + 1;
    take_snapshot(&g_scratch.heap);
    split_rss(&g_scratch.split);
    g_peak = g_scratch;
    g_last_rss = rss;
    // At most 1/kCostShare of the time in snapshots: one that took 20 ms (a process with tens of
    // thousands of mappings) puts the next check 20 * kCostShare ms away.
    std::uint64_t took_ms = (os::now_us() - start_us) / 1000;
    std::uint64_t next = now_ms + took_ms * kCostShare;
    if (next > g_next_peak_check_ms.load(std::memory_order_relaxed))
      g_next_peak_check_ms.store(next, std::memory_order_relaxed);
  }
  g_peak_lock.unlock();
}

bool copy_peak(PeakSnapshot* out) {
  // A snapshot being taken ends within milliseconds (kCopyWaitMs at most is waited for); one that
  // this very thread is taking (the exit report runs in a signal handler that interrupted it)
  // never will: the report then has no peak section.
  if (!g_peak_lock.lock(kCopyWaitMs)) return false;
  *out = g_peak;
  g_peak_lock.unlock();
  return out->taken;
}

void reset_peak_in_child() {
  g_peak_lock.reset_in_child();
  g_peak = PeakSnapshot{};
  g_last_rss = 0;
  g_first_ms = 0;
  if (g_next_peak_check_ms.load(std::memory_order_relaxed) != kPeakWatchOff)
    g_next_peak_check_ms.store(0, std::memory_order_relaxed);
}

}  // namespace mallard::stats
