/* it_common.h: helpers shared by the black-box stress programs in tests/integration.
 *
 * - it_setup(): takes the library under test from argv[1] (or $MALLARD_LIB), re-executes the
 *   program with LD_PRELOAD=LIB if needed, then verifies that `malloc` and `free` really resolve
 *   into LIB (ld.so silently ignores a library it cannot preload). "none" or "" = no preload.
 * - it_fail(): prints "PROG: FAIL: ..." to stderr and exits 1 (safe from any thread).
 * - a small deterministic RNG, RSS / VmSize from /proc/self/statm, and block patterns derived
 *   from (address, size) used to detect corruption and lost writes.
 * Only the standard malloc family and pthreads are used to allocate. */
#ifndef MALLARD_IT_COMMON_H
#define MALLARD_IT_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

inline const char* g_it_prog = "test";

[[noreturn]] __attribute__((format(printf, 1, 2))) inline void it_fail(const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fflush(stdout);
  fprintf(stderr, "%s: FAIL: %s\n", g_it_prog, msg);
  _exit(1);
}

#define IT_CHECK(cond, ...)            \
  do {                                 \
    if (!(cond)) it_fail(__VA_ARGS__); \
  } while (0)

/* Where does the process's `sym` come from? Returns the real path of the defining object. */
inline bool it_symbol_file(const char* sym, char* out, size_t outlen) {
  void* addr = dlsym(RTLD_DEFAULT, sym);
  Dl_info info;
  if (addr == nullptr || dladdr(addr, &info) == 0 || info.dli_fname == nullptr) return false;
  char real[PATH_MAX];
  if (realpath(info.dli_fname, real) == nullptr) return false;
  snprintf(out, outlen, "%s", real);
  return true;
}

/* Handles the LIB argument; returns the index of the first argument after it. */
inline int it_setup(int argc, char** argv, const char* name) {
  g_it_prog = name;
  const char* lib = argc > 1 ? argv[1] : getenv("MALLARD_LIB");
  int next = argc > 1 ? 2 : 1;
  if (lib == nullptr || *lib == '\0' || strcmp(lib, "none") == 0) {
    printf("%s: no library given: running with the default malloc\n", name);
    return next;
  }
  char real[PATH_MAX], from_malloc[PATH_MAX] = "?", from_free[PATH_MAX] = "?";
  if (realpath(lib, real) == nullptr) it_fail("library %s: %s", lib, strerror(errno));
  bool ok = it_symbol_file("malloc", from_malloc, sizeof from_malloc) &&
            it_symbol_file("free", from_free, sizeof from_free) && strcmp(from_malloc, real) == 0 &&
            strcmp(from_free, real) == 0;
  if (!ok) {
    if (getenv("MALLARD_IT_REEXEC") != nullptr)
      it_fail("LD_PRELOAD=%s did not take effect: malloc is from %s, free from %s", real,
              from_malloc, from_free);
    const char* old = getenv("LD_PRELOAD");
    char preload[2 * PATH_MAX + 8];
    snprintf(preload, sizeof preload, "%s%s%s", real, old ? " " : "", old ? old : "");
    setenv("LD_PRELOAD", preload, 1);
    setenv("MALLARD_IT_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    it_fail("execv(/proc/self/exe): %s", strerror(errno));
  }
  unsetenv("MALLARD_IT_REEXEC");
  printf("%s: malloc and free come from %s\n", name, real);
  fflush(stdout);
  return next;
}

/* Parses argv[i] as a number if present, else returns dflt. */
inline long it_arg(int argc, char** argv, int i, long dflt) {
  if (i >= argc) return dflt;
  char* end;
  long v = strtol(argv[i], &end, 0);
  if (*argv[i] == '\0' || *end != '\0') it_fail("bad numeric argument '%s'", argv[i]);
  return v;
}

/* splitmix64: small, fast, deterministic. */
struct it_rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return (size_t)(next() % n); }                /* [0, n) */
  size_t range(size_t lo, size_t hi) { return lo + below(hi - lo + 1); } /* [lo, hi] */
};

inline double it_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Field 0 (VmSize) or 1 (resident) of /proc/self/statm, in bytes. */
inline size_t it_statm(int field) {
  FILE* f = fopen("/proc/self/statm", "r");
  if (f == nullptr) it_fail("open /proc/self/statm: %s", strerror(errno));
  unsigned long v[2] = {0, 0};
  int n = fscanf(f, "%lu %lu", &v[0], &v[1]);
  fclose(f);
  if (n != 2) it_fail("cannot parse /proc/self/statm");
  return (size_t)v[field] * (size_t)sysconf(_SC_PAGESIZE);
}
inline size_t it_rss(void) {
  return it_statm(1);
}
inline size_t it_vmsize(void) {
  return it_statm(0);
}
constexpr size_t IT_MiB = 1024 * 1024;

/* Bytes in MiB, for messages. */
inline double it_mib(size_t b) {
  return (double)b / IT_MiB;
}

/* Pattern of a block keyed by (address, size): word i is key ^ (i * odd constant). */
inline uint64_t it_key(uintptr_t addr, size_t size) {
  uint64_t k = (uint64_t)addr * 0xD6E8FEB86659FD93ull ^ (uint64_t)size * 0x9E3779B97F4A7C15ull;
  return k ^ (k >> 32);
}
/* Fills the first n bytes of p with the pattern of a block (addr, size). */
inline void it_fill_from(void* p, size_t n, uintptr_t addr, size_t size) {
  uint64_t key = it_key(addr, size);
  unsigned char* b = (unsigned char*)p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = key ^ (i * 0xA24BAED4963EE407ull);
    memcpy(b + 8 * i, &w, 8);
  }
  uint64_t last = key ^ (words * 0xA24BAED4963EE407ull);
  for (size_t j = 8 * words; j < n; j++) b[j] = (unsigned char)(last >> (8 * (j % 8)));
}
inline void it_fill(void* p, size_t size) {
  it_fill_from(p, size, (uintptr_t)p, size);
}
/* Checks the first n bytes of p against the pattern a block (addr, size) was filled with.
 * Returns the offset of the first bad byte, or SIZE_MAX if all good. */
inline size_t it_check_from(const void* p, size_t n, uintptr_t addr, size_t size) {
  uint64_t key = it_key(addr, size);
  const unsigned char* b = (const unsigned char*)p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = key ^ (i * 0xA24BAED4963EE407ull), got;
    memcpy(&got, b + 8 * i, 8);
    if (got != w) {
      for (size_t j = 0; j < 8; j++)
        if ((unsigned char)(got >> (8 * j)) != (unsigned char)(w >> (8 * j))) return 8 * i + j;
    }
  }
  uint64_t last = key ^ (words * 0xA24BAED4963EE407ull);
  for (size_t j = 8 * words; j < n; j++)
    if (b[j] != (unsigned char)(last >> (8 * (j % 8)))) return j;
  return SIZE_MAX;
}
/* Fails if block p of `size` bytes lost its pattern. */
inline void it_check(const void* p, size_t size, const char* what) {
  size_t bad = it_check_from(p, size, (uintptr_t)p, size);
  if (bad != SIZE_MAX)
    it_fail("%s: block %p of %zu bytes corrupted at offset %zu", what, p, size, bad);
}

#endif /* MALLARD_IT_COMMON_H */
