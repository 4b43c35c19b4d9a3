// size_class_test.cpp: SizeClass (src/backend/size_class.hpp): every request maps to the smallest
// class that holds it, classes are 16-aligned, waste is bounded, pages hold enough blocks.
#include "backend/size_class.hpp"

#include "mallard/mallard.h"

#include <gtest/gtest.h>

namespace mallard {
namespace {

TEST(SizeClass, EveryRequestGetsTheSmallestClassThatFits) {
  for (std::size_t n = 0; n <= kSmallMax; ++n) {
    unsigned c = size_class_of(n);
    ASSERT_LT(c, kClassCount) << n;
    ASSERT_GE(class_block_size(c), n) << n;
    if (c > 0) ASSERT_LT(class_block_size(c - 1), n) << n;
  }
}

TEST(SizeClass, ClassesAreIncreasingAndSixteenAligned) {
  for (unsigned c = 0; c < kClassCount; ++c) {
    EXPECT_EQ(class_block_size(c) % 16, 0u);
    if (c > 0) EXPECT_GT(class_block_size(c), class_block_size(c - 1));
  }
  EXPECT_EQ(class_block_size(0), 16u);  // malloc(0) gets a real, unique block
  EXPECT_EQ(class_block_size(kClassCount - 1), kSmallMax);
}

TEST(SizeClass, InternalWasteIsBounded) {
  // Four classes per doubling above 128 bytes: the block is at most 25% larger than the
  // request (20% of the block), and 12.5% on average over the sizes of a doubling.
  for (std::size_t n = 129; n <= kSmallMax; ++n) {
    std::size_t b = class_block_size(size_class_of(n));
    ASSERT_LE((b - n) * 5, b) << n;
  }
  double sum = 0;
  for (std::size_t n = 32769; n <= 65536; ++n)
    sum += static_cast<double>(class_block_size(size_class_of(n)) - n) / static_cast<double>(n);
  EXPECT_LE(sum / 32768, 0.125);
}

TEST(SizeClass, AClassJustAboveEachPowerOfTwoFromHalfAKiBToEightKiB) {
  // A power-of-two buffer with a header: sqlite's page cache asks for 4104 and 4368 bytes and
  // 1032, which four classes per doubling gave 5120 and 1280 (25% and 24% lost).
  for (std::size_t p = 512; p <= 8192; p *= 2) {
    EXPECT_EQ(class_block_size(size_class_of(p + 1)), p + p / 8) << p;
    EXPECT_EQ(class_block_size(size_class_of(p + p / 8 + 1)), p + p / 4) << p;
    // Only that one: eight classes per doubling cost multi-threaded programs with few blocks per
    // class up to 20% more RSS in partly used pages (docs/design.md, "Size classes").
    EXPECT_EQ(class_block_size(size_class_of(p + p / 4 + 1)), p + p / 2) << p;
  }
  EXPECT_EQ(class_block_size(size_class_of(1032)), 1152u);
  EXPECT_EQ(class_block_size(size_class_of(4104)), 4608u);
  EXPECT_EQ(class_block_size(size_class_of(4368)), 4608u);
  EXPECT_EQ(class_block_size(size_class_of(16 * 1024 + 1)), 20u * 1024);  // none above 16 KiB
  EXPECT_EQ(class_block_size(size_class_of(256 + 1)), 320u);              // nor below 512 B
}

TEST(SizeClass, FitsThePublicStatisticsTable) {
  EXPECT_LE(kClassCount, unsigned{MALLARD_MAX_SIZE_CLASSES});
}

TEST(SizeClass, PagesHoldAtLeastEightBlocks) {
  for (unsigned c = 0; c < kClassCount; ++c) {
    std::size_t bytes = class_page_count(c).bytes();
    EXPECT_GE(bytes / class_block_size(c), 8u) << c;
    EXPECT_LT(bytes / class_block_size(c), 65536u) << c;  // fits the remote-free counter
  }
}

// Every page is whole 64 KiB chunks (the arena aligns pages to chunks; one that ended between two
// would leave the next a hole no span can use), and wastes less than one block.
TEST(SizeClass, PagesAreWholeChunksWastingLessThanABlock) {
  for (unsigned c = 0; c < kClassCount; ++c) {
    std::size_t bytes = class_page_count(c).bytes();
    EXPECT_EQ(bytes % (64 * 1024), 0u) << c;
    EXPECT_LT(bytes % class_block_size(c), class_block_size(c)) << c;
    EXPECT_LT(bytes - 64 * 1024, 8 * class_block_size(c)) << c;  // not more than it needs
  }
}

TEST(SizeClass, PowerOfTwoClassesExistForAlignedRequests) {
  for (std::size_t a = 16; a <= kSmallMax; a *= 2)
    EXPECT_EQ(class_block_size(size_class_of(a)), a) << a;
}

}  // namespace
}  // namespace mallard
