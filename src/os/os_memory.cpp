// os_memory.cpp: mapping, unmapping, remapping, committing and purging memory. Never allocates.
// No mapping is MAP_NORESERVE: memory handed out is committed (charged to the kernel's overcommit
// accounting) when it is mapped read-write or made read-write by commit(), so that a request the
// kernel could never back fails at the call, as glibc's do, instead of the process being killed
// when it touches the memory.
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>

#include <sys/auxv.h>

#include "os/check.hpp"
#include "os/os.hpp"

namespace mallard::os {
namespace {

std::atomic<std::size_t> g_page_size{0};

std::size_t read_page_size() {
  std::size_t kernel = getauxval(AT_PAGESZ);
  if (kernel < kPageSize || (kernel & (kernel - 1)) != 0) kernel = kPageSize;
#ifdef MALLARD_PRETEND_PAGE_SIZE
  if (kernel < MALLARD_PRETEND_PAGE_SIZE) kernel = MALLARD_PRETEND_PAGE_SIZE;
#endif
  return kernel;
}

bool on_page(std::uintptr_t a) {
  return page_floor(a) == a;
}
bool on_page(const void* p) {
  return on_page(reinterpret_cast<std::uintptr_t>(p));
}

// Where the next aligned mapping is attempted: the kernel usually honours a free hint, which saves
// the over-map-and-trim dance (three system calls) for most segments.
std::atomic<std::uintptr_t> g_map_hint{0};

int protection(Access access) {
  switch (access) {
    case Access::kCommitted:
      return PROT_READ | PROT_WRITE;
    case Access::kReadOnly:  // reads see zeros; not charged until commit() makes it writable
      return PROT_READ;
    case Access::kReserved:
      break;
  }
  return PROT_NONE;
}

// A reservation (PROT_NONE) is not charged; making part of it writable later charges that part
// (mprotect), which is why it is not MAP_NORESERVE either: the kernel skips the charge for those.
void* raw_map(void* hint, std::size_t size, int prot, int extra_flags) {
  void* p = mmap(hint, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
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

std::size_t page_size() {
  std::size_t v = g_page_size.load(std::memory_order_relaxed);
  if (v == 0) {  // every thread computes the same value: a race only repeats the read
    v = read_page_size();
    g_page_size.store(v, std::memory_order_relaxed);
  }
  return v;
}

bool purge_covers(const void* p, std::size_t size) {
  return on_page(p) && on_page(reinterpret_cast<std::uintptr_t>(p) + size);
}

void* map_aligned(std::size_t size, std::size_t alignment, Access access) {
  if (alignment < page_size()) alignment = page_size();
  MALLARD_CHECK(size != 0 && on_page(size));
  if (inject_fault()) return nullptr;
  std::uintptr_t hint = g_map_hint.load(std::memory_order_relaxed);
  if (hint != 0 && hint > size && ((hint - size) & (alignment - 1)) == 0) {
    void* want = reinterpret_cast<void*>(hint - size);
    void* p = raw_map(want, size, protection(access), MAP_FIXED_NOREPLACE);
    if (p == want) {
      g_map_hint.store(hint - size, std::memory_order_relaxed);
      return p;
    }
    if (p != nullptr) munmap(p, size);  // old kernels ignore NOREPLACE and treat it as a hint
  }
  // Over-map by the alignment and trim both ends. The over-map is a reservation, so that only
  // `size` bytes are ever charged; the kept part is committed afterwards if asked.
  if (size + alignment < size) return nullptr;
  auto* raw = static_cast<char*>(raw_map(nullptr, size + alignment, PROT_NONE, 0));
  if (raw == nullptr) return nullptr;
  auto start = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t aligned = (start + alignment - 1) & ~(alignment - 1);
  std::size_t head = aligned - start;
  std::size_t tail = alignment - head;
  if (head != 0) munmap(raw, head);
  if (tail != 0) munmap(reinterpret_cast<char*>(aligned) + size, tail);
  if (access != Access::kReserved &&
      mprotect(reinterpret_cast<void*>(aligned), size, protection(access)) != 0) {
    munmap(reinterpret_cast<void*>(aligned), size);
    return nullptr;
  }
  g_map_hint.store(aligned, std::memory_order_relaxed);
  return reinterpret_cast<void*>(aligned);
}

bool commit(void* p, std::size_t size) {
  if (inject_fault()) return false;
  std::uintptr_t start = page_floor(reinterpret_cast<std::uintptr_t>(p));
  std::uintptr_t end = page_ceil(reinterpret_cast<std::uintptr_t>(p) + size);
  return mprotect(reinterpret_cast<void*>(start), end - start, PROT_READ | PROT_WRITE) == 0;
}

bool unmap(void* p, std::size_t size) {
  MALLARD_CHECK(on_page(p) && on_page(size));
  return munmap(p, size) == 0;
}

bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size) {
  MALLARD_CHECK(on_page(p) && on_page(old_size) && on_page(new_size));
  if (new_size > old_size && inject_fault()) return false;
  return mremap(p, old_size, new_size, 0) != MAP_FAILED;
}

void* move_mapping(void* p, std::size_t old_size, std::size_t new_size, void* dest) {
  MALLARD_CHECK(on_page(p) && on_page(dest) && on_page(old_size) && on_page(new_size));
  if (inject_fault()) return nullptr;
  void* q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
  return q == MAP_FAILED ? nullptr : q;
}

bool advise_huge_pages(void* p, std::size_t size, HugePages mode) {
  if (mode == HugePages::kKernel) return true;
  MALLARD_CHECK(on_page(p) && on_page(size));
  return madvise(p, size, mode == HugePages::kNever ? MADV_NOHUGEPAGE : MADV_HUGEPAGE) == 0;
}

bool purge(void* p, std::size_t size, PurgeKind kind) {
  if (inject_fault()) return false;
  std::uintptr_t start = page_ceil(reinterpret_cast<std::uintptr_t>(p));
  std::uintptr_t end = page_floor(reinterpret_cast<std::uintptr_t>(p) + size);
  if (end <= start) return true;  // no whole kernel page inside: nothing to give back
  p = reinterpret_cast<void*>(start);
  size = end - start;
  int advice = kind == PurgeKind::kFree ? MADV_FREE : MADV_DONTNEED;
  if (madvise(p, size, advice) == 0) return true;
  // MADV_FREE is missing on old kernels: fall back to the stronger advice.
  return kind == PurgeKind::kFree && madvise(p, size, MADV_DONTNEED) == 0;
}

}  // namespace mallard::os
