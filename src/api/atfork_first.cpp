// atfork_first.cpp: keeps Mallard's fork handlers registered before everyone else's (shared
// library only). glibc takes its own malloc locks inside fork(), after every prepare handler; a
// library's prepare handler that locks a mutex of its own while another thread holds that mutex
// and waits in malloc would deadlock if Mallard's prepare handler, which takes the allocator
// locks, ran first. Prepare handlers run last-registered first, and the libraries the program
// links are initialised (and register their handlers) before a preloaded Mallard's constructor.
// So Mallard interposes __register_atfork, the glibc entry that every pthread_atfork goes
// through, and registers its own handlers just before the first one anyone else registers.
// Never allocates; never in libmallard.a (a static program has glibc's definition).
#include <dlfcn.h>

#include <atomic>

#include <stdlib.h>
#include "api/init.hpp"
#include "os/text_writer.hpp"

#define MALLARD_API extern "C" __attribute__((visibility("default")))

extern "C" void* __dso_handle;  // this library's, for glibc's dlclose bookkeeping

namespace mallard::api {
namespace {

using RegisterAtfork = int (*)(void (*)(), void (*)(), void (*)(), void*);

// glibc's own __register_atfork (GLIBC_2.3.2): the next definition after this library's. (A
// versioned reference would bind to this library's own, unversioned definition.) dlvsym does not
// allocate when it finds the symbol.
RegisterAtfork glibc_register_atfork() {
  static std::atomic<RegisterAtfork> cached{nullptr};
  RegisterAtfork f = cached.load(std::memory_order_acquire);
  if (f == nullptr) {
    f = reinterpret_cast<RegisterAtfork>(dlvsym(RTLD_NEXT, "__register_atfork", "GLIBC_2.3.2"));
    if (f == nullptr) {
      os::TextWriter(2).str("mallard: cannot find glibc's __register_atfork\n");
      abort();
    }
    cached.store(f, std::memory_order_release);
  }
  return f;
}

}  // namespace

void register_atfork_first(void (*prepare)(), void (*parent)(), void (*child)()) {
  os::LockGuard guard(g_atfork_registration_lock);  // see __register_atfork below
  glibc_register_atfork()(prepare, parent, child, &__dso_handle);
}

}  // namespace mallard::api

MALLARD_API int __register_atfork(void (*prepare)(), void (*parent)(), void (*child)(), void* dso) {
  mallard::api::register_fork_handlers();  // Mallard's first: their prepare handler runs last
  // Not while a fork holds the allocator: glibc's handler-list lock, which this call holds, is
  // taken by fork() between handlers, and this call may allocate (see before_fork).
  mallard::os::LockGuard guard(mallard::api::g_atfork_registration_lock);
  return mallard::api::glibc_register_atfork()(prepare, parent, child, dso);
}
