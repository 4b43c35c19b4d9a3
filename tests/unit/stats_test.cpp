// stats_test.cpp: statistics are exact (src/stats/): live bytes by class, large and huge blocks,
// arenas and threads; the text and JSON reports carry them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "mallard/mallard.h"

namespace {

mallard_stats snapshot() {
  mallard_stats s;
  mallard_get_stats(&s);
  return s;
}

std::string capture(void (*print)(int)) {
  char path[] = "/tmp/mallard_stats_XXXXXX";
  int fd = mkstemp(path);
  print(fd);
  std::string text;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<std::size_t>(n));
  close(fd);
  unlink(path);
  return text;
}

TEST(Stats, SmallBlocksAreCountedExactlyByClass) {
  std::vector<void*> v;
  v.reserve(1000);  // before the first snapshot: only the blocks under test change the figures
  mallard_stats a = snapshot();
  for (int i = 0; i < 1000; ++i) v.push_back(mallard_malloc(100));  // class of 112 bytes
  mallard_stats b = snapshot();
  EXPECT_EQ(b.bytes_small - a.bytes_small, 1000u * 112);
  std::size_t c = 0;
  while (b.classes[c].block_size != 112) ++c;
  EXPECT_EQ(b.classes[c].blocks_used - a.classes[c].blocks_used, 1000u);
  for (void* p : v) mallard_free(p);
  EXPECT_EQ(snapshot().bytes_small, a.bytes_small);
}

TEST(Stats, RemoteFreesCountAsFreedAtOnce) {
  std::vector<void*> v;
  v.reserve(500);
  // glibc keeps a thread's stack and TLS vector (allocated with malloc) in a cache after the
  // thread ends: start one thread first, so the one under test reuses that cache.
  std::thread([] {}).join();
  mallard_stats a = snapshot();
  for (int i = 0; i < 500; ++i) v.push_back(mallard_malloc(48));
  std::thread t([&] {
    for (void* p : v) mallard_free(p);
  });
  t.join();
  EXPECT_EQ(snapshot().bytes_small, a.bytes_small);
}

TEST(Stats, LargeAndHugeBlocks) {
  mallard_stats a = snapshot();
  void* large = mallard_malloc(100000);
  void* huge = mallard_malloc(64 << 20);
  mallard_stats b = snapshot();
  EXPECT_EQ(b.bytes_large - a.bytes_large, 102400u);  // 25 pages
  EXPECT_EQ(b.huge_blocks, a.huge_blocks + 1);
  EXPECT_GE(b.bytes_huge - a.bytes_huge, 64u << 20);
  EXPECT_GE(b.peak_bytes_in_use, b.bytes_in_use);
  EXPECT_GE(b.bytes_mapped, b.bytes_in_use);
  mallard_free(large);
  mallard_free(huge);
  mallard_stats c = snapshot();
  EXPECT_EQ(c.bytes_large, a.bytes_large);
  EXPECT_EQ(c.huge_blocks, a.huge_blocks);
}

TEST(Stats, ProcessFigures) {
  mallard_stats s = snapshot();
  EXPECT_GE(s.arenas, 1u);
  EXPECT_GE(s.arena_max, s.arenas);
  EXPECT_GE(s.threads_live, 1u);
  EXPECT_GT(s.bytes_resident, 0u);
  EXPECT_GE(s.peak_resident, s.bytes_resident / 2);
  EXPECT_EQ(s.class_count, 49u);
  EXPECT_LE(s.class_count, unsigned{MALLARD_MAX_SIZE_CLASSES});
}

TEST(Stats, Version) {
  EXPECT_STREQ(mallard_version(), MALLARD_VERSION_STRING);
  EXPECT_EQ(std::to_string(MALLARD_VERSION_MAJOR) + "." + std::to_string(MALLARD_VERSION_MINOR) +
                "." + std::to_string(MALLARD_VERSION_PATCH),
            MALLARD_VERSION_STRING);
}

TEST(Stats, TextAndJsonReports) {
  void* keep = mallard_malloc(1000);
  std::string text = capture(mallard_print_report);
  EXPECT_EQ(text.rfind("== mallard report: stats_test (pid ", 0), 0u) << text;
  EXPECT_NE(text.find("\nin use at exit "), std::string::npos) << text;
  EXPECT_NE(text.find("\nresident (RSS) "), std::string::npos) << text;
  EXPECT_NE(text.find("\nwhere Mallard's mapped memory is, at exit:\n  live blocks "),
            std::string::npos)
      << text;
  for (const char* row : {"live blocks", "free in small pages", "dirty free spans",
                          "purged / retained", "metadata", "in Mallard's heap", "file mappings",
                          "other anonymous", "brk not Mallard's", "kernel mappings"}) {
    std::string label = std::string("\n  ") + row;
    for (std::size_t at = text.find(label); at != std::string::npos;
         at = text.find(label, at + 1)) {
      std::size_t value = text.find_first_not_of(' ', at + label.size());
      EXPECT_NE(text.compare(value, 4, "0 B "), 0) << "rows with nothing are hidden: " << row;
    }
  }
  EXPECT_NE(text.find("size classes with pages"), std::string::npos);
  std::string json = capture(mallard_print_stats_json);
  EXPECT_EQ(json.rfind("{\"schema_version\":1,\"version\":\"" MALLARD_VERSION_STRING
                       "\",\"program\":\"stats_test\",\"pid\":",
                       0),
            0u)
      << json;
  EXPECT_NE(json.find("\"made_allocations\":true,\"options\":{\"arena_max\":"), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"decay_ms\":" + std::to_string(mallard_option_get("decay_ms")) + ","),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"bytes_in_use\":"), std::string::npos) << json;
  EXPECT_NE(json.find("\"classes\":[{\"block_size\":"), std::string::npos) << json;
  EXPECT_EQ(json.substr(json.size() - 3), "]}\n");
  mallard_free(keep);
}

TEST(Stats, OptionsCanBeReadAndSet) {
  EXPECT_EQ(mallard_option_set("decay_ms", "321"), 0);
  EXPECT_EQ(mallard_option_get("decay_ms"), 321);
  EXPECT_EQ(mallard_option_set("decay_ms", "soon"), -1);
  EXPECT_EQ(mallard_option_set("no_such", "1"), -1);
  EXPECT_EQ(mallard_option_get("no_such"), -1);
  EXPECT_EQ(mallard_option_set("decay_ms", "200"), 0);
}

}  // namespace
