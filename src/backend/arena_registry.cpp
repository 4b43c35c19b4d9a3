// arena_registry.cpp: lazy creation of arenas and their assignment to threads.
#include "backend/arena_registry.hpp"

#include <new>

#include "backend/meta_pool.hpp"
#include "config/options.hpp"
#include "os/check.hpp"
#include "os/lock.hpp"
#include "os/text_writer.hpp"

namespace mallard::arenas {
namespace {

std::atomic<Arena*> g_arenas[kArenaLimit];
std::atomic<unsigned> g_count{0};
std::atomic<unsigned> g_next{0};
unsigned g_cap = 8;
os::SpinLock g_create_lock;
Arena g_arena0;  // constant-initialised; arena 0 takes its memory from brk

Arena* create(unsigned index) {
  os::LockGuard guard(g_create_lock);
  Arena* a = g_arenas[index].load(std::memory_order_acquire);
  if (a != nullptr) return a;
  void* mem = meta_pool().allocate(sizeof(Arena));
  if (mem == nullptr) return nullptr;
  a = new (mem) Arena();
  a->init(index, false);
  // Created inside the fork window (by the fork holder, whose locks are all taken): locked like
  // every other arena, so no other thread enters it before the fork and unlock_all releases it.
  if (os::in_fork_window()) a->lock().lock_for_fork();
  g_arenas[index].store(a, std::memory_order_release);
  g_count.fetch_add(1, std::memory_order_relaxed);
  if (config::options().verbose)
    os::TextWriter(2).str("mallard: arena ").u(index).str(" created\n");
  return a;
}

}  // namespace

void init(unsigned usable_cpus) {
  long opt = config::options().arena_max;
  set_cap(opt > 0 ? static_cast<unsigned>(opt) : 8 * (usable_cpus == 0 ? 1 : usable_cpus));
  g_arena0.init(0, true);
  g_arenas[0].store(&g_arena0, std::memory_order_release);
  g_count.store(1, std::memory_order_relaxed);
}

void set_cap(unsigned n) {
  if (n == 0) n = 1;
  if (n > kArenaLimit) n = kArenaLimit;
  g_cap = n;
}

unsigned cap() {
  return g_cap;
}
unsigned count() {
  return g_count.load(std::memory_order_relaxed);
}
Arena* arena0() {
  return &g_arena0;
}
Arena* at(unsigned i) {
  return i < kArenaLimit ? g_arenas[i].load(std::memory_order_acquire) : nullptr;
}

Arena* assign() {
  unsigned existing = count();
  // 1. An arena that no thread uses: short-lived threads keep reusing one arena's memory.
  for (unsigned i = 0; i < existing; ++i) {
    Arena* a = g_arenas[i].load(std::memory_order_acquire);
    unsigned none = 0;
    if (a != nullptr && a->attached().compare_exchange_strong(none, 1)) return a;
  }
  // 2. A new arena, while under the cap. 3. Round-robin over all, skipping a contended one.
  unsigned cap_now = g_cap;
  for (unsigned tries = 0; tries < cap_now; ++tries) {
    unsigned i = g_next.fetch_add(1, std::memory_order_relaxed) % cap_now;
    Arena* a = g_arenas[i].load(std::memory_order_acquire);
    if (a == nullptr) {
      if (count() >= cap_now) continue;
      a = create(i);
      if (a == nullptr) break;
    }
    // A contended arena is skipped, as glibc's reused_arena does with its try-lock.
    // (Inside the fork window every arena is locked, by the caller itself: take the first.)
    if (!a->lock().is_locked() || tries + 1 == cap_now || os::in_fork_window()) {
      a->attached().fetch_add(1);
      return a;
    }
  }
  g_arena0.attached().fetch_add(1);
  return &g_arena0;
}

void attach(Arena* a) {
  a->attached().fetch_add(1);
}

void detach(Arena* a) {
  if (a == nullptr) return;
  // An arena detached more often than attached: a heap's arena read after its record was reused
  // (the race fixed in heap_registry's keep_warm) would wrap the count and hide the arena from
  // assign()'s "unused" pass forever.
  [[maybe_unused]] unsigned before = a->attached().fetch_sub(1);
  MALLARD_CHECK(before != 0);
}

Arena* uncontended(Arena* preferred) {
  if (!preferred->lock().is_locked()) return preferred;
  unsigned n = count();
  for (unsigned i = 0; i < n; ++i) {
    Arena* a = g_arenas[i].load(std::memory_order_acquire);
    if (a != nullptr && !a->lock().is_locked()) return a;
  }
  return preferred;
}

void lock_all() {
  g_create_lock.lock_for_fork();
  for (unsigned i = 0; i < kArenaLimit; ++i) {
    Arena* a = g_arenas[i].load(std::memory_order_acquire);
    if (a != nullptr) a->lock().lock_for_fork();
  }
}

void unlock_all() {
  for (unsigned i = kArenaLimit; i-- > 0;) {
    Arena* a = g_arenas[i].load(std::memory_order_acquire);
    if (a != nullptr) a->lock().unlock_for_fork();
  }
  g_create_lock.unlock_for_fork();
}

void reset_locks_in_child() {
  for (unsigned i = 0; i < kArenaLimit; ++i) {
    Arena* a = g_arenas[i].load(std::memory_order_acquire);
    if (a != nullptr) a->lock().reset_in_child();
  }
  g_create_lock.reset_in_child();
}

}  // namespace mallard::arenas
