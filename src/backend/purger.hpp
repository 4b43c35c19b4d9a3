// purger.hpp: the background purger, a thread that runs the arenas' decay so RSS falls after
// decay_ms even when the program stops calling the allocator. Started lazily, outside every lock,
// only once a process has freed enough memory to matter (option background_purge).
#pragma once

#include <cstddef>

namespace mallard::purger {

inline constexpr std::size_t kStartDirtyBytes = 8u << 20;

// Cheap: a relaxed load unless the purger should start now.
void maybe_start();
// Runs one decay pass over every arena (what the purger thread does each period).
std::size_t run_decay_pass(bool force);
bool running();
// In a forked child the thread is gone: allow a new one.
void reset_in_child();

}  // namespace mallard::purger
