// init.cpp: initialisation (options, free-list key, arenas, thread-exit key) and the fork
// protocol (docs/design.md, "Fork and thread exit"). Owns the fork handlers; never allocates.
//
// Fork, in a multi-threaded process: the prepare handler takes glibc's stdio list lock, then every
// allocator lock (heap registry, every heap's slow-path lock, every arena, the metadata pool), and
// names the calling thread the fork holder (os/lock.hpp): until the parent or child handler runs,
// that thread's own lock calls do nothing, so the program's fork handlers that run inside this
// window, in whatever order they were registered around ours, may allocate and free. The child
// resets the locks and quarantines the pages of the threads it does not have. In a single-threaded
// process nothing is locked (as glibc's malloc): no other thread can be inside the allocator, and
// a fork from a signal handler that interrupted malloc must not wait for a lock its own thread
// holds.
#include "api/init.hpp"

#include <pthread.h>
#include <sys/single_threaded.h>

#include "api/alloc_inline.hpp"
#include "api/exit_report.hpp"
#include "backend/arena_registry.hpp"
#include "backend/huge.hpp"
#include "backend/meta_pool.hpp"
#include "backend/purger.hpp"
#include "config/options.hpp"
#include "frontend/heap_registry.hpp"
#include "frontend/thread_heap.hpp"
#include "os/lock.hpp"
#include "os/os.hpp"
#include "stats/peak.hpp"
#include "stats/report.hpp"

// glibc's stdio list lock (exported by libc.so.6 since 2.2.5; weak, so a libc without them only
// loses the ordering). glibc's fork takes it after the prepare handlers and before its own malloc
// locks; a thread holding a FILE lock may be waiting for an allocator lock (getline's realloc),
// so the allocator's locks must come after it here too. In the child glibc re-initialises it.
extern "C" void _IO_list_lock() __attribute__((weak));
extern "C" void _IO_list_unlock() __attribute__((weak));
extern "C" void _IO_list_resetlock() __attribute__((weak));

namespace mallard::api {

std::atomic<int> g_init_state{0};
constinit os::SpinLock g_atfork_registration_lock;

namespace {

os::SpinLock g_init_lock;
std::atomic<bool> g_handlers_registered{false};

// Forks nested inside the fork window: a fork() called by the fork holder from a handler that
// runs between Mallard's prepare and its parent/child handler. Only the holder touches it.
int g_nested_forks = 0;

bool process_is_single_threaded() {
  if (__libc_single_threaded) return true;  // no thread was ever created
  return os::thread_count() == 1;           // all of them have exited (-1: unknown, so lock)
}

// Whether this fork's prepare handler took the locks: the calling thread is the fork holder (in
// the child too, which keeps the parent's thread identity). No other state says so: a second
// thread forking at the same time waits for the locks in its own prepare handler and writes
// nothing before it has them.
bool holding_for_fork() {
  return os::in_fork_window();
}

void after_fork_child_locks();

void before_fork() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  note_fork_parent();
  if (holding_for_fork()) {  // a fork from inside another fork's window: everything is held
    ++g_nested_forks;
    return;
  }
  if (process_is_single_threaded()) return;
  // First the handler registrations (atfork_first.cpp): a thread inside glibc's
  // __register_atfork holds glibc's handler-list lock, which fork() takes again between handlers,
  // and may allocate while it holds it.
  g_atfork_registration_lock.lock_for_fork();
  if (_IO_list_lock != nullptr) _IO_list_lock();
  heap_registry::lock_for_fork();
  arenas::lock_all();
  meta_pool().lock().lock_for_fork();
  os::g_fork_holder.store(static_cast<unsigned long>(pthread_self()), std::memory_order_relaxed);
}

void after_fork_parent() {
  if (!holding_for_fork()) return;
  if (g_nested_forks > 0) {  // the nested fork ends; the outer window goes on
    --g_nested_forks;
    return;
  }
  os::g_fork_holder.store(0, std::memory_order_relaxed);
  meta_pool().lock().unlock_for_fork();
  arenas::unlock_all();
  heap_registry::unlock_for_fork();
  if (_IO_list_unlock != nullptr) _IO_list_unlock();
  g_atfork_registration_lock.unlock_for_fork();
}

void after_fork_child() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  after_fork_child_locks();
  stats::reset_peak_in_child();
  stats::reset_report_in_child();
  stats::enable_peak_watch(reports_here());  // a child of a reporting process may not report
  record_process_start(true);                // a new process: `mallard run --children` lists it
}

void after_fork_child_locks() {
  if (!holding_for_fork()) {
    // Nothing was locked; only the surviving thread's new thread id matters (its heap's
    // liveness mutex names the parent's thread).
    heap_registry::rebind_in_child(tl_heap, false);
    return;
  }
  // A child of the outermost or of a nested fork: either way this process has one thread, which
  // holds every lock. (In a nested fork's child, the outer fork then goes on from its window
  // with nothing held: its parent handler here finds no holder and does nothing.)
  g_nested_forks = 0;
  os::g_fork_holder.store(0, std::memory_order_relaxed);
  meta_pool().lock().reset_in_child();
  arenas::reset_locks_in_child();
  huge::reset_readers_in_child();
  purger::reset_in_child();
  heap_registry::reclaim_in_child(tl_heap);
  heap_registry::rebind_in_child(tl_heap, true);
  if (_IO_list_resetlock != nullptr) _IO_list_resetlock();
  g_atfork_registration_lock.reset_in_child();
}

}  // namespace

void register_fork_handlers() {
  bool expected = false;
  if (g_handlers_registered.compare_exchange_strong(expected, true))
    register_atfork_first(before_fork, after_fork_parent, after_fork_child);
}

void initialize_slow() {
  bool first = false;
  {
    os::LockGuard guard(g_init_lock);
    if (g_init_state.load(std::memory_order_relaxed) == 0) {
      g_init_state.store(1, std::memory_order_relaxed);
      config::load_options_from_environment(config::options());
      refresh_small_limit();
      g_free_keys.marker = static_cast<std::uintptr_t>(os::random_u64());
      g_free_keys.link = static_cast<std::uintptr_t>(os::random_u64()) | 1;  // odd
      arenas::init(os::usable_cpu_count());
      // The kernel settings read from /proc, read now: a program may enter a sandbox (seccomp)
      // that forbids opening files later, and must not find Mallard opening them then.
      (void)os::max_map_count();
      (void)os::strict_overcommit();
      stats::enable_peak_watch(reports_here());
      heap_registry::init();
      // The opt-in purger ages warm heaps too: decay_ms holds with no allocator call.
      purger::set_before_pass(heap_registry::age_warm_heaps);
      g_init_state.store(2, std::memory_order_release);
      first = true;
    }
  }
  // Outside the lock: registering may itself allocate.
  if (first) {
    register_fork_handlers();
    record_process_start(false);
  }
}

// At load time, before the program's constructors where the loader allows: our prepare handler
// then runs after those registered later (prepare handlers run last-registered first). The fork
// holder makes any other order safe as well.
__attribute__((constructor(101))) static void initialize_at_load() {
  ensure_initialized();
}

}  // namespace mallard::api
