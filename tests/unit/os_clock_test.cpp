// os_clock_test.cpp: the clock and CPU count of the OS layer (src/os/os_clock.cpp,
// src/os/os_system.cpp), which read the vDSO and the raw system calls instead of libc's
// clock_gettime and sched_getaffinity (those cost resident libc text: docs/design.md, "Base RSS").
// Each is checked against the libc function it replaces.
#include <sched.h>
#include <sys/auxv.h>
#include <time.h>

#include <gtest/gtest.h>

#include <cstdint>

#include "os/os.hpp"

namespace mallard {
namespace {

std::uint64_t libc_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

TEST(OsClock, FindsTheVdsoClockWhenTheKernelMapsAVdso) {
  if (getauxval(AT_SYSINFO_EHDR) == 0) GTEST_SKIP() << "no vDSO (valgrind hides it)";
  if (os::vdso_clock_name() == nullptr) GTEST_SKIP() << "no vDSO clock known on this architecture";
#if defined(__x86_64__)
  EXPECT_STREQ(os::vdso_clock_name(), "__vdso_clock_gettime");
#elif defined(__aarch64__)
  EXPECT_STREQ(os::vdso_clock_name(), "__kernel_clock_gettime");
#endif
  void* f = os::find_vdso_symbol(os::vdso_clock_name(), os::vdso_clock_version());
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(os::clock_uses_vdso());
  // The function found reads the same clock as libc's wrapper.
  auto* clock = reinterpret_cast<int (*)(clockid_t, timespec*)>(f);
  timespec ts{};
  std::uint64_t before = libc_ns(CLOCK_MONOTONIC);
  ASSERT_EQ(clock(CLOCK_MONOTONIC, &ts), 0);
  std::uint64_t mine =
      static_cast<std::uint64_t>(ts.tv_sec) * 1000000000 + static_cast<std::uint64_t>(ts.tv_nsec);
  std::uint64_t after = libc_ns(CLOCK_MONOTONIC);
  EXPECT_GE(mine, before);
  EXPECT_LE(mine, after);
}

TEST(OsClock, UnknownSymbolsAndVersionsAreNotFound) {
  EXPECT_EQ(os::find_vdso_symbol("__vdso_no_such_function", nullptr), nullptr);
  EXPECT_EQ(os::find_vdso_symbol("__vdso_clock_gettime", "LINUX_0.1"), nullptr);
  EXPECT_EQ(os::find_vdso_symbol("", nullptr), nullptr);
  EXPECT_EQ(os::find_vdso_symbol(nullptr, nullptr), nullptr);
  if (getauxval(AT_SYSINFO_EHDR) != 0 && os::vdso_clock_name() != nullptr) {
    // Any version accepted: the same function.
    EXPECT_EQ(os::find_vdso_symbol(os::vdso_clock_name(), nullptr),
              os::find_vdso_symbol(os::vdso_clock_name(), os::vdso_clock_version()));
  }
}

TEST(OsClock, NowNsIsCLOCK_MONOTONIC) {
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t before = libc_ns(CLOCK_MONOTONIC);
    std::uint64_t mine = os::now_ns();
    std::uint64_t after = libc_ns(CLOCK_MONOTONIC);
    ASSERT_GE(mine, before);
    ASSERT_LE(mine, after);
  }
}

TEST(OsClock, NowMsIsCLOCK_MONOTONIC_COARSE) {
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t before = libc_ns(CLOCK_MONOTONIC_COARSE) / 1000000;
    std::uint64_t mine = os::now_ms();
    std::uint64_t after = libc_ns(CLOCK_MONOTONIC_COARSE) / 1000000;
    ASSERT_GE(mine, before);
    ASSERT_LE(mine, after);
  }
}

TEST(OsSystem, UsableCpuCountIsTheAffinityMaskCappedByTheCgroup) {
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  unsigned allowed = static_cast<unsigned>(CPU_COUNT(&set));
  unsigned n = os::usable_cpu_count();
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, allowed);
  // Restricted to one CPU, the count follows (the affinity mask is read at each call).
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) {
      CPU_SET(c, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  EXPECT_EQ(os::usable_cpu_count(), 1u);
  ASSERT_EQ(sched_setaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(os::usable_cpu_count(), n);
}

}  // namespace
}  // namespace mallard
