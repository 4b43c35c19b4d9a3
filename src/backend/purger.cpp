// purger.cpp: the purger thread and the decay pass over all arenas.
#include "backend/purger.hpp"

#include <pthread.h>
#include <time.h>

#include <atomic>

#include "backend/arena_registry.hpp"
#include "config/options.hpp"
#include "os/lock.hpp"
#include "os/os.hpp"

namespace mallard::purger {
namespace {

std::atomic<int> g_state{0};  // 0 not started, 1 starting or running

void* purger_main(void*) {
  while (true) {
    long d = config::options().decay_ms;
    long period = d / 2 < 10 ? 10 : d / 2;
    timespec ts{period / 1000, (period % 1000) * 1000000};
    nanosleep(&ts, nullptr);
    run_decay_pass(false);
  }
  return nullptr;
}

std::size_t total_dirty() {
  std::size_t sum = 0;
  arenas::for_each([&](unsigned, Arena* a) { sum += a->dirty_bytes(); });
  return sum;
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
  if (g_state.load(std::memory_order_relaxed) != 0) return;
  if (!config::options().background_purge || total_dirty() < kStartDirtyBytes) return;
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1)) return;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  if (pthread_create(&thread, &attr, purger_main, nullptr) != 0) {
    // Could not start (resource limits): stay in state 1 so we do not retry on every free;
    // purging still happens on the allocator's own slow paths and malloc_trim.
  }
  pthread_attr_destroy(&attr);
}

bool running() {
  return g_state.load(std::memory_order_relaxed) != 0;
}
void reset_in_child() {
  g_state.store(0, std::memory_order_relaxed);
}

}  // namespace mallard::purger
