// foreign_sbrk.cpp: Mallard's brk heap (arena 0) shares the program break with other sbrk()
// users: the program itself, or another malloc beside Mallard (glibc's, reached here through
// dlsym(RTLD_NEXT), as in any process where Mallard does not own `malloc`). Their sbrk() must
// get memory above Mallard's segments, never move the break down over them.
// Regression: Mallard moved the break with the raw brk system call, so the C library's cached
// break (which sbrk() adds to) went stale, and the next sbrk(+n) shrank the break, unmapping
// Mallard's segments (SEGV) and handing their memory out a second time.
#include <dlfcn.h>
#include <unistd.h>

#include "backend/segment_map.hpp"
#include "rb_common.h"

namespace {

constexpr std::size_t kBlocks = 64;
constexpr std::size_t kBlockSize = 48 * 1024;

void check_not_mallards(const char* who, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  for (std::size_t off = 0; off < n; off += 4096)
    RB_CHECK(mallard::segment_map::lookup(c + off) == nullptr,
             "%s got %p..%p, inside Mallard's segment %p", who, p, c + n,
             static_cast<void*>(mallard::segment_map::lookup(c + off)));
}

}  // namespace

int main() {
  rb::g_prog = "foreign_sbrk";
  RB_CHECK(mallard_option_set("heap_source", "brk") == 0, "heap_source=brk");
  RB_CHECK(sbrk(0) != reinterpret_cast<void*>(-1), "sbrk(0)");  // the C library knows the break
  void* blocks[kBlocks];
  for (std::size_t i = 0; i < kBlocks; ++i) {  // arena 0 grows the [heap]
    blocks[i] = mallard_malloc(kBlockSize);
    RB_CHECK(blocks[i] != nullptr, "mallard_malloc");
    rb::fill(blocks[i], kBlockSize, i + 1);
  }
  RB_CHECK(rb::stats().bytes_brk > 0, "arena 0 did not take memory from brk");

  // The program's own sbrk().
  const std::size_t n = std::size_t{1} << 20;
  void* mine = sbrk(static_cast<intptr_t>(n));
  RB_CHECK(mine != reinterpret_cast<void*>(-1), "sbrk(1 MiB) failed");
  check_not_mallards("sbrk(1 MiB)", mine, n);
  memset(mine, 0x5a, n);

  // Another malloc in the same process: glibc's main arena grows with sbrk too.
  auto* other_malloc = reinterpret_cast<void* (*)(std::size_t)>(dlsym(RTLD_NEXT, "malloc"));
  RB_CHECK(other_malloc != nullptr, "dlsym(RTLD_NEXT, malloc)");
  for (int i = 0; i < 4000; ++i) {
    void* q = other_malloc(1000);
    RB_CHECK(q != nullptr, "the other malloc failed");
    check_not_mallards("the other malloc", q, 1000);
    memset(q, 0xa5, 1000);
  }

  // Mallard's blocks are intact, and its heap goes on working (more blocks from arena 0).
  for (std::size_t i = 0; i < kBlocks; ++i)
    rb::check_pattern(blocks[i], kBlockSize, i + 1, "block");
  for (std::size_t i = 0; i < kBlocks; ++i) {
    mallard_free(blocks[i]);
    blocks[i] = mallard_malloc(kBlockSize);
    rb::fill(blocks[i], kBlockSize, i + 100);
  }
  mallard_check_heap();
  for (std::size_t i = 0; i < kBlocks; ++i) mallard_free(blocks[i]);
  mallard_malloc_trim(0);  // gives back what it can from the top of the break, and no more
  mallard_check_heap();
  for (std::size_t i = 0; i < n; i += 4096)
    RB_CHECK(static_cast<unsigned char*>(mine)[i] == 0x5a, "the sbrk()ed memory changed");
  rb::say("foreign_sbrk: ok");
  return 0;
}
