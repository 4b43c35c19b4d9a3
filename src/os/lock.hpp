// lock.hpp: SpinLock, the one lock type of the allocator: a futex-backed mutex (3-state, Drepper's
// "Futexes are tricky" design) that never allocates and can be re-initialised in a forked child.
// Used only on slow paths (arenas, registries); the same-thread fast paths take no lock.
// Also owns the fork holder: the thread that holds every allocator lock across fork(). While it
// is set, that thread's own lock() and unlock() calls do nothing, so fork handlers that run inside
// the fork window (the program's, in any order around Mallard's) may allocate and free.
#pragma once

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace mallard::os {

// pthread_self() of the thread holding every lock for fork(), or 0. Written only by the fork
// handlers (api/init.cpp): set after every lock is taken, cleared before they are released.
extern std::atomic<unsigned long> g_fork_holder;  // os_system.cpp

// Whether the calling thread is inside the fork window and holds every lock already.
[[gnu::always_inline]] inline bool in_fork_window() {
  unsigned long holder = g_fork_holder.load(std::memory_order_relaxed);
  return holder != 0 && holder == static_cast<unsigned long>(pthread_self());
}

class SpinLock {
 public:
  constexpr SpinLock() = default;
  bool try_lock() {
    int expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  void lock() {
    if (in_fork_window()) return;  // held for fork() by this very thread
    if (try_lock()) return;
    lock_slow();
  }
  void unlock() {
    if (in_fork_window()) return;
    if (state_.exchange(0, std::memory_order_release) == 2) wake();
  }
  // For the fork handlers only: take and release whatever the fork holder is.
  void lock_for_fork() {
    if (!try_lock()) lock_slow();
  }
  void unlock_for_fork() {
    if (state_.exchange(0, std::memory_order_release) == 2) wake();
  }
  // After fork() the child has one thread: the lock is made free whoever held it.
  void reset_in_child() { state_.store(0, std::memory_order_relaxed); }
  bool is_locked() const { return state_.load(std::memory_order_relaxed) != 0; }

 private:
  void lock_slow() {
    for (int spin = 0; spin < 64; ++spin) {
      __builtin_ia32_pause();
      if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return;
    }
    int c = state_.exchange(2, std::memory_order_acquire);
    while (c != 0) {
      syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAIT_PRIVATE, 2, nullptr, nullptr,
              0);
      c = state_.exchange(2, std::memory_order_acquire);
    }
  }
  void wake() {
    syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
  std::atomic<int> state_{0};  // 0 free, 1 locked, 2 locked with waiters
};

class LockGuard {
 public:
  explicit LockGuard(SpinLock& l) : lock_(l) { lock_.lock(); }
  ~LockGuard() { lock_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  SpinLock& lock_;
};

}  // namespace mallard::os
