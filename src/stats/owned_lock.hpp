// owned_lock.hpp: a spin lock that knows which thread holds it, for the report's locks: a thread
// that finds the lock held by itself (a report from a signal handler that interrupted the report
// or the snapshot it is writing) gives up at once instead of waiting forever; other threads wait
// (bounded). Never allocates.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include "os/lock.hpp"
#include "os/os.hpp"

namespace mallard::stats {

class OwnedLock {
 public:
  // Takes the lock; false if this thread holds it already, or after max_wait_ms.
  bool lock(std::uint64_t max_wait_ms) {
    auto self = static_cast<unsigned long>(pthread_self());
    if (owner_.load(std::memory_order_relaxed) == self) return false;
    for (std::uint64_t waited = 0; !lock_.try_lock(); ++waited) {
      if (waited >= max_wait_ms) return false;
      os::sleep_ms(1);
    }
    owner_.store(self, std::memory_order_relaxed);
    return true;
  }
  bool try_lock() {
    if (!lock_.try_lock()) return false;
    owner_.store(static_cast<unsigned long>(pthread_self()), std::memory_order_relaxed);
    return true;
  }
  void unlock() {
    owner_.store(0, std::memory_order_relaxed);
    lock_.unlock();
  }
  void reset_in_child() {
    owner_.store(0, std::memory_order_relaxed);
    lock_.reset_in_child();
  }

 private:
  os::SpinLock lock_;
  std::atomic<unsigned long> owner_{0};
};

}  // namespace mallard::stats
