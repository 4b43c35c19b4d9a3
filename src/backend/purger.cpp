// purger.cpp: the opt-in purger thread and the decay pass over all arenas.
#include "backend/purger.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>

#include "backend/arena_registry.hpp"
#include "config/options.hpp"
#include "os/lock.hpp"
#include "os/os.hpp"

namespace mallard::purger {
namespace {

std::atomic<int> g_state{0};  // 0 not started, 1 starting or running (or failed to start)
std::atomic<void (*)()> g_before_pass{nullptr};

void* purger_main(void*) {
  while (true) {
    long d = config::options().decay_ms;
    long period = d / 2 < 10 ? 10 : d / 2;
    os::sleep_ms(static_cast<std::uint64_t>(period));
    if (void (*fn)() = g_before_pass.load(std::memory_order_acquire)) fn();
    run_decay_pass(false);
  }
  return nullptr;
}

}  // namespace

std::size_t run_decay_pass(bool force) {
  std::size_t released = 0;
  std::uint64_t now = os::now_ms();
  arenas::for_each([&](unsigned, Arena* a) {
    if (!force && !a->decay_due(now)) return;
    os::LockGuard guard(a->lock());
    released += a->decay_locked(now, force);
  });
  return released;
}

void maybe_start() {
  if (g_state.load(std::memory_order_relaxed) != 0 || !config::options().background_purge) return;
  if (os::in_fork_window()) return;  // every lock is held for fork(): not now
  int expected = 0;
  // Set before pthread_create, whose own allocations come back here and must not start another.
  if (!g_state.compare_exchange_strong(expected, 1)) return;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  // The thread is born with every signal blocked: a signal the program sends to itself, or one it
  // blocks in its own threads to sigwait for it, must never be delivered to Mallard's thread.
  sigset_t all;
  sigfillset(&all);
  pthread_attr_setsigmask_np(&attr, &all);
  pthread_t thread;
  // On failure (resource limits, a seccomp filter) stay in state 1: no retry on every call; decay
  // still runs on the program's own calls and in malloc_trim.
  (void)pthread_create(&thread, &attr, purger_main, nullptr);
  pthread_attr_destroy(&attr);
}

void set_before_pass(void (*fn)()) {
  g_before_pass.store(fn, std::memory_order_release);
}

bool running() {
  return g_state.load(std::memory_order_relaxed) != 0;
}
void reset_in_child() {
  g_state.store(0, std::memory_order_relaxed);
}

}  // namespace mallard::purger
