// os_memory_test.cpp: the OS memory layer (src/os/os_memory.cpp): the kernel's page size, commit
// of reservations (rounded outward), purge (rounded inward to whole kernel pages), and valloc's
// alignment to the kernel's page. The checked preset pretends a 16 KiB kernel page
// (MALLARD_PRETEND_PAGE_SIZE), so these run as on an aarch64 16 KiB-page kernel there.
#include <malloc.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "backend/segment.hpp"
#include "os/os.hpp"

namespace mallard {
namespace {

TEST(OsMemory, PageSizeIsTheKernelsOrThePretendedOne) {
  std::size_t page = os::page_size();
  EXPECT_EQ(page & (page - 1), 0u);
  EXPECT_GE(page, os::kPageSize);
#ifdef MALLARD_PRETEND_PAGE_SIZE
  EXPECT_EQ(page, std::size_t{MALLARD_PRETEND_PAGE_SIZE});
#else
  EXPECT_EQ(page, getauxval(AT_PAGESZ));
#endif
}

TEST(OsMemory, CommitMakesWholeKernelPagesWritable) {
  const std::size_t page = os::page_size();
  auto* r = static_cast<char*>(os::map_aligned(kSegmentSize, kSegmentSize, os::Access::kReserved));
  ASSERT_NE(r, nullptr);
  // The last byte of the first kernel page commits that whole kernel page.
  ASSERT_TRUE(os::commit(r + page - 1, 1));
  r[0] = 1;
  EXPECT_EQ(r[page - 1], 0);  // fresh committed memory reads as zeros
  // A range from one byte into the second kernel page to one byte into the fourth commits the
  // second, third and fourth whole.
  ASSERT_TRUE(os::commit(r + page + 1, 2 * page));
  r[page] = 1;
  r[4 * page - 1] = 1;
  EXPECT_EQ(os::unmap(r, kSegmentSize), true);
}

TEST(OsMemory, PurgeGivesBackOnlyWholeKernelPages) {
  const std::size_t page = os::page_size();
  auto* m = static_cast<char*>(os::map_aligned(4 * page, page));
  ASSERT_NE(m, nullptr);
  std::memset(m, 'x', 4 * page);
  // A range that starts and ends one Mallard page inside kernel pages: on 4 KiB kernels it is all
  // purged; on larger ones, only the kernel pages wholly inside it.
  char* start = m + os::kPageSize;
  std::size_t len = 3 * page - os::kPageSize;  // ends at m + 3 * page: on a kernel page
  EXPECT_EQ(os::purge_covers(start, len), page == os::kPageSize);
  ASSERT_TRUE(os::purge(start, len, os::PurgeKind::kDontNeed));
  EXPECT_EQ(m[0], 'x');         // before the range
  EXPECT_EQ(m[3 * page], 'x');  // after it
  EXPECT_EQ(m[page], 0);        // a kernel page wholly inside
  EXPECT_EQ(m[2 * page + 1], 0);
  // Mallard pages of the first, shared kernel page are purged only when it is Mallard's size.
  EXPECT_EQ(start[0], page == os::kPageSize ? 0 : 'x');
  // A range inside one kernel page purges nothing and succeeds.
  std::memset(m, 'y', page);
  if (page > os::kPageSize) {
    ASSERT_TRUE(os::purge(m + os::kPageSize, os::kPageSize, os::PurgeKind::kDontNeed));
    EXPECT_EQ(m[os::kPageSize], 'y');
  }
  os::unmap(m, 4 * page);
}

TEST(OsMemory, VallocAlignsToTheKernelsPage) {
  const std::size_t page = os::page_size();
  void* v = valloc(100);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(v) % page, 0u);
  void* p = pvalloc(page + 1);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % page, 0u);
  EXPECT_GE(malloc_usable_size(p), 2 * page);
  free(v);
  free(p);
}

}  // namespace
}  // namespace mallard
