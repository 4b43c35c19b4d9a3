// purger.hpp: the opt-in background purger (option background_purge, off by default), a thread
// that runs the arenas' decay so dirty memory ages even when the program stops calling the
// allocator. By default Mallard has no thread: decay runs on the program's own calls. The thread
// is created only from an allocation slow path, outside every allocator lock, never from free,
// with every signal blocked (it must never take the program's signals); a forked child starts its
// own. Never allocates itself.
#pragma once

#include <cstddef>

namespace mallard::purger {

// Starts the thread if the option asks for it and it is not running. Cheap (one relaxed load)
// otherwise. Call only where the calling thread holds no allocator lock.
void maybe_start();
// Runs one decay pass over every arena (what the purger thread does each period); force purges
// every dirty span whatever its age.
std::size_t run_decay_pass(bool force);
bool running();
// Work of a higher layer the purger thread runs before each decay pass, holding no lock (the
// frontend's aging of warm heaps, heap_registry::age_warm_heaps: this layer cannot call it).
// Set once at initialisation; nullptr for none.
void set_before_pass(void (*fn)());
// In a forked child the thread is gone: allow a new one.
void reset_in_child();

}  // namespace mallard::purger
