// os_break.cpp: the program break (brk), from which arena 0 grows the process's [heap]. Tracks the
// break it last set so that it never shrinks a break that another sbrk user has moved.
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os/os.hpp"

namespace mallard::os {
namespace {

// Moves the break with the C library's brk(), which also updates the break libc caches for
// sbrk(): with the raw system call that cache went stale, and the next sbrk(+n) of the program
// or of another malloc moved the break down, over our segments. Reads the true break with the
// raw system call (whoever moved it last).
std::uintptr_t sys_brk(std::uintptr_t want) {
  if (want != 0 && brk(reinterpret_cast<void*>(want)) != 0) {
    // refused: the break has not moved (read back below)
  }
  return static_cast<std::uintptr_t>(syscall(SYS_brk, 0));
}

std::uintptr_t g_our_break = 0;  // the break as we last left it (0: never touched)

}  // namespace

void* current_break() {
  return reinterpret_cast<void*>(sys_brk(0));
}

void* grow_break(std::size_t size) {
  if (inject_fault()) return nullptr;  // tests: arena 0 then falls back to mmap
  // Segments are self-contained, so the heap need not be contiguous: if another user moved the
  // break, we simply continue from where it is now.
  std::uintptr_t now = sys_brk(0);
  std::uintptr_t want = now + size;
  if (want < now) return nullptr;
  std::uintptr_t got = sys_brk(want);
  if (got != want) {
    errno = ENOMEM;
    return nullptr;
  }
  g_our_break = got;
  return reinterpret_cast<void*>(now);
}

bool shrink_break(void* new_end) {
  auto want = reinterpret_cast<std::uintptr_t>(new_end);
  if (sys_brk(0) != g_our_break) return false;
  std::uintptr_t got = sys_brk(want);
  if (got != want) return false;
  g_our_break = got;
  return true;
}

}  // namespace mallard::os
