// units_test.cpp: Pages and the limits of src/os/units.hpp, and the checked build's assertions
// (src/os/check.hpp): a lossy conversion and a _locked call without the lock abort there.
#include "os/units.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "backend/arena.hpp"
#include "os/lock.hpp"

namespace mallard {
namespace {

TEST(Pages, RoundsBytesUpAndDown) {
  EXPECT_EQ(Pages::covering(0).count(), 0u);
  EXPECT_EQ(Pages::covering(1).count(), 1u);
  EXPECT_EQ(Pages::covering(4096).count(), 1u);
  EXPECT_EQ(Pages::covering(4097).count(), 2u);
  EXPECT_EQ(Pages::within(4095).count(), 0u);
  EXPECT_EQ(Pages::within(8192).count(), 2u);
  // No overflow at the top of size_t: rounding up is done without adding first.
  EXPECT_EQ(Pages::covering(SIZE_MAX).count(), (SIZE_MAX >> 12) + 1);
  EXPECT_EQ(Pages{3}.bytes(), 3u * 4096);
  EXPECT_EQ((Pages{5} - Pages{2}).count(), 3u);
  EXPECT_TRUE(Pages{2} < Pages{3});
}

TEST(Pages, LimitsFitTheStoredFields) {
  // Page counts and indexes inside a segment are 32-bit: the largest segment must fit, and the
  // largest request must be far from overflowing any rounding.
  static_assert(kMaxSegmentPages <= UINT32_MAX);
  static_assert(kMaxRequest + kMaxAlignment + (std::size_t{1} << 22) > kMaxRequest);
  EXPECT_EQ(Pages{kMaxSegmentPages}.narrow(), std::uint32_t{1} << 31);
}

TEST(CheckedBuildDeathTest, NarrowingAPageCountAborts) {
  if (!os::kChecked) GTEST_SKIP() << "internal checks are compiled in the checked preset only";
  EXPECT_DEATH((void)Pages{(std::size_t{1} << 32) + 5}.narrow(),
               "mallard: internal check failed: count_ <= UINT32_MAX");
  EXPECT_DEATH((void)(Pages{1} - Pages{2}), "internal check failed");
}

TEST(CheckedBuildDeathTest, ALockedCallWithoutTheLockAborts) {
  if (!os::kChecked) GTEST_SKIP() << "internal checks are compiled in the checked preset only";
  EXPECT_DEATH(
      {
        static Arena arena;
        arena.init(99, false);
        bool zeroed = false;
        arena.alloc_span_locked(Pages{1}, Pages{1}, kSpanLarge, &zeroed);
      },
      "internal check failed: lock_.held_by_me\\(\\)");
}

TEST(CheckedBuildDeathTest, UnlockingALockHeldByAnotherThreadAborts) {
  if (!os::kChecked) GTEST_SKIP() << "internal checks are compiled in the checked preset only";
  EXPECT_DEATH(
      {
        static os::SpinLock lock;
        lock.unlock();
      },
      "internal check failed: held_by_me\\(\\)");
}

}  // namespace
}  // namespace mallard
