// options_test.cpp: the option table and parsers (src/config/options.cpp): MALLARD_OPTIONS
// strings, size suffixes, enums, booleans, bad values and unknown keys (one warning each), and the
// table's agreement with docs/options.md.
#include "config/options.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace mallard::config {
namespace {

TEST(Options, DefaultsMatchTheTable) {
  Options o;
  EXPECT_EQ(o.mmap_threshold, 128 * 1024);
  EXPECT_EQ(o.arena_max, 0);
  EXPECT_EQ(o.purge, 0);
  EXPECT_EQ(get_option(o, "decay_ms"), o.decay_ms);
  EXPECT_EQ(get_option(o, "no_such_option"), -1);
}

TEST(Options, ParsesSizesCountsEnumsAndBooleans) {
  Options o;
  apply_option_string(o, "mmap_threshold=1m,arena_max=3,purge=free,heap_source=mmap,verbose=true");
  EXPECT_EQ(o.mmap_threshold, 1 << 20);
  EXPECT_TRUE(o.dynamic_threshold_off);
  EXPECT_EQ(o.arena_max, 3);
  EXPECT_EQ(o.purge, 1);
  EXPECT_EQ(o.heap_source, 1);
  EXPECT_EQ(o.verbose, 1);
  apply_option_string(o, "mmap_threshold=64k,trim_threshold=2G,verbose=0");
  EXPECT_EQ(o.mmap_threshold, 64 << 10);
  EXPECT_EQ(o.trim_threshold, 2L << 30);
  EXPECT_EQ(o.verbose, 0);
}

TEST(Options, BadValuesWarnAndKeepTheValue) {
  Options o;
  testing::internal::CaptureStderr();
  apply_option_string(o, "decay_ms=soon,purge=sometimes,arena_max=-1,mmap_threshold=12q");
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.decay_ms, Options{}.decay_ms);
  EXPECT_EQ(o.purge, 0);
  EXPECT_EQ(o.arena_max, 0);
  EXPECT_EQ(o.mmap_threshold, 128 * 1024);
  EXPECT_NE(err.find("bad value for option 'decay_ms=soon'"), std::string::npos) << err;
  EXPECT_NE(err.find("'purge=sometimes'"), std::string::npos) << err;
}

TEST(Options, UnknownKeysWarnOnceEach) {
  Options o;
  testing::internal::CaptureStderr();
  apply_option_string(o, "colour=blue,colour=red,decay_ms=5,shape=round");
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.decay_ms, 5);
  std::size_t first = err.find("unknown option 'colour'");
  ASSERT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("unknown option 'colour'", first + 1), std::string::npos) << err;
  EXPECT_NE(err.find("unknown option 'shape'"), std::string::npos) << err;
}

TEST(Options, EmptyAndBareKeys) {
  Options o;
  apply_option_string(o, "");
  apply_option_string(o, ",,verbose,,");
  EXPECT_EQ(o.verbose, 1);  // a bare key means =1
}

TEST(Options, GlibcEnvironmentVariablesAndTunables) {
  setenv("MALLOC_ARENA_MAX", "2", 1);
  setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536:glibc.other.x=1", 1);
  setenv("MALLARD_OPTIONS", "decay_ms=7", 1);
  Options o;
  load_options_from_environment(o);
  EXPECT_EQ(o.arena_max, 2);
  EXPECT_EQ(o.mmap_threshold, 65536);
  EXPECT_TRUE(o.dynamic_threshold_off);
  EXPECT_EQ(o.decay_ms, 7);
  unsetenv("MALLOC_ARENA_MAX");
  unsetenv("GLIBC_TUNABLES");
  unsetenv("MALLARD_OPTIONS");
}

TEST(Options, DocumentationListsEveryOption) {
  std::ifstream in(MALLARD_SOURCE_DIR "/docs/options.md");
  ASSERT_TRUE(in.good()) << "docs/options.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  std::size_t count = 0;
  const OptionInfo* table = option_table(&count);
  ASSERT_GT(count, 10u);
  for (std::size_t i = 0; i < count; ++i)
    EXPECT_NE(text.str().find(std::string("`") + table[i].name + "`"), std::string::npos)
        << table[i].name << " is not documented in docs/options.md";
}

}  // namespace
}  // namespace mallard::config
