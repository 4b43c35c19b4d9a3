// init.cpp: initialisation (options, free-list key, arenas, thread-exit key) and fork handling.
// Fork: the prepare handler takes every allocator lock so no other thread is inside the heap
// when the child is made; the child resets the locks and reclaims the heaps of the threads that
// did not survive.
#include "api/init.hpp"

#include "api/alloc_inline.hpp"

#include <pthread.h>

#include "backend/arena_registry.hpp"
#include "backend/meta_pool.hpp"
#include "backend/purger.hpp"
#include "config/options.hpp"
#include "frontend/heap_registry.hpp"
#include "frontend/thread_heap.hpp"
#include "os/lock.hpp"
#include "os/os.hpp"

namespace mallard::api {

std::atomic<int> g_init_state{0};

namespace {

os::SpinLock g_init_lock;

void before_fork() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  heap_registry::lock();
  arenas::lock_all();
  meta_pool().lock().lock();
}

void after_fork_parent() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  meta_pool().lock().unlock();
  arenas::unlock_all();
  heap_registry::unlock();
}

void after_fork_child() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  meta_pool().lock().reset_in_child();
  arenas::reset_locks_in_child();
  purger::reset_in_child();
  heap_registry::reclaim_in_child(tl_heap);
}

}  // namespace

void initialize_slow() {
  bool first = false;
  {
    os::LockGuard guard(g_init_lock);
    if (g_init_state.load(std::memory_order_relaxed) == 0) {
      g_init_state.store(1, std::memory_order_relaxed);
      config::load_options_from_environment(config::options());
      refresh_small_limit();
      g_free_key = static_cast<std::uintptr_t>(os::random_u64());
      arenas::init(os::usable_cpu_count());
      heap_registry::init();
      g_init_state.store(2, std::memory_order_release);
      first = true;
    }
  }
  // Outside the lock: pthread_atfork may itself allocate.
  if (first) pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

}  // namespace mallard::api
