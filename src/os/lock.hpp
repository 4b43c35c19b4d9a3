// lock.hpp: SpinLock, the one lock type of the allocator: a futex-backed mutex (3-state, Drepper's
// "Futexes are tricky" design) that never allocates and can be re-initialised in a forked child.
// Used only on slow paths (arenas, registries); the same-thread fast paths take no lock.
// Also owns the fork holder: the thread that holds every allocator lock across fork(). While it
// is set, that thread's own lock() and unlock() calls do nothing, so fork handlers that run inside
// the fork window (the program's, in any order around Mallard's) may allocate and free.
#pragma once

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "os/check.hpp"

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
    bool taken = state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                                std::memory_order_relaxed);
    if (kChecked && taken) note_owner(static_cast<unsigned long>(pthread_self()));
    return taken;
  }
  void lock() {
    if (in_fork_window()) return;  // held for fork() by this very thread
    if (try_lock()) return;
    lock_slow();
  }
  void unlock() {
    if (in_fork_window()) return;
    MALLARD_CHECK(held_by_me());
    if (kChecked) note_owner(0);
    if (state_.exchange(0, std::memory_order_release) == 2) wake();
  }
  // For the fork handlers only: take and release whatever the fork holder is.
  void lock_for_fork() {
    if (!try_lock()) lock_slow();
  }
  void unlock_for_fork() {
    if (kChecked) note_owner(0);
    if (state_.exchange(0, std::memory_order_release) == 2) wake();
  }
  // After fork() the child has one thread: the lock is made free whoever held it.
  void reset_in_child() {
    if (kChecked) note_owner(0);
    state_.store(0, std::memory_order_relaxed);
  }
  bool is_locked() const { return state_.load(std::memory_order_relaxed) != 0; }
  // Checked build: whether the calling thread holds the lock (or every lock, for fork). For
  // MALLARD_CHECK(lock().held_by_me()) in the functions whose names end in _locked; in other
  // builds the owner is not recorded and this answers whether anyone holds it.
  bool held_by_me() const {
    if (in_fork_window()) return true;
    if (!kChecked) return is_locked();
    return is_locked() &&
           owner_.load(std::memory_order_relaxed) == static_cast<unsigned long>(pthread_self());
  }

 private:
  void lock_slow() {
    const int saved_errno = errno;  // the futex wait sets EAGAIN/EINTR: the C API keeps errno
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
    if (kChecked) note_owner(static_cast<unsigned long>(pthread_self()));
    errno = saved_errno;
  }
  void note_owner(unsigned long who) { owner_.store(who, std::memory_order_relaxed); }
  void wake() {
    syscall(SYS_futex, reinterpret_cast<int*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
  std::atomic<int> state_{0};  // 0 free, 1 locked, 2 locked with waiters
#ifdef MALLARD_CHECKED
  std::atomic<unsigned long> owner_{0};  // pthread_self() of the holder (checked build)
#else
  struct NoOwner {
    void store(unsigned long, std::memory_order) {}
    unsigned long load(std::memory_order) const { return 0; }
  };
  [[no_unique_address]] NoOwner owner_;
#endif
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
