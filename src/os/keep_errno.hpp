// keep_errno.hpp: KeepErrno, which puts the caller's errno back when a scope ends. The allocator's
// calls must not change errno when they succeed (glibc's free: never, since 2.33), even when a
// system call inside them fails (a purge, an unmap). Used only on slow paths and around system
// calls: the fast paths make none.
#pragma once

#include <errno.h>

namespace mallard::os {

class KeepErrno {
 public:
  KeepErrno() : saved_(errno) {}
  ~KeepErrno() { errno = saved_; }
  KeepErrno(const KeepErrno&) = delete;
  KeepErrno& operator=(const KeepErrno&) = delete;

 private:
  int saved_;
};

}  // namespace mallard::os
