// lock.hpp: SpinLock, the one lock type of the allocator: a futex-backed mutex (3-state, Drepper's
// "Futexes are tricky" design) that never allocates and can be re-initialised in a forked child.
// Used only on slow paths (arenas, registries); the same-thread fast paths take no lock.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace mallard::os {

class SpinLock {
 public:
  constexpr SpinLock() = default;
  bool try_lock() {
    int expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  void lock() {
    if (try_lock()) return;
    lock_slow();
  }
  void unlock() {
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
