// meta_pool.hpp: MetaPool, the allocator's own allocator for its long-lived records (arenas,
// thread heaps). Bump-allocates zeroed memory from 64 KiB OS chunks under a lock; records are
// recycled by their owners (free lists of their own), never returned here.
#pragma once

#include <cstddef>

#include "os/lock.hpp"

namespace mallard {

class MetaPool {
 public:
  // Zeroed, 64-byte aligned memory of `size` bytes, or nullptr if the OS refuses.
  void* allocate(std::size_t size);
  std::size_t bytes_mapped() const { return mapped_; }
  os::SpinLock& lock() { return lock_; }

 private:
  os::SpinLock lock_;
  char* cursor_ = nullptr;
  char* end_ = nullptr;
  std::size_t mapped_ = 0;
};

MetaPool& meta_pool();

}  // namespace mallard
