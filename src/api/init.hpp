// init.hpp: lazy, thread-safe initialisation of the whole allocator on the first call from
// anywhere (a constructor before main, dlsym, an early thread), and the fork handlers.
#pragma once

#include <atomic>

namespace mallard::api {

extern std::atomic<int> g_init_state;  // 0 none, 1 running, 2 done

void initialize_slow();
[[gnu::always_inline]] inline void ensure_initialized() {
  if (__builtin_expect(g_init_state.load(std::memory_order_acquire) != 2, 0)) initialize_slow();
}

}  // namespace mallard::api
