// meta_pool.cpp: MetaPool's bump allocation.
#include "backend/meta_pool.hpp"

#include "os/os.hpp"

namespace mallard {

void* MetaPool::allocate(std::size_t size) {
  size = (size + 63) & ~std::size_t{63};
  os::LockGuard guard(lock_);
  if (cursor_ == nullptr || static_cast<std::size_t>(end_ - cursor_) < size) {
    std::size_t chunk = os::page_ceil(size > 65536 ? size : 65536);
    auto* fresh = static_cast<char*>(os::map_aligned(chunk, os::page_size()));
    if (fresh == nullptr) return nullptr;
    cursor_ = fresh;
    end_ = fresh + chunk;
    mapped_ += chunk;
  }
  void* p = cursor_;
  cursor_ += size;
  return p;
}

MetaPool& meta_pool() {
  static MetaPool pool;  // constant-initialised: no guard, no constructor call
  return pool;
}

}  // namespace mallard
