// errno_contract.cpp: errno across injected OS failures (mallard_fault_injection). glibc's free
// never changes errno (since 2.33), whatever fails inside it; and no allocation call should show
// errno from a system call that failed on its way to a success (a purge refused, a brk refused
// before an mmap, an in-place mremap refused before a move). For every failure point of a
// workload of malloc, calloc, realloc (grow, shrink, move), posix_memalign, aligned_alloc and
// free of small, large and huge blocks (decay_ms=0: every free of a span purges, so frees make
// OS calls), with one OS call failing (transient) or every call from that point on (persistent):
//   - free and realloc(p, 0) leave errno as it was;
//   - a call that succeeds leaves errno as it was;
//   - a call that fails sets errno to ENOMEM (posix_memalign: returns ENOMEM and, as glibc's,
//     sets errno to ENOMEM too).
// Usage: errno_contract [OPS [SEEDS [SEED]]] (defaults: 4 workloads of 400 operations, seed 777).
#include <errno.h>

#include <climits>
#include <cstdint>
#include <initializer_list>

#include "os/os.hpp"
#include "rb_common.h"

namespace {

constexpr int kSlots = 32;
constexpr int kSentinel = EDOM;  // a value no allocator path sets

void* g_slots[kSlots];
long g_point = -1;
bool g_transient = false;
const char* g_mode_name = "count";

void check_errno(const char* call, std::size_t n, bool failed) {
  int e = errno;
  int want = failed ? ENOMEM : kSentinel;
  RB_CHECK(e == want, "[%s point %ld] %s(n=%zu) %s with errno %d, expected %d (countdown %ld)",
           g_mode_name, g_point, call, n, failed ? "failed" : "succeeded", e, want,
           mallard::os::fault_countdown());
}

// After each call: in transient mode, a failure that has fired is disarmed.
void after_op() {
  if (g_transient && mallard::os::fault_countdown() == 0) mallard::os::set_fault_countdown(-1);
}

std::size_t random_size(rb::Rng& r) {
  unsigned k = static_cast<unsigned>(r.below(100));
  if (k < 40) return 1 + r.below(2048);
  if (k < 55) return 2048 + r.below(60 * 1024);
  if (k < 85) return 64 * 1024 + r.below(64 * 1024);  // large spans
  return (128 << 10) + r.below(2 << 20);              // huge blocks
}

void free_slot(int i) {
  errno = kSentinel;
  mallard_free(g_slots[i]);
  check_errno("free", 0, false);
  g_slots[i] = nullptr;
  after_op();
}

void op(rb::Rng& r) {
  int i = static_cast<int>(r.below(kSlots));
  if (g_slots[i] != nullptr) {
    if (r.chance(50)) {
      free_slot(i);
      return;
    }
    if (r.chance(10)) {  // realloc(p, 0) frees, as glibc
      errno = kSentinel;
      void* q = mallard_realloc(g_slots[i], 0);
      RB_CHECK(q == nullptr, "realloc(p, 0) returned %p", q);
      check_errno("realloc(p, 0)", 0, false);
      g_slots[i] = nullptr;
      after_op();
      return;
    }
    std::size_t n = random_size(r);
    errno = kSentinel;
    void* q = mallard_realloc(g_slots[i], n);
    check_errno("realloc", n, q == nullptr);
    if (q != nullptr) g_slots[i] = q;
    after_op();
    return;
  }
  std::size_t n = random_size(r);
  void* p = nullptr;
  const char* call = "malloc";
  errno = kSentinel;
  switch (r.below(4)) {
    case 0:
      p = mallard_malloc(n);
      break;
    case 1:
      call = "calloc";
      p = mallard_calloc(1, n);
      break;
    case 2: {
      call = "posix_memalign";
      int rc = mallard_posix_memalign(&p, std::size_t{64} << r.below(8), n);
      RB_CHECK(rc == 0 || rc == ENOMEM, "posix_memalign returned %d", rc);
      if (rc != 0) p = nullptr;
      break;
    }
    default:
      call = "aligned_alloc";
      p = mallard_aligned_alloc(std::size_t{4096} << r.below(4), n);
      break;
  }
  check_errno(call, n, p == nullptr);
  g_slots[i] = p;
  after_op();
}

// One run: the workload from `seed`, then everything freed with the failure disarmed.
long run(std::uint64_t seed, int ops) {
  rb::Rng r{seed};
  for (int k = 0; k < ops; ++k) op(r);
  long left = mallard::os::fault_countdown();
  mallard::os::set_fault_countdown(-1);
  for (int i = 0; i < kSlots; ++i)
    if (g_slots[i] != nullptr) free_slot(i);
  mallard_malloc_trim(0);
  return left;
}

}  // namespace

int main(int argc, char** argv) {
  rb::g_prog = "errno_contract";
  int ops = static_cast<int>(rb::arg(argc, argv, 1, 400));
  int seeds = static_cast<int>(rb::arg(argc, argv, 2, 4));
  auto seed0 = static_cast<std::uint64_t>(rb::arg(argc, argv, 3, 777));
  RB_CHECK(ops >= 1 && seeds >= 1, "usage: errno_contract [OPS [SEEDS [SEED]]]");
  RB_CHECK(mallard_option_set("decay_ms", "0") == 0, "option decay_ms");
  long tested = 0, total_calls = 0;
  for (int k = 0; k < seeds; ++k) {
    std::uint64_t seed = seed0 + static_cast<std::uint64_t>(k) * 7919;
    g_transient = false;
    g_mode_name = "count";
    g_point = -1;
    run(seed, ops);  // warm-up: arena, heap record, segment map
    mallard::os::set_fault_countdown(LONG_MAX);
    long calls = LONG_MAX - run(seed, ops);
    RB_CHECK(calls > 20, "the workload made only %ld OS calls", calls);
    total_calls += calls;
    for (bool transient : {true, false}) {
      g_transient = transient;
      g_mode_name = transient ? "transient" : "persistent";
      for (g_point = 0; g_point < calls; ++g_point) {
        mallard::os::set_fault_countdown(g_point);
        run(seed, ops);
        ++tested;
      }
    }
  }
  mallard_check_heap();
  rb::say(
      "errno_contract: %ld failure points in %d workloads of %d operations (%ld OS calls): "
      "errno kept",
      tested, seeds, ops, total_calls);
  return 0;
}
