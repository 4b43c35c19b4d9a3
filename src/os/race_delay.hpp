// race_delay.hpp: test-only delays that widen the allocator's race windows, so that a fork (or
// another thread) lands inside them far more often than in a normal build. Compiled in only with
// MALLARD_RACE_DELAYS (the test library libmallard_race_delays.so); everywhere else each call is
// an empty inline function. At run time MALLARD_RACE_DELAY_US=N (read once, without allocating)
// makes one call in eight of each window wait about N microseconds; unset or 0, none waits.
#pragma once

namespace mallard::os {

enum class RaceWindow : int {
  kExtendPublish,  // ThreadHeap::extend: between counting the carved blocks and listing them
  kPop,            // try_pop: between unlinking a block and counting it used
  kPush,           // push_local: between listing a freed block and counting it free
  kCollect,        // collect: between taking the remote-free list and merging it
  kRemotePush,     // push_remote: before the compare-and-swap
  kQueueEdit,      // a page moved between a heap's queues (under the heap's slow-path lock)
  kAdopt,          // adopting an abandoned page: between taking it and owning it
  kRemap,          // huge realloc: between the kernel's mremap and the segment-map update
  kOwnFullFree,    // the owner's free into its full page: between reading the owner tag and
                   // taking its slow-path lock (another heap may take the page meanwhile)
};

#ifdef MALLARD_RACE_DELAYS
void race_window(RaceWindow w);
#else
[[gnu::always_inline]] inline void race_window(RaceWindow) {}
#endif

}  // namespace mallard::os
