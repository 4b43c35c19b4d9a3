// glibc_ext.cpp: glibc's malloc extensions (mallopt, mallinfo, mallinfo2, malloc_trim,
// malloc_stats, malloc_info) and Mallard's own statistics and option calls (the exit report is
// api/exit_report.cpp).
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <cstring>

#include "api/alloc_inline.hpp"
#include "api/exit_report.hpp"
#include "api/init.hpp"
#include "backend/arena_registry.hpp"
#include "backend/huge.hpp"
#include "backend/purger.hpp"
#include "config/options.hpp"
#include "frontend/heap_registry.hpp"
#include "frontend/thread_heap.hpp"
#include "mallard/mallard.h"
#include "stats/heap_check.hpp"
#include "stats/peak.hpp"
#include "stats/report.hpp"
#include "stats/snapshot.hpp"

using namespace mallard;

#define MALLARD_API extern "C" __attribute__((visibility("default")))
#define MALLARD_ALIAS(target) __attribute__((visibility("default"), alias(#target)))

namespace {

std::size_t purge_everything() {
  api::ensure_initialized();
  std::size_t released = 0;
  heap_registry::reap_dead_threads();
  heap_registry::release_warm_heaps(UINT64_MAX);  // no thread may start to take them
  ThreadHeap* h = tl_heap;
  if (!h->is_sentinel()) released += h->collect_all();
  // Other threads' full pages whose blocks have all come back by remote frees (their owners may
  // idle and never collect them).
  released += heap_registry::reclaim_returned_full_pages(h);
  released += purger::run_decay_pass(true);
  return released;
}

void file_sink(void* context, const char* data, std::size_t len) {
  fwrite(data, 1, len, static_cast<FILE*>(context));
}

// Makes the calling thread non-cancellable for a scope: stdio's writes (fwrite into the caller's
// FILE) are cancellation points, and no Mallard call may be one. A pending cancellation request
// stays pending and acts at the thread's next cancellation point after the call.
class NoCancel {
 public:
  NoCancel() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_); }
  ~NoCancel() { pthread_setcancelstate(old_, nullptr); }
  NoCancel(const NoCancel&) = delete;
  NoCancel& operator=(const NoCancel&) = delete;

 private:
  int old_ = PTHREAD_CANCEL_ENABLE;
};

std::size_t clamp_int(std::size_t v) {
  return v > 0x7fffffff ? 0x7fffffff : v;
}

}  // namespace

MALLARD_API int mallard_mallopt(int param, int value) noexcept {
  api::ensure_initialized();
  // The parameters that are options, bounded by the option table (config::apply_mallopt): a
  // value out of range returns 0 and changes nothing, as glibc's mallopt(3).
  int result = config::apply_mallopt(config::options(), param, value);
  if (result >= 0) {
    if (result == 1 && param == M_ARENA_MAX && value >= 1)
      arenas::set_cap(static_cast<unsigned>(value));
    if (result == 1 && (param == M_MMAP_THRESHOLD || param == M_MMAP_MAX))
      api::refresh_small_limit();
    return result;
  }
  switch (param) {
    case M_ARENA_TEST:
      return value > 0 ? 1 : 0;
    case M_MXFAST:  // as glibc: 0..160 bytes; only what mallinfo and malloc_info call "fast"
      return stats::set_mxfast(value) ? 1 : 0;
    case M_PERTURB:
    case M_CHECK_ACTION:
      return 1;  // accepted; Mallard checks bad pointers always
    default:
      return 0;
  }
}

// glibc's mallinfo2(3): every field in glibc's meaning, as stats::fill_mallinfo2 details
// (smblks and fsmblks follow mxfast: 0 when it is 0).
MALLARD_API struct mallinfo2 mallard_mallinfo2() noexcept {
  api::ensure_initialized();
  struct mallinfo2 mi;
  stats::fill_mallinfo2(&mi);
  return mi;
}

// glibc's mallinfo(3): mallinfo2's fields as int, each capped at INT_MAX (glibc's wrap around).
MALLARD_API struct mallinfo mallard_mallinfo() noexcept {
  struct mallinfo2 m2 = mallard_mallinfo2();
  struct mallinfo mi;
  mi.arena = static_cast<int>(clamp_int(m2.arena));
  mi.ordblks = static_cast<int>(clamp_int(m2.ordblks));
  mi.smblks = static_cast<int>(clamp_int(m2.smblks));
  mi.hblks = static_cast<int>(clamp_int(m2.hblks));
  mi.hblkhd = static_cast<int>(clamp_int(m2.hblkhd));
  mi.usmblks = static_cast<int>(clamp_int(m2.usmblks));
  mi.fsmblks = static_cast<int>(clamp_int(m2.fsmblks));
  mi.uordblks = static_cast<int>(clamp_int(m2.uordblks));
  mi.fordblks = static_cast<int>(clamp_int(m2.fordblks));
  mi.keepcost = static_cast<int>(clamp_int(m2.keepcost));
  return mi;
}

MALLARD_API int mallard_malloc_trim(std::size_t) noexcept {
  return purge_everything() != 0 ? 1 : 0;
}

// glibc's malloc_stats(3), to stderr (file descriptor 2, unbuffered: raw write system calls).
// Not a cancellation point (glibc's is not either): a thread with a pending cancellation request
// prints everything and is cancelled at its next cancellation point.
MALLARD_API void mallard_malloc_stats() noexcept {
  api::ensure_initialized();
  os::TextWriter w(2);
  stats::write_malloc_stats(w);
}

// glibc's malloc_info(3): options must be 0 (else it returns EINVAL, errno untouched, as glibc's
// does) and stream non-null (likewise; glibc would crash).
// Writes with fwrite into the caller's FILE (buffered as the caller set it up), with cancellation
// disabled: unlike glibc's, never a cancellation point (a thread cancelled inside would leave the
// XML cut short and could hold a FILE lock).
MALLARD_API int mallard_malloc_info(int options, void* stream) noexcept {
  if (options != 0 || stream == nullptr) return EINVAL;
  api::ensure_initialized();
  NoCancel no_cancel;
  os::TextWriter w(file_sink, stream);
  stats::write_malloc_info(w);
  return 0;
}

MALLARD_API int mallard_get_stats(mallard_stats* out) noexcept {
  api::ensure_initialized();
  stats::take_snapshot(out);
  return 0;
}

MALLARD_API void mallard_print_report(int fd) noexcept {
  api::ensure_initialized();
  os::TextWriter w(fd);
  stats::write_report_text(w);
}

MALLARD_API void mallard_print_stats_json(int fd) noexcept {
  api::ensure_initialized();
  os::TextWriter w(fd);
  stats::write_report_json(w);
}

MALLARD_API int mallard_option_set(const char* key, const char* value) noexcept {
  api::ensure_initialized();
  if (key == nullptr || value == nullptr) return -1;
  if (!config::set_option(config::options(), key, std::strlen(key), value, std::strlen(value)))
    return -1;
  api::refresh_small_limit();
  if (std::strcmp(key, "report") == 0 || std::strcmp(key, "report_pid") == 0)
    stats::enable_peak_watch(api::reports_here());
  if (std::strcmp(key, "arena_max") == 0 && config::options().arena_max > 0)
    arenas::set_cap(static_cast<unsigned>(config::options().arena_max));
  return 0;
}

MALLARD_API long mallard_option_get(const char* key) noexcept {
  api::ensure_initialized();
  if (key == nullptr) return -1;
  if (std::strcmp(key, "arena_max") == 0) return static_cast<long>(arenas::cap());
  return config::get_option(config::options(), key);
}

MALLARD_API const char* mallard_version() noexcept {
  return MALLARD_VERSION_STRING;
}

MALLARD_API std::size_t mallard_purge() noexcept {
  return purge_everything();
}

#ifndef MALLARD_NO_STANDARD_NAMES  // sanitizer builds keep the standard names for the runtime
extern "C" {
int mallopt(int param, int value) noexcept MALLARD_ALIAS(mallard_mallopt);
struct mallinfo2 mallinfo2() noexcept MALLARD_ALIAS(mallard_mallinfo2);
struct mallinfo mallinfo() noexcept MALLARD_ALIAS(mallard_mallinfo);
int malloc_trim(std::size_t pad) noexcept MALLARD_ALIAS(mallard_malloc_trim);
void malloc_stats() noexcept MALLARD_ALIAS(mallard_malloc_stats);
int malloc_info(int options, FILE* stream) noexcept MALLARD_ALIAS(mallard_malloc_info);
}
#endif

// Late among destructors (priority 101), after the program's own where the linker allows. Here,
// in a file every link takes, so that a static link keeps it.
__attribute__((destructor(101))) static void mallard_report_at_exit() {
  api::report_at_exit();
}

MALLARD_API int mallard_check_heap() noexcept {
  api::ensure_initialized();
  stats::check_heap();
  return 0;
}
