// rb_common.h: helpers shared by the robustness programs in tests/robustness (not a test itself):
// failure reporting that never allocates, a deterministic RNG, block patterns keyed by a tag (so
// a block moved by realloc can still be checked), exact statistics and the process's VmSize.
// Everything here goes through the prefixed API only, so it works whether or not Mallard also
// owns the standard names (sanitizer presets export only mallard_*).
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "mallard/mallard.h"

namespace rb {

inline const char* g_prog = "robustness";

// Prints "PROG: FAIL: ..." with write(2) (no allocation: safe while OS failures are injected,
// from any thread, in a forked child) and exits 1.
[[noreturn]] __attribute__((format(printf, 1, 2))) inline void fail(const char* fmt, ...) {
  char msg[1024];
  int off = snprintf(msg, sizeof msg, "%s: FAIL: ", g_prog);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg + off, sizeof msg - static_cast<std::size_t>(off) - 1, fmt, ap);
  va_end(ap);
  std::size_t len = strlen(msg);
  msg[len++] = '\n';
  if (write(2, msg, len) < 0) {
  }
  _exit(1);
}

#define RB_CHECK(cond, ...)               \
  do {                                    \
    if (!(cond)) ::rb::fail(__VA_ARGS__); \
  } while (0)

// Prints one line to stdout with write(2).
__attribute__((format(printf, 1, 2))) inline void say(const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg - 1, fmt, ap);
  va_end(ap);
  std::size_t len = n < 0                                          ? 0
                    : static_cast<std::size_t>(n) < sizeof msg - 1 ? static_cast<std::size_t>(n)
                                                                   : sizeof msg - 2;
  msg[len++] = '\n';
  if (write(1, msg, len) < 0) {
  }
}

// splitmix64: small, fast, deterministic.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  bool chance(unsigned percent) { return below(100) < percent; }
};

inline double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---- block patterns ----
// Byte i of a block tagged `tag` is pattern_byte(tag, i). Blocks up to kDenseLimit bytes are
// filled and checked entirely; bigger ones at their first and last 4 KiB and 8 bytes every
// kSparseStep (enough to catch overlap, lost pages and bad copies without faulting in every page
// of multi-MiB blocks).
inline constexpr std::size_t kDenseLimit = 64 * 1024;
inline constexpr std::size_t kSparseStep = 16 * 4096;

inline unsigned char pattern_byte(std::uint64_t tag, std::size_t i) {
  std::uint64_t x = (tag + i / 8) * 0x9E3779B97F4A7C15ull;
  return static_cast<unsigned char>((x >> (8 * (i % 8))) ^ (x >> 56));
}

template <class F>
inline void for_each_sampled(std::size_t n, F f) {
  if (n <= kDenseLimit) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  for (std::size_t i = 0; i < 4096; ++i) f(i);
  for (std::size_t page = kSparseStep; page + 8 <= n - 4096; page += kSparseStep)
    for (std::size_t i = page; i < page + 8; ++i) f(i);
  for (std::size_t i = n - 4096; i < n; ++i) f(i);
}

inline void fill(void* p, std::size_t n, std::uint64_t tag) {
  auto* b = static_cast<unsigned char*>(p);
  for_each_sampled(n, [&](std::size_t i) { b[i] = pattern_byte(tag, i); });
}

// Offset of the first byte that fill(p, filled, tag) wrote below `keep` and that no longer holds
// the pattern, or SIZE_MAX. (keep < filled: the part realloc kept of a shrunk block.)
inline std::size_t find_damage(const void* p, std::size_t keep, std::size_t filled,
                               std::uint64_t tag) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::size_t bad = SIZE_MAX;
  for_each_sampled(filled, [&](std::size_t i) {
    if (bad == SIZE_MAX && i < keep && b[i] != pattern_byte(tag, i)) bad = i;
  });
  return bad;
}
inline std::size_t find_damage(const void* p, std::size_t n, std::uint64_t tag) {
  return find_damage(p, n, n, tag);
}

inline void check_pattern(const void* p, std::size_t n, std::uint64_t tag, const char* what) {
  std::size_t bad = find_damage(p, n, tag);
  RB_CHECK(bad == SIZE_MAX, "%s: block %p of %zu bytes damaged at offset %zu", what, p, n, bad);
}

inline bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  bool zero = true;
  for_each_sampled(n, [&](std::size_t i) { zero &= b[i] == 0; });
  return zero;
}

inline bool aligned(const void* p, std::size_t a) {
  return a == 0 || reinterpret_cast<std::uintptr_t>(p) % a == 0;
}

// ---- statistics ----
inline mallard_stats stats() {
  mallard_stats s;
  mallard_get_stats(&s);
  return s;
}

// The live-byte figures that must come back exactly once every block is freed.
struct InUse {
  std::size_t total, small, large, huge, huge_blocks;
  bool operator==(const InUse&) const = default;
};
inline InUse in_use() {
  mallard_stats s = stats();
  return {s.bytes_in_use, s.bytes_small, s.bytes_large, s.bytes_huge, s.huge_blocks};
}
inline void check_in_use(const InUse& want, const char* when) {
  InUse got = in_use();
  RB_CHECK(got == want,
           "%s: bytes in use %zu (small %zu, large %zu, huge %zu in %zu blocks), expected %zu "
           "(small %zu, large %zu, huge %zu in %zu blocks)",
           when, got.total, got.small, got.large, got.huge, got.huge_blocks, want.total, want.small,
           want.large, want.huge, want.huge_blocks);
}

// VmSize of this process in bytes, read without stdio (no allocation).
inline std::size_t vm_size() {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  RB_CHECK(fd >= 0, "open /proc/self/statm: errno %d", errno);
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  RB_CHECK(n > 0, "read /proc/self/statm");
  std::size_t pages = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i)
    pages = pages * 10 + static_cast<std::size_t>(buf[i] - '0');
  return pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Parses argv[i] as a number if present, else returns dflt.
inline long arg(int argc, char** argv, int i, long dflt) {
  if (i >= argc) return dflt;
  char* end;
  long v = strtol(argv[i], &end, 0);
  RB_CHECK(*argv[i] != '\0' && *end == '\0', "bad numeric argument '%s'", argv[i]);
  return v;
}

}  // namespace rb
