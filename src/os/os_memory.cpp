// os_memory.cpp: mapping, unmapping, remapping and purging memory. Never allocates.
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>

#include "os/os.hpp"

namespace mallard::os {
namespace {

// Where the next aligned mapping is attempted: the kernel usually honours a free hint, which saves
// the over-map-and-trim dance (three system calls) for most segments.
std::atomic<std::uintptr_t> g_map_hint{0};

void* raw_map(void* hint, std::size_t size, int extra_flags) {
  void* p = mmap(hint, size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | extra_flags, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

}  // namespace

#ifdef MALLARD_FAULT_INJECTION
namespace {
std::atomic<long> g_fault_countdown{-1};
}  // namespace

bool inject_fault() {
  long n = g_fault_countdown.load(std::memory_order_relaxed);
  while (n > 0 && !g_fault_countdown.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) {
  }
  if (n != 0) return false;
  errno = ENOMEM;
  return true;
}
void set_fault_countdown(long fail_after) {
  g_fault_countdown.store(fail_after, std::memory_order_relaxed);
}
long fault_countdown() {
  return g_fault_countdown.load(std::memory_order_relaxed);
}
#endif

void* map_aligned(std::size_t size, std::size_t alignment) {
  if (inject_fault()) return nullptr;
  std::uintptr_t hint = g_map_hint.load(std::memory_order_relaxed);
  if (hint != 0 && hint > size && ((hint - size) & (alignment - 1)) == 0) {
    void* want = reinterpret_cast<void*>(hint - size);
    void* p = raw_map(want, size, MAP_FIXED_NOREPLACE);
    if (p == want) {
      g_map_hint.store(hint - size, std::memory_order_relaxed);
      return p;
    }
    if (p != nullptr) munmap(p, size);  // old kernels ignore NOREPLACE and treat it as a hint
  }
  // Over-map by the alignment and trim both ends.
  if (size + alignment < size) return nullptr;
  auto* raw = static_cast<char*>(raw_map(nullptr, size + alignment, 0));
  if (raw == nullptr) return nullptr;
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  std::size_t head = aligned - start;
  std::size_t tail = alignment - head;
  if (head != 0) munmap(raw, head);
  if (tail != 0) munmap(reinterpret_cast<char*>(aligned) + size, tail);
  g_map_hint.store(aligned, std::memory_order_relaxed);
  return reinterpret_cast<void*>(aligned);
}

bool unmap(void* p, std::size_t size) {
  return munmap(p, size) == 0;
}

bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size) {
  if (new_size > old_size && inject_fault()) return false;
  return mremap(p, old_size, new_size, 0) != MAP_FAILED;
}

void* remap_aligned(void* p, std::size_t old_size, std::size_t new_size, std::size_t alignment) {
  // Reserve an aligned destination, then move the pages onto it (the kernel replaces the
  // reservation atomically); the data is never copied.
  void* dest = map_aligned(new_size, alignment);
  if (dest == nullptr) return nullptr;
  if (inject_fault()) {
    munmap(dest, new_size);
    return nullptr;
  }
  void* q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
  if (q == MAP_FAILED) {
    munmap(dest, new_size);
    return nullptr;
  }
  return q;
}

bool purge(void* p, std::size_t size, PurgeKind kind) {
  if (inject_fault()) return false;
  int advice = kind == PurgeKind::kFree ? MADV_FREE : MADV_DONTNEED;
  if (madvise(p, size, advice) == 0) return true;
  // MADV_FREE is missing on old kernels: fall back to the stronger advice.
  return kind == PurgeKind::kFree && madvise(p, size, MADV_DONTNEED) == 0;
}

}  // namespace mallard::os
