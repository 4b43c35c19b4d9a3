// os_system.cpp: facts about the process and machine (CPUs, clock, RSS, randomness, environment)
// and raw output. Reads /proc and /sys with open/read only: nothing here may allocate.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bit>
#include <cstring>

#include "os/keep_errno.hpp"
#include "os/lock.hpp"
#include "os/os.hpp"
#include "os/race_delay.hpp"

extern char** environ;

namespace mallard::os {

constinit std::atomic<unsigned long> g_fork_holder{0};

namespace {

// The helpers here run inside malloc, free and fork, which keep errno (os/keep_errno.hpp).

// Reads a small file into buf (NUL-terminated). Returns bytes read, or -1. Leaves errno as it was.
// Raw system calls here, in sleep_ms, random_u64 and write_all: the libc wrappers of open, read,
// write, close, nanosleep and getrandom are cancellation points, and no Mallard call (malloc_stats,
// a report, a fork's prepare handler) may be one.
long read_small_file(const char* path, char* buf, std::size_t cap) {
  KeepErrno keep;
  long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  long total = 0;
  while (static_cast<std::size_t>(total) + 1 < cap) {
    long n = syscall(SYS_read, fd, buf + total, cap - 1 - static_cast<std::size_t>(total));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    total += n;
  }
  syscall(SYS_close, fd);
  buf[total] = '\0';
  return total;
}

std::uint64_t parse_u64(const char*& s) {
  std::uint64_t v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + static_cast<std::uint64_t>(*s++ - '0');
  return v;
}

std::atomic<std::size_t> g_max_map_count{0};

// CPUs allowed by the cgroup's CPU quota, or 0 when there is no quota.
unsigned cgroup_cpu_limit() {
  char buf[128];
  std::uint64_t quota = 0, period = 0;
  if (read_small_file("/sys/fs/cgroup/cpu.max", buf, sizeof buf) > 0) {  // cgroup v2
    if (std::strncmp(buf, "max", 3) == 0) return 0;
    const char* s = buf;
    quota = parse_u64(s);
    while (*s == ' ') ++s;
    period = parse_u64(s);
  } else if (read_small_file("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", buf, sizeof buf) > 0) {
    if (buf[0] == '-') return 0;  // v1, -1 means no quota
    const char* s = buf;
    quota = parse_u64(s);
    if (read_small_file("/sys/fs/cgroup/cpu/cpu.cfs_period_us", buf, sizeof buf) <= 0) return 0;
    s = buf;
    period = parse_u64(s);
  }
  if (quota == 0 || period == 0) return 0;
  return static_cast<unsigned>((quota + period - 1) / period);
}

// Value of a "Key:   123 kB" line of /proc/self/status, in bytes.
std::size_t status_field_bytes(const char* key) {
  char buf[4096];
  if (read_small_file("/proc/self/status", buf, sizeof buf) <= 0) return 0;
  const char* line = std::strstr(buf, key);
  if (line == nullptr) return 0;
  const char* s = line + std::strlen(key);
  while (*s == ' ' || *s == '\t' || *s == ':') ++s;
  return static_cast<std::size_t>(parse_u64(s)) * 1024;
}

}  // namespace

unsigned usable_cpu_count() {
  KeepErrno keep;
  unsigned n = 0;
  // The raw system call, and the bits counted here: libc's sched_getaffinity and CPU_COUNT
  // (__sched_cpucount) sit in parts of libc's text a program that only allocates never runs, and
  // each such call costs 64 KiB of resident libc text (see os_clock.cpp). The kernel returns the
  // bytes of its mask it wrote; 1024 CPUs' worth, as glibc's cpu_set_t; more fails (EINVAL).
  unsigned long mask[1024 / (8 * sizeof(unsigned long))] = {};
  long written = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
  for (long i = 0; written > 0 && i < written / static_cast<long>(sizeof mask[0]); ++i)
    n += static_cast<unsigned>(std::popcount(mask[i]));
  if (n == 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? static_cast<unsigned>(c) : 1;
  }
  unsigned limit = cgroup_cpu_limit();
  if (limit != 0 && limit < n) n = limit;
  return n;
}

std::size_t max_map_count() {
  std::size_t v = g_max_map_count.load(std::memory_order_relaxed);
  if (v != 0) return v;
  char buf[32];
  v = 65530;
  if (read_small_file("/proc/sys/vm/max_map_count", buf, sizeof buf) > 0) {
    const char* s = buf;
    std::uint64_t n = parse_u64(s);
    if (n != 0) v = static_cast<std::size_t>(n);
  }
  g_max_map_count.store(v, std::memory_order_relaxed);  // every thread reads the same value
  return v;
}

long thread_count() {
  char buf[1024];
  if (read_small_file("/proc/self/stat", buf, sizeof buf) <= 0) return -1;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields restart after the
  // last ')'. num_threads is field 20, the 18th after comm.
  const char* s = std::strrchr(buf, ')');
  if (s == nullptr) return -1;
  for (int field = 2; field < 20; ++field) {
    s = std::strchr(s + 1, ' ');
    if (s == nullptr) return -1;
  }
  ++s;
  return static_cast<long>(parse_u64(s));
}

void sleep_ms(std::uint64_t ms) {
  KeepErrno keep;
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000};
  // The raw system call: the libc wrapper is a cancellation point.
  while (syscall(SYS_nanosleep, &ts, &ts) != 0 && errno == EINTR) {
  }
}

std::size_t resident_bytes() {
  char buf[128];
  if (read_small_file("/proc/self/statm", buf, sizeof buf) <= 0) return 0;
  const char* s = buf;
  parse_u64(s);  // size
  while (*s == ' ') ++s;
  // The kernel's page (statm counts those), not page_size(), which a checked build enlarges.
  return static_cast<std::size_t>(parse_u64(s)) * static_cast<std::size_t>(getauxval(AT_PAGESZ));
}

std::size_t peak_resident_bytes() {
  return status_field_bytes("VmHWM");
}

namespace {

std::size_t resource_limit(int resource) {
  KeepErrno keep;
  struct rlimit64 {
    std::uint64_t cur, max;
  } limit{};
  if (syscall(SYS_prlimit64, 0, resource, nullptr, &limit) != 0) return SIZE_MAX;
  return limit.cur >= SIZE_MAX ? SIZE_MAX : static_cast<std::size_t>(limit.cur);
}

std::atomic<int> g_strict_overcommit{-1};

}  // namespace

std::size_t address_space_limit() {
  return resource_limit(RLIMIT_AS);
}

std::size_t data_limit() {
  return resource_limit(RLIMIT_DATA);
}

bool strict_overcommit() {
  int v = g_strict_overcommit.load(std::memory_order_relaxed);
  if (v < 0) {
    char buf[8];
    v = read_small_file("/proc/sys/vm/overcommit_memory", buf, sizeof buf) > 0 && buf[0] == '2';
    g_strict_overcommit.store(v, std::memory_order_relaxed);  // every thread reads the same
  }
  return v != 0;
}

std::uint64_t random_u64() {
  KeepErrno keep;
  std::uint64_t v = 0;
  // The raw system call: glibc's getrandom wrapper is a cancellation point.
  if (syscall(SYS_getrandom, &v, sizeof v, GRND_NONBLOCK) == static_cast<long>(sizeof v))
    return v | 1;
  auto* at_random = reinterpret_cast<const std::uint64_t*>(getauxval(AT_RANDOM));
  if (at_random != nullptr) std::memcpy(&v, at_random, sizeof v);
  v ^= now_ns() * 0x9E3779B97F4A7C15ull;
  v ^= reinterpret_cast<std::uintptr_t>(&v);
  return v | 1;
}

void write_all(int fd, const char* buf, std::size_t len) {
  KeepErrno keep;
  while (len > 0) {
    long n = syscall(SYS_write, fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= static_cast<std::size_t>(n);
  }
}

int create_new_file(const char* path) {
  KeepErrno keep;
  long fd = syscall(SYS_openat, AT_FDCWD, path,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  return fd < 0 ? -1 : static_cast<int>(fd);
}

void close_fd(int fd) {
  KeepErrno keep;
  syscall(SYS_close, fd);
}

bool rename_file(const char* from, const char* to) {
  KeepErrno keep;
  return syscall(SYS_renameat, AT_FDCWD, from, AT_FDCWD, to) == 0;
}

void read_cmdline(char* buf, std::size_t cap) {
  long len = read_small_file("/proc/self/cmdline", buf, cap);
  while (len > 0 && buf[len - 1] == '\0') --len;
  if (len < 0) len = 0;
  for (long i = 0; i < len; ++i)
    if (buf[i] == '\0') buf[i] = ' ';
  buf[len] = '\0';
}

const char* program_name() {
  const char* name = program_invocation_short_name;
  return name != nullptr && *name != '\0' && std::strchr(name, '/') == nullptr ? name : "program";
}

bool remove_file(const char* path) {
  KeepErrno keep;
  return syscall(SYS_unlinkat, AT_FDCWD, path, 0) == 0;
}

const char* get_env(const char* name) {
  if (environ == nullptr) return nullptr;
  std::size_t len = std::strlen(name);
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  }
  return nullptr;
}

#ifdef MALLARD_RACE_DELAYS
void race_window(RaceWindow w) {
  static std::atomic<long> delay_us{-1};
  static std::atomic<unsigned> calls[8];
  long us = delay_us.load(std::memory_order_relaxed);
  if (us < 0) {
    const char* v = get_env("MALLARD_RACE_DELAY_US");
    us = 0;
    while (v != nullptr && *v >= '0' && *v <= '9') us = us * 10 + (*v++ - '0');
    delay_us.store(us, std::memory_order_relaxed);
  }
  if (us == 0) return;
  if (calls[static_cast<int>(w) & 7].fetch_add(1, std::memory_order_relaxed) % 8 != 0) return;
  timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do {
    sched_yield();
    clock_gettime(CLOCK_MONOTONIC, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000L + (now.tv_nsec - start.tv_nsec) / 1000 < us);
}
#endif

}  // namespace mallard::os
