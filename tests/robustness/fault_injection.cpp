// fault_injection.cpp: every OS memory call (mmap, mremap growth, madvise, brk) of a long random
// workload is made to fail, one failure point at a time (mallard::os::set_fault_countdown, only in
// the test library mallard_fault_injection). For each point the workload runs from the same
// state, and the test checks:
//   - every call succeeds or fails the documented way: NULL with errno ENOMEM (posix_memalign:
//     ENOMEM returned, *memptr untouched; realloc: the old block intact; operator new:
//     std::bad_alloc; nothrow new: nullptr), and fails only when an OS call really failed;
//   - in "transient" mode (one OS call fails, the next ones succeed again) every later call
//     succeeds: nothing is left broken by a failure;
//   - successful blocks are aligned, as big as asked, zeroed for calloc, and keep their contents;
//   - mallard_check_heap() passes after every operation;
//   - once everything is freed, the live-byte statistics are back to their starting figures, and
//     after malloc_trim the mapped bytes, the segments and the process's VmSize are too (no
//     mapping lost or counted twice on a failure path).
// Two configurations (brk arena purging at once; mmap arena purging on trim, no huge blocks) run
// in parallel child processes.
// Usage: fault_injection [STRIDE [OPS [SEEDS [SEED]]]]: every STRIDE-th failure point (default 1:
// all) of SEEDS workloads (default 8) of OPS operations (default 250) per configuration.
#include <errno.h>
#include <pthread.h>

#include <sys/wait.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <new>

#include "../common/sanitizer.h"
#include "backend/meta_pool.hpp"
#include "backend/segment_map.hpp"
#include "os/os.hpp"
#include "rb_common.h"

namespace {

using rb::Rng;

constexpr int kSlots = 48;

constexpr std::size_t kHugeAlign = std::size_t{8} << 20;

enum class How : std::uint8_t { kMalloc, kNew, kNewAligned };

struct Slot {
  void* p;
  std::size_t n;      // bytes requested (and filled)
  std::size_t align;  // alignment asked for (0: default)
  std::uint64_t tag;  // pattern key
  How how;            // how to free it
};

// The shadow of the live blocks lives in static storage: the test itself never allocates while
// failures are injected.
Slot g_slots[kSlots];
std::uint64_t g_next_tag = 1;

enum class Mode { kCount, kTransient, kPersistent };
Mode g_mode = Mode::kCount;
long g_point = -1;     // the failure point under test
bool g_fired = false;  // the injected failure has happened in this run
const char* g_config = "";

long countdown() {
  return mallard::os::fault_countdown();
}

// RB_TRACE=POINT prints every operation of the runs that test failure point POINT (debugging).
long g_trace_point = -2;
void trace(const char* call, std::size_t n, std::size_t align, const void* in, const void* out) {
  if (g_point == g_trace_point && g_mode == Mode::kTransient)
    rb::say("  %s(n=%zu, align=%zu, in=%p) = %p, errno %d, countdown %ld", call, n, align, in, out,
            errno, countdown());
}

// Called after every operation: a failure was injected iff the countdown reached 0. In transient
// mode the hook is then disarmed, so all further OS calls succeed.
void after_op() {
  if (g_mode != Mode::kCount && countdown() == 0) {
    g_fired = true;
    if (g_mode == Mode::kTransient) mallard::os::set_fault_countdown(-1);
  }
  mallard_check_heap();
}

// A call reported failure: allowed only if it happened while an OS call was failing.
void check_failure(const char* call, std::size_t n, std::size_t align, int err) {
  RB_CHECK(err == ENOMEM, "[%s point %ld] %s(n=%zu, align=%zu) failed with errno %d, not ENOMEM",
           g_config, g_point, call, n, align, err);
  RB_CHECK(g_mode != Mode::kCount && countdown() == 0,
           "[%s point %ld] %s(n=%zu, align=%zu) failed although no OS call failed (countdown "
           "%ld, mode %d)",
           g_config, g_point, call, n, align, countdown(), static_cast<int>(g_mode));
}

void check_block(const char* call, const Slot& s, bool zeroed) {
  std::size_t a = s.align < 16 ? 16 : s.align;
  RB_CHECK(rb::aligned(s.p, a), "[%s point %ld] %s(n=%zu, align=%zu) returned misaligned %p",
           g_config, g_point, call, s.n, s.align, s.p);
  std::size_t usable = mallard_malloc_usable_size(s.p);
  RB_CHECK(usable >= s.n, "[%s point %ld] %s(n=%zu): usable size %zu", g_config, g_point, call, s.n,
           usable);
  if (zeroed)
    RB_CHECK(rb::all_zero(s.p, s.n), "[%s point %ld] %s(n=%zu): not zeroed", g_config, g_point,
             call, s.n);
}

// Sizes weighted towards what makes OS calls: large spans (each free purges at once with
// decay_ms=0) and huge blocks (mmap, mremap); a few multi-MiB ones need new segments.
std::size_t random_size(Rng& r) {
  unsigned k = static_cast<unsigned>(r.below(100));
  if (k < 3) return 0;
  if (k < 45) return 1 + r.below(2048);
  if (k < 65) return 2048 + r.below(30 * 1024);
  if (k < 93) return 32 * 1024 + r.below(224 * 1024);  // large spans, and huge from 128 KiB
  return (256 << 10) + r.below(3 << 20);               // huge, or multi-segment spans
}

std::size_t g_max_align = kHugeAlign;

std::size_t random_alignment(Rng& r) {
  static const std::size_t kAligns[] = {16, 32, 64, 256, 4096, 8192, 65536, 1 << 21, kHugeAlign};
  std::size_t a = kAligns[r.below(sizeof kAligns / sizeof kAligns[0])];
  return a > g_max_align ? g_max_align : a;
}

void set_block(Slot& s, void* p, std::size_t n, std::size_t align, How how) {
  s = Slot{p, n, align, g_next_tag++, how};
}

// Allocates into the empty slot s with a random member of the API.
void allocate(Rng& r, Slot& s) {
  std::size_t n = random_size(r);
  unsigned which = static_cast<unsigned>(r.below(12));
  std::size_t align = 0;
  void* p = nullptr;
  const char* call = "";
  bool zeroed = false;
  How how = How::kMalloc;
  errno = 0;
  switch (which) {
    case 0:
    case 1:
      call = "malloc";
      p = mallard_malloc(n);
      break;
    case 2: {
      call = "calloc";
      std::size_t count = 1 + r.below(8);
      n = n / count;
      p = mallard_calloc(count, n);
      n *= count;
      zeroed = true;
      break;
    }
    case 3:
      call = "realloc(NULL)";
      p = mallard_realloc(nullptr, n);
      break;
    case 4:
      call = "reallocarray(NULL)";
      p = mallard_reallocarray(nullptr, 1, n);
      break;
    case 5:
      call = "aligned_alloc";
      align = random_alignment(r);
      p = mallard_aligned_alloc(align, n);
      break;
    case 6: {
      call = "posix_memalign";
      align = random_alignment(r);
      void* out = &g_slots[0];  // a sentinel that must survive a failure
      int rc = mallard_posix_memalign(&out, align, n);
      if (rc != 0) {
        RB_CHECK(out == &g_slots[0], "[%s point %ld] posix_memalign failed but wrote *memptr",
                 g_config, g_point);
        check_failure(call, n, align, rc);
        return;
      }
      p = out;
      break;
    }
    case 7:
      call = "memalign";
      align = random_alignment(r);
      p = mallard_memalign(align, n);
      break;
    case 8:
      call = "valloc";
      align = 4096;
      p = mallard_valloc(n);
      break;
    case 9: {
      call = "pvalloc";
      align = 4096;
      p = mallard_pvalloc(n);
      break;
    }
#ifdef RB_STANDARD_NAMES
    case 10:
      // operator new is Mallard's only when it owns the standard names (not in sanitizer builds).
      call = "operator new";
      how = How::kNew;
      try {
        p = ::operator new(n);
      } catch (const std::bad_alloc&) {
        check_failure(call, n, 0, ENOMEM);
        return;
      }
      break;
    case 11:
      if (r.chance(50)) {
        call = "operator new(nothrow)";
        p = ::operator new(n, std::nothrow);
        if (p == nullptr) {
          check_failure(call, n, 0, ENOMEM);
          return;
        }
        how = How::kNew;
      } else {
        call = "operator new(align_val_t)";
        align = random_alignment(r);
        how = How::kNewAligned;
        try {
          p = ::operator new (n, std::align_val_t{align});
        } catch (const std::bad_alloc&) {
          check_failure(call, n, align, ENOMEM);
          return;
        }
      }
      break;
#endif
    default:
      call = "malloc";
      p = mallard_malloc(n);
      break;
  }
  trace(call, n, align, nullptr, p);
  if (p == nullptr) {
    check_failure(call, n, align, errno);
    return;
  }
  set_block(s, p, n, align, how);
  check_block(call, s, zeroed);
  rb::fill(p, n, s.tag);
}

void release(Slot& s) {
  trace("free", s.n, s.align, s.p, nullptr);
  rb::check_pattern(s.p, s.n, s.tag, "before free");
  switch (s.how) {
    case How::kMalloc:
      mallard_free(s.p);
      break;
#ifdef RB_STANDARD_NAMES
    case How::kNew:
      ::operator delete(s.p);
      break;
    case How::kNewAligned:
      ::operator delete (s.p, std::align_val_t{s.align});
      break;
#else
    default:
      mallard_free(s.p);
#endif
  }
  s.p = nullptr;
}

void resize(Rng& r, Slot& s) {
  if (s.how != How::kMalloc) return release(s);
  std::size_t n = random_size(r);
  if (n == 0) n = 1;  // realloc(p, 0) frees: tested elsewhere
  bool array = r.chance(30);
  errno = 0;
  void* q = array ? mallard_reallocarray(s.p, 1, n) : mallard_realloc(s.p, n);
  const char* call = array ? "reallocarray" : "realloc";
  trace(call, n, 0, s.p, q);
  if (q == nullptr) {
    check_failure(call, n, 0, errno);
    rb::check_pattern(s.p, s.n, s.tag, "after a failed realloc");  // the old block is intact
    return;
  }
  std::size_t keep = n < s.n ? n : s.n;
  std::size_t bad = rb::find_damage(q, keep, s.n, s.tag);
  RB_CHECK(bad == SIZE_MAX, "[%s point %ld] %s(%p [%zu bytes], %zu) = %p lost the contents at %zu",
           g_config, g_point, call, s.p, s.n, n, q, bad);
  s.p = q;
  s.n = n;
  s.align = 0;
  check_block(call, s, false);
  rb::fill(q, n, s.tag);
}

// A short-lived thread: allocates into the given empty slots, frees one block of the caller's
// (a cross-thread free) and exits, abandoning its pages to the arena.
struct SubThreadWork {
  std::uint64_t seed;
  int victim;      // slot to free (-1: none)
  int targets[6];  // empty slots to fill
  int target_count;
};

void* sub_thread_main(void* arg) {
  auto* w = static_cast<SubThreadWork*>(arg);
  Rng r{w->seed};
  if (w->victim >= 0) {
    release(g_slots[w->victim]);
    after_op();
  }
  for (int i = 0; i < w->target_count; ++i) {
    allocate(r, g_slots[w->targets[i]]);
    after_op();
  }
  return nullptr;
}

void sub_thread(Rng& r) {
  SubThreadWork w{r.next(), -1, {}, 0};
  for (int i = 0; i < kSlots && w.target_count < 6; ++i)
    if (g_slots[i].p == nullptr && r.chance(50)) w.targets[w.target_count++] = i;
  int start = static_cast<int>(r.below(kSlots));
  for (int k = 0; k < kSlots; ++k) {
    int i = (start + k) % kSlots;
    if (g_slots[i].p != nullptr) {
      w.victim = i;
      break;
    }
  }
  pthread_t t;
  // pthread_create may itself call the process's malloc (Mallard's when it owns the standard
  // names), which may fail with the injected error: then there is simply no thread.
  if (pthread_create(&t, nullptr, sub_thread_main, &w) != 0) {
    after_op();
    return;
  }
  pthread_join(t, nullptr);
  after_op();
}

void free_all() {
  for (Slot& s : g_slots)
    if (s.p != nullptr) release(s);
}

// The workload: `ops` random operations from the seed, then everything freed.
void workload(std::uint64_t seed, int ops) {
  Rng r{seed};
  for (int op = 0; op < ops; ++op) {
    Slot& s = g_slots[r.below(kSlots)];
    unsigned k = static_cast<unsigned>(r.below(100));
    if (k < 2) {
      sub_thread(r);
      continue;
    }
    if (k < 4) {
      mallard_malloc_trim(0);
      trace("malloc_trim", 0, 0, nullptr, nullptr);
    } else if (s.p == nullptr) {
      allocate(r, s);
    } else if (k < 45) {
      release(s);
    } else if (k < 80) {
      resize(r, s);
    } else {
      std::size_t usable = mallard_malloc_usable_size(s.p);
      RB_CHECK(usable >= s.n, "usable size %zu < %zu", usable, s.n);
      rb::check_pattern(s.p, s.n, s.tag, "usable size check");
    }
    after_op();
  }
  free_all();
  after_op();
}

struct RunArgs {
  std::uint64_t seed;
  int ops;
  long calls;  // out (count mode): OS calls made
};

// Runs the workload in a fresh thread, so that the thread's heap (its current pages) goes back
// to the arena at exit and every run starts from the same state.
void* run_main(void* arg) {
  auto* a = static_cast<RunArgs*>(arg);
  if (g_mode == Mode::kCount)
    mallard::os::set_fault_countdown(LONG_MAX);
  else
    mallard::os::set_fault_countdown(g_point);
  workload(a->seed, a->ops);
  if (g_mode == Mode::kCount) a->calls = LONG_MAX - countdown();
  mallard::os::set_fault_countdown(-1);
  return nullptr;
}

struct Baseline {
  rb::InUse in_use;
  std::size_t mapped, segments, unaccounted_vm;
};

// VmSize not explained by Mallard's mappings: must not grow from run to run.
std::size_t unaccounted_vm(const mallard_stats& s) {
  return rb::vm_size() - s.bytes_mapped - mallard::segment_map::mapped_bytes() -
         mallard::meta_pool().bytes_mapped();
}

Baseline measure() {
  mallard_malloc_trim(0);
  mallard_stats s = rb::stats();
  return {rb::in_use(), s.bytes_mapped, s.segments, unaccounted_vm(s)};
}

long run_once(std::uint64_t seed, int ops, const Baseline* want) {
  RunArgs a{seed, ops, 0};
  pthread_t t;
  RB_CHECK(pthread_create(&t, nullptr, run_main, &a) == 0, "pthread_create");
  pthread_join(t, nullptr);
  mallard_check_heap();
  if (want != nullptr) {
    char when[160];
    snprintf(when, sizeof when, "[%s point %ld mode %d] all freed", g_config, g_point,
             static_cast<int>(g_mode));
    rb::check_in_use(want->in_use, when);
    Baseline now = measure();
    mallard_check_heap();
    RB_CHECK(now.mapped == want->mapped && now.segments == want->segments,
             "[%s point %ld] after trim: %zu bytes mapped in %zu segments, expected %zu in %zu",
             g_config, g_point, now.mapped, now.segments, want->mapped, want->segments);
    RB_CHECK(kSanitizerMapsMemory || now.unaccounted_vm <= want->unaccounted_vm,
             "[%s point %ld] VmSize grew by %zu bytes not accounted for by Mallard's mappings "
             "(a mapping lost on a failure path?)",
             g_config, g_point, now.unaccounted_vm - want->unaccounted_vm);
  }
  return a.calls;
}

struct Config {
  const char* name;
  const char* options[6][2];
  std::size_t max_align;
};

// Deterministic runs: no purger thread, one arena (every thread's pages come from the same
// place), a fixed mmap threshold, and either purging at once or only on trim.
const Config kConfigs[] = {
    {"brk, purge at once",
     {{"background_purge", "0"},
      {"arena_max", "1"},
      {"decay_ms", "0"},
      {"heap_source", "brk"},
      {"mmap_threshold", "128k"},
      {"mmap_max", "65536"}},
     kHugeAlign},
    {"mmap, purge on trim, no huge blocks",
     {{"background_purge", "0"},
      {"arena_max", "1"},
      {"decay_ms", "1000000000"},
      {"heap_source", "mmap"},
      {"mmap_threshold", "128k"},
      {"mmap_max", "0"}},
     kHugeAlign / 2},
};

// Sweeps the failure points of `seeds` workloads under one configuration. Returns points tested.
long sweep(const Config& c, long stride, int ops, std::uint64_t seed0, int seeds) {
  g_config = c.name;
  g_max_align = c.max_align;
  for (const auto& kv : c.options)
    RB_CHECK(mallard_option_set(kv[0], kv[1]) == 0, "option %s=%s", kv[0], kv[1]);
  long tested = 0, not_fired = 0, min_calls = LONG_MAX, max_calls = 0;
  for (int k = 0; k < seeds; ++k) {
    std::uint64_t seed = seed0 + static_cast<std::uint64_t>(k) * 7919;
    g_mode = Mode::kCount;
    g_point = -1;
    run_once(seed, ops, nullptr);  // warm-up: arenas, heap records, thread stacks
    Baseline base = measure();
    // The number of OS calls is not exactly reproducible: it depends on addresses (whether a
    // huge block can grow in place, whether a segment lands in a new 32 GiB region of the
    // segment map, where an alignment above 4 MiB falls). Points beyond a run's last call are
    // allowed not to fire, a few of them.
    long calls = run_once(seed, ops, &base);
    for (Mode m : {Mode::kTransient, Mode::kPersistent}) {
      for (long point = 0; point < calls; point += stride) {
        g_mode = m;
        g_point = point;
        g_fired = false;
        run_once(seed, ops, &base);
        ++tested;
        if (!g_fired) ++not_fired;
      }
    }
    g_mode = Mode::kCount;
    g_point = -1;
    long again = run_once(seed, ops, &base);  // everything works again afterwards
    min_calls = std::min({min_calls, calls, again});
    max_calls = std::max({max_calls, calls, again});
  }
  RB_CHECK(not_fired * 20 <= tested, "[%s] %ld of %ld failure points never fired", c.name,
           not_fired, tested);
  rb::say(
      "fault_injection: [%s] %d workloads of %d operations, %ld..%ld OS calls each: %ld "
      "failure points tested (transient and persistent), %ld beyond the end of their run",
      c.name, seeds, ops, min_calls, max_calls, tested, not_fired);
  return tested;
}

// glibc caches thread stacks, each with its TLS vector (DTV), which it allocates with the
// process's calloc: Mallard's when Mallard owns the standard names. A DTV made during a measured
// run would count as a live block (and could pin the top of the brk heap). Four stacks made now,
// at once, cover the two threads the test ever runs together.
void* wait_at_barrier(void* b) {
  pthread_barrier_wait(static_cast<pthread_barrier_t*>(b));
  return nullptr;
}
void prewarm_thread_stacks() {
  constexpr int kThreads = 4;
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, nullptr, kThreads + 1);
  pthread_t t[kThreads];
  for (pthread_t& th : t)
    RB_CHECK(pthread_create(&th, nullptr, wait_at_barrier, &barrier) == 0, "pthread_create");
  pthread_barrier_wait(&barrier);
  for (pthread_t& th : t) pthread_join(th, nullptr);
  pthread_barrier_destroy(&barrier);
}

}  // namespace

int main(int argc, char** argv) {
  rb::g_prog = "fault_injection";
  if (const char* t = getenv("RB_TRACE")) g_trace_point = strtol(t, nullptr, 0);
  long stride = rb::arg(argc, argv, 1, 1);
  int ops = static_cast<int>(rb::arg(argc, argv, 2, 250));
  int seeds = static_cast<int>(rb::arg(argc, argv, 3, 8));
  auto seed0 = static_cast<std::uint64_t>(rb::arg(argc, argv, 4, 12345));
  RB_CHECK(stride >= 1 && ops >= 1 && seeds >= 1,
           "usage: fault_injection [STRIDE [OPS [SEEDS [SEED]]]]");
  double t0 = rb::now_s();
  prewarm_thread_stacks();
  // One child process per configuration (options are process-wide), run in parallel.
  pid_t pids[sizeof kConfigs / sizeof kConfigs[0]];
  int n = 0;
  for (const Config& c : kConfigs) {
    pid_t pid = fork();
    RB_CHECK(pid >= 0, "fork: errno %d", errno);
    if (pid == 0) {
      sweep(c, stride, ops, seed0, seeds);
      _exit(0);
    }
    pids[n++] = pid;
  }
  bool ok = true;
  for (int i = 0; i < n; ++i) {
    int status = 0;
    RB_CHECK(waitpid(pids[i], &status, 0) == pids[i], "waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      rb::say("fault_injection: configuration '%s' failed (status 0x%x)", kConfigs[i].name, status);
      ok = false;
    }
  }
  RB_CHECK(ok, "see above");
  rb::say("fault_injection: ok in %.1f s", rb::now_s() - t0);
  return 0;
}
