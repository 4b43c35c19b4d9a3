// init.hpp: lazy, thread-safe initialisation of the whole allocator on the first call from
// anywhere (a constructor before main, dlsym, an early thread), and the fork handlers.
#pragma once

#include <atomic>

#include "os/lock.hpp"

namespace mallard::api {

extern std::atomic<int> g_init_state;  // 0 none, 1 running, 2 done

void initialize_slow();

// Held around every registration of fork handlers that Mallard sees (its __register_atfork), and
// by a fork from its prepare handler to its parent or child handler.
extern os::SpinLock g_atfork_registration_lock;

// Registers Mallard's fork handlers, once. Called at initialisation and, in libmallard.so, before
// the first handler anyone else registers (atfork_first.cpp), so that Mallard's prepare handler
// runs after every other and its parent and child handlers before them, as glibc's own malloc
// locks sit inside fork().
void register_fork_handlers();
// The registration itself: with glibc's __register_atfork where Mallard interposes it (the shared
// library), else with pthread_atfork.
void register_atfork_first(void (*prepare)(), void (*parent)(), void (*child)());
[[gnu::always_inline]] inline void ensure_initialized() {
  if (__builtin_expect(g_init_state.load(std::memory_order_acquire) != 2, 0)) initialize_slow();
}

}  // namespace mallard::api
