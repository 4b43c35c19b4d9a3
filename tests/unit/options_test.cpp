// options_test.cpp: the option table and parsers (src/config/options.cpp): MALLARD_OPTIONS
// strings, size suffixes, enums, booleans, bounds, overflow, trimming, bad values and unknown keys
// (one warning line each), glibc's MALLOC_*_ variables and GLIBC_TUNABLES, mallopt's bounds,
// secure-execution mode, race-free updates of live options, and docs/options.md being the
// generator's current output.
#include "config/options.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/arena_registry.hpp"
#include "backend/huge.hpp"
#include "mallard/mallard.h"
#include "os/text_writer.hpp"

namespace mallard::config {
namespace {

std::size_t lines(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

const OptionInfo& info(const char* name) {
  std::size_t count = 0;
  const OptionInfo* table = option_table(&count);
  for (std::size_t i = 0; i < count; ++i)
    if (std::strcmp(table[i].name, name) == 0) return table[i];
  ADD_FAILURE() << "no option " << name;
  return table[0];
}

// Sets the environment variables of a test and restores them at its end.
class ScopedEnv {
 public:
  ScopedEnv& set(const char* name, const char* value) {
    const char* old = getenv(name);
    saved_.push_back({name, old != nullptr, old != nullptr ? old : ""});
    setenv(name, value, 1);
    return *this;
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->was_set)
        setenv(it->name.c_str(), it->value.c_str(), 1);
      else
        unsetenv(it->name.c_str());
    }
  }

 private:
  struct Saved {
    std::string name;
    bool was_set;
    std::string value;
  };
  std::vector<Saved> saved_;
};

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
  EXPECT_FALSE(o.dynamic_threshold_off);  // a refused value freezes nothing
  EXPECT_NE(err.find("bad value for option 'decay_ms=soon'"), std::string::npos) << err;
  EXPECT_NE(err.find("'purge=sometimes' in MALLARD_OPTIONS: not a known name; allowed dontneed or "
                     "free; keeping dontneed\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'arena_max=-1' in MALLARD_OPTIONS: negative; allowed 0 to 1024; keeping 0\n"),
            std::string::npos)
      << err;
  EXPECT_EQ(lines(err), 4u) << err;
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

// Review of issue 9: a bare size or count key meant 1 (every block mmapped for a bare
// `mmap_threshold`); it is a missing value, refused with a warning.
TEST(Options, BareSizeOrCountKeysAreRefused) {
  Options o;
  testing::internal::CaptureStderr();
  apply_option_string(o, "mmap_threshold, arena_max ,background_purge");
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.mmap_threshold, 131072);
  EXPECT_EQ(o.arena_max, Options{}.arena_max);
  EXPECT_EQ(o.background_purge, 1);
  EXPECT_NE(err.find("'mmap_threshold='"), std::string::npos) << err;
  EXPECT_NE(err.find("'arena_max='"), std::string::npos) << err;
}

// As glibc: GLIBC_TUNABLES overrides the MALLOC_*_ variables, whichever comes first.
TEST(Options, TunablesOverrideGlibcVariables) {
  ScopedEnv env;
  env.set("MALLOC_MMAP_THRESHOLD_", "300000")
      .set("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=200000");
  Options o;
  load_options_from_environment(o, false);
  EXPECT_EQ(o.mmap_threshold, 200000);
}

TEST(Options, GlibcEnvironmentVariablesAndTunables) {
  ScopedEnv env;
  env.set("MALLOC_ARENA_MAX", "2")
      .set("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536:glibc.other.x=1")
      .set("MALLARD_OPTIONS", "decay_ms=7");
  Options o;
  testing::internal::CaptureStderr();
  load_options_from_environment(o, false);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(o.arena_max, 2);
  EXPECT_EQ(o.mmap_threshold, 65536);
  EXPECT_TRUE(o.dynamic_threshold_off);
  EXPECT_EQ(o.decay_ms, 7);
}

// Every option has bounds in the one table, its default within them; enums and booleans span
// exactly their names; the bounds agree with the code that relies on them.
TEST(Options, EveryOptionHasBoundsInTheTable) {
  std::size_t count = 0;
  const OptionInfo* table = option_table(&count);
  for (std::size_t i = 0; i < count; ++i) {
    const OptionInfo& t = table[i];
    EXPECT_GE(t.min_value, 0) << t.name;
    EXPECT_LE(t.min_value, t.default_value) << t.name;
    EXPECT_LE(t.default_value, t.max_value) << t.name;
    if (t.kind == OptionKind::kBool) {
      EXPECT_EQ(t.min_value, 0) << t.name;
      EXPECT_EQ(t.max_value, 1) << t.name;
    }
    if (t.kind == OptionKind::kEnum) {
      long names = 1;
      for (const char* c = t.enum_names; *c != '\0'; ++c) names += *c == '|';
      EXPECT_EQ(t.min_value, 0) << t.name;
      EXPECT_EQ(t.max_value, names - 1) << t.name;
    }
  }
  EXPECT_EQ(info("arena_max").max_value, static_cast<long>(arenas::kArenaLimit));
  EXPECT_EQ(info("mmap_threshold").max_value, static_cast<long>(huge::kDynamicThresholdMax));
}

// options.c of ../shared/cases: the bound used to be checked before the suffix's shift, so
// 17179869184g was stored as 0 (2^64 wrapped) and 8589934592g as a negative number.
TEST(Options, SuffixOverflowIsRefused) {
  for (const char* text :
       {"mmap_threshold=17179869184g", "mmap_threshold=8589934592g", "mmap_threshold=16777216t",
        "mmap_threshold=18446744073709551616", "mmap_threshold=99999999999999999999999k"}) {
    Options o;
    testing::internal::CaptureStderr();
    apply_option_string(o, text);
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(o.mmap_threshold, 131072) << text;
    EXPECT_FALSE(o.dynamic_threshold_off) << text;
    EXPECT_EQ(lines(err), 1u) << err;
    EXPECT_NE(err.find(std::string("mallard: bad value for option '") + text + "'"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("allowed 0 to 33554432 bytes (32.0 MiB); keeping 131072\n"),
              std::string::npos)
        << err;
  }
  Options o;
  testing::internal::CaptureStderr();
  apply_option_string(o, "mmap_threshold=17179869184g");
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "mallard: bad value for option 'mmap_threshold=17179869184g' in MALLARD_OPTIONS: too "
            "large (overflows); allowed 0 to 33554432 bytes (32.0 MiB); keeping 131072\n");
}

TEST(Options, BoundsAreInclusiveAndEnforced) {
  Options o;
  EXPECT_TRUE(set_option(o, "mmap_threshold", 14, "32m", 3));
  EXPECT_EQ(o.mmap_threshold, 32L << 20);
  EXPECT_FALSE(set_option(o, "mmap_threshold", 14, "33554433", 8));
  EXPECT_EQ(o.mmap_threshold, 32L << 20);
  EXPECT_TRUE(set_option(o, "arena_max", 9, "1024", 4));
  EXPECT_FALSE(set_option(o, "arena_max", 9, "1025", 4));
  EXPECT_EQ(o.arena_max, 1024);
  EXPECT_TRUE(set_option(o, "dirty_max", 9, "1t", 2));
  EXPECT_EQ(o.dirty_max, 1L << 40);
  EXPECT_FALSE(set_option(o, "dirty_max", 9, "1025g", 5));
  EXPECT_TRUE(set_option(o, "report_pid", 10, "4194304", 7));
  EXPECT_FALSE(set_option(o, "report_pid", 10, "4194305", 7));
  EXPECT_TRUE(set_option(o, "decay_ms", 8, "2147483647", 10));
  EXPECT_FALSE(set_option(o, "decay_ms", 8, "2147483648", 10));
  EXPECT_EQ(o.decay_ms, 2147483647);
  EXPECT_FALSE(set_option(o, "decay_ms", 8, "", 0));
  EXPECT_FALSE(set_option(o, "decay_ms", 8, "1k", 2));  // suffixes are for sizes
  EXPECT_FALSE(set_option(o, "mmap_threshold", 14, "64ki", 4));
  EXPECT_TRUE(set_option(o, "mmap_threshold", 14, "64KB", 4));
  EXPECT_EQ(o.mmap_threshold, 64 << 10);
  EXPECT_TRUE(set_option_number(o, "top_pad", 4096));
  EXPECT_FALSE(set_option_number(o, "top_pad", -1));
  EXPECT_FALSE(set_option_number(o, "top_pad", (1L << 40) + 1));
  EXPECT_FALSE(set_option_number(o, "no_such_option", 1));
  EXPECT_EQ(o.top_pad, 4096);
}

TEST(Options, NegativeValuesAreRefused) {
  Options o;
  testing::internal::CaptureStderr();
  apply_option_string(o, "decay_ms=-1,trim_threshold=-1,report_fd=-5,mmap_max=-0");
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.decay_ms, 200);
  EXPECT_EQ(o.trim_threshold, 131072);
  EXPECT_EQ(o.report_fd, 2);
  EXPECT_EQ(o.mmap_max, 65536);
  EXPECT_EQ(lines(err), 4u) << err;
  EXPECT_NE(err.find("'decay_ms=-1' in MALLARD_OPTIONS: negative; allowed 0 to 2147483647; "
                     "keeping 200\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'report_fd=-5' in MALLARD_OPTIONS: negative"), std::string::npos) << err;
}

TEST(Options, SpacesAroundKeysAndValuesAreTrimmed) {
  Options o;
  testing::internal::CaptureStderr();
  apply_option_string(o, " mmap_threshold = 64k , decay_ms=\t5 ,purge = free,  verbose  ,");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(o.mmap_threshold, 64 << 10);
  EXPECT_EQ(o.decay_ms, 5);
  EXPECT_EQ(o.purge, 1);
  EXPECT_EQ(o.verbose, 1);
  EXPECT_TRUE(set_option(o, " check ", 7, " 9 ", 3));  // mallard_option_set's path
  EXPECT_EQ(o.check, 9);
  // Spaces inside a value are not trimmed away.
  testing::internal::CaptureStderr();
  apply_option_string(o, "decay_ms=1 0");
  EXPECT_NE(testing::internal::GetCapturedStderr().find("'decay_ms=1 0'"), std::string::npos);
  EXPECT_EQ(o.decay_ms, 5);
}

TEST(Options, GlibcVariablesWithBadValuesWarnAndKeepTheDefault) {
  ScopedEnv env;
  env.set("MALLOC_MMAP_THRESHOLD_", "lots")
      .set("MALLOC_ARENA_MAX", "-2")
      .set("MALLOC_TOP_PAD_", "99999999999999999999")
      .set("MALLOC_TRIM_THRESHOLD_", "2t")
      .set("MALLOC_MMAP_MAX_", "4294967296");
  Options o;
  testing::internal::CaptureStderr();
  load_options_from_environment(o, false);
  std::string err = testing::internal::GetCapturedStderr();
  Options defaults;
  EXPECT_EQ(o.mmap_threshold, defaults.mmap_threshold);
  EXPECT_EQ(o.arena_max, defaults.arena_max);
  EXPECT_EQ(o.top_pad, defaults.top_pad);
  EXPECT_EQ(o.trim_threshold, defaults.trim_threshold);
  EXPECT_EQ(o.mmap_max, defaults.mmap_max);
  EXPECT_FALSE(o.dynamic_threshold_off);
  EXPECT_EQ(lines(err), 5u) << err;
  EXPECT_NE(err.find("mallard: bad value for variable 'MALLOC_MMAP_THRESHOLD_=lots': not a number "
                     "of bytes (digits, then k, m, g or t); allowed 0 to 33554432 bytes (32.0 "
                     "MiB); keeping 131072\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'MALLOC_ARENA_MAX=-2': negative; allowed 0 to 1024; keeping 0\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'MALLOC_TOP_PAD_=99999999999999999999': too large (overflows)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'MALLOC_TRIM_THRESHOLD_=2t': out of range"), std::string::npos) << err;
  EXPECT_NE(err.find("'MALLOC_MMAP_MAX_=4294967296': out of range; allowed 0 to 2147483647"),
            std::string::npos)
      << err;
}

TEST(Options, GlibcVariablesTakeGlibcNumbersAndSpaces) {
  ScopedEnv env;
  env.set("MALLOC_MMAP_THRESHOLD_", " 0x10000 ")
      .set("MALLOC_MMAP_MAX_", "010")  // octal, as glibc's tunable parser
      .set("MALLOC_ARENA_MAX", "")     // set but empty: as unset
      .set("MALLOC_TOP_PAD_", "1m");
  Options o;
  testing::internal::CaptureStderr();
  load_options_from_environment(o, false);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  EXPECT_EQ(o.mmap_threshold, 65536);
  EXPECT_EQ(o.mmap_max, 8);
  EXPECT_EQ(o.arena_max, 0);
  EXPECT_EQ(o.top_pad, 1 << 20);
  EXPECT_TRUE(o.dynamic_threshold_off);
}

TEST(Options, GlibcTunablesWithBadValuesWarnAndKeepTheDefault) {
  ScopedEnv env;
  env.set("GLIBC_TUNABLES",
          "glibc.malloc.trim_threshold=99999999999999999999:glibc.malloc.mmap_threshold=64m:"
          "glibc.malloc.arena_max=x:glibc.malloc.mmap_max:glibc.malloc.tcache_count=0:"
          "glibc.malloc.no_such=1:glibc.cpu.hwcaps=-AVX2: glibc.malloc.top_pad = 0x1000 ");
  Options o;
  testing::internal::CaptureStderr();
  load_options_from_environment(o, false);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(o.trim_threshold, 131072);
  EXPECT_EQ(o.mmap_threshold, 131072);
  EXPECT_EQ(o.arena_max, 0);
  EXPECT_EQ(o.mmap_max, 65536);
  EXPECT_EQ(o.top_pad, 4096);  // the good one among them, spaces trimmed
  EXPECT_EQ(o.mxfast, 128);
  EXPECT_EQ(lines(err), 5u) << err;
  EXPECT_NE(err.find("mallard: bad value for tunable 'glibc.malloc.trim_threshold="
                     "99999999999999999999' in GLIBC_TUNABLES: too large (overflows); allowed 0 "
                     "to 1099511627776 bytes (1.0 TiB); keeping 131072\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'glibc.malloc.mmap_threshold=64m' in GLIBC_TUNABLES: out of range"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'glibc.malloc.arena_max=x' in GLIBC_TUNABLES: not a number"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("'glibc.malloc.mmap_max=' in GLIBC_TUNABLES: empty"), std::string::npos)
      << err;
  EXPECT_NE(err.find("unknown tunable 'glibc.malloc.no_such' in GLIBC_TUNABLES"), std::string::npos)
      << err;
}

TEST(Options, GlibcTunableMxfast) {
  ScopedEnv env;
  env.set("GLIBC_TUNABLES", "glibc.malloc.mxfast=0");
  Options o;
  load_options_from_environment(o, false);
  EXPECT_EQ(o.mxfast, 0);
  EXPECT_FALSE(o.dynamic_threshold_off);  // as glibc: mxfast is no threshold knob
  env.set("GLIBC_TUNABLES", "glibc.malloc.mxfast=161");
  Options p;
  testing::internal::CaptureStderr();
  load_options_from_environment(p, false);
  EXPECT_NE(testing::internal::GetCapturedStderr().find(
                "'glibc.malloc.mxfast=161' in GLIBC_TUNABLES: out of range; allowed 0 to 160 "
                "bytes (160 B); keeping 128\n"),
            std::string::npos);
  EXPECT_EQ(p.mxfast, 128);
}

// glibc's no_dyn_threshold: each of the four knobs, each way it can be set, freezes the dynamic
// mmap threshold; other options do not.
TEST(Options, EveryThresholdKnobFreezesTheDynamicThreshold) {
  struct Knob {
    const char* key;
    const char* variable;
    const char* tunable;
    int param;
    const char* value;
  };
  const Knob knobs[] = {
      {"mmap_threshold", "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold=131072",
       M_MMAP_THRESHOLD, "131072"},
      {"trim_threshold", "MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold=262144",
       M_TRIM_THRESHOLD, "262144"},
      {"top_pad", "MALLOC_TOP_PAD_", "glibc.malloc.top_pad=65536", M_TOP_PAD, "65536"},
      {"mmap_max", "MALLOC_MMAP_MAX_", "glibc.malloc.mmap_max=65536", M_MMAP_MAX, "65536"},
  };
  for (const Knob& k : knobs) {
    Options by_option, by_variable, by_tunable, by_mallopt;
    apply_option_string(by_option, (std::string(k.key) + "=" + k.value).c_str());
    EXPECT_TRUE(by_option.dynamic_threshold_off) << k.key;
    {
      ScopedEnv env;
      env.set(k.variable, k.value);
      load_options_from_environment(by_variable, false);
    }
    EXPECT_TRUE(by_variable.dynamic_threshold_off) << k.variable;
    {
      ScopedEnv env;
      env.set("GLIBC_TUNABLES", k.tunable);
      load_options_from_environment(by_tunable, false);
    }
    EXPECT_TRUE(by_tunable.dynamic_threshold_off) << k.tunable;
    EXPECT_EQ(apply_mallopt(by_mallopt, k.param, std::atoi(k.value)), 1) << k.key;
    EXPECT_TRUE(by_mallopt.dynamic_threshold_off) << k.key;
  }
  Options other;
  apply_option_string(other, "decay_ms=5,mxfast=0,arena_max=2,dirty_max=1m");
  EXPECT_FALSE(other.dynamic_threshold_off);
}

// setuid programs: in secure-execution mode the environment is not read, and nothing printed.
TEST(Options, SecureExecutionIgnoresTheEnvironment) {
  ScopedEnv env;
  env.set("MALLARD_OPTIONS", "report=text,report_fd=3,decay_ms=1,bogus=1")
      .set("MALLOC_ARENA_MAX", "1")
      .set("MALLOC_MMAP_THRESHOLD_", "4096")
      .set("MALLOC_TOP_PAD_", "bad")
      .set("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1:glibc.malloc.no_such=1");
  Options o;
  testing::internal::CaptureStderr();
  load_options_from_environment(o, true);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  Options defaults;
  std::size_t count = 0;
  const OptionInfo* table = option_table(&count);
  for (std::size_t i = 0; i < count; ++i)
    EXPECT_EQ(get_option(o, table[i].name), get_option(defaults, table[i].name)) << table[i].name;
  EXPECT_FALSE(o.dynamic_threshold_off);
  EXPECT_FALSE(secure_execution());  // this test program is not setuid
}

// mallopt's option part: as glibc's mallopt(3), 0 for a bad value, and nothing changes.
TEST(Options, MalloptRefusesValuesOutOfBounds) {
  Options o;
  EXPECT_EQ(apply_mallopt(o, M_MMAP_THRESHOLD, (32 << 20) + 1), 0);
  EXPECT_EQ(apply_mallopt(o, M_MMAP_THRESHOLD, -1), 0);
  EXPECT_EQ(apply_mallopt(o, M_MMAP_MAX, -1), 0);
  EXPECT_EQ(apply_mallopt(o, M_TOP_PAD, -4096), 0);
  EXPECT_EQ(apply_mallopt(o, M_ARENA_MAX, 0), 1);  // glibc: ignored, and 1 returned
  EXPECT_EQ(apply_mallopt(o, M_ARENA_MAX, -3), 1);
  EXPECT_EQ(apply_mallopt(o, M_ARENA_MAX, 1025), 0);
  Options defaults;
  EXPECT_EQ(o.mmap_threshold, defaults.mmap_threshold);
  EXPECT_EQ(o.mmap_max, defaults.mmap_max);
  EXPECT_EQ(o.top_pad, defaults.top_pad);
  EXPECT_EQ(o.arena_max, defaults.arena_max);
  EXPECT_FALSE(o.dynamic_threshold_off);
  EXPECT_EQ(apply_mallopt(o, M_PERTURB, 1), -1);  // not an option: the caller's
  EXPECT_EQ(apply_mallopt(o, 12345, 1), -1);

  EXPECT_EQ(apply_mallopt(o, M_MMAP_THRESHOLD, 32 << 20), 1);
  EXPECT_EQ(o.mmap_threshold, 32 << 20);
  EXPECT_TRUE(o.dynamic_threshold_off);
  EXPECT_EQ(apply_mallopt(o, M_ARENA_MAX, 1024), 1);
  EXPECT_EQ(o.arena_max, 1024);
  EXPECT_EQ(apply_mallopt(o, M_TRIM_THRESHOLD, -1), 1);  // glibc's "never trim"
  EXPECT_EQ(o.trim_threshold, -1);
  EXPECT_EQ(apply_mallopt(o, M_TOP_PAD, 1 << 20), 1);
  EXPECT_EQ(o.top_pad, 1 << 20);
}

// The same through mallopt itself (needs build/h-opts/mallopt-bounds.patch in glibc_ext.cpp).
TEST(Options, MalloptRefusesValuesOutOfBoundsThroughTheApi) {
  long top_pad = mallard_option_get("top_pad");
  long cap = mallard_option_get("arena_max");
  long threshold = mallard_option_get("mmap_threshold");
  EXPECT_EQ(mallard_mallopt(M_TOP_PAD, -4096), 0);  // glibc: 0 for a bad value
  EXPECT_EQ(mallard_mallopt(M_ARENA_MAX, 1025), 0);
  EXPECT_EQ(mallard_mallopt(M_MMAP_THRESHOLD, (32 << 20) + 1), 0);
  EXPECT_EQ(mallard_mallopt(M_MMAP_MAX, -1), 0);
  EXPECT_EQ(mallard_option_get("top_pad"), top_pad);
  EXPECT_EQ(mallard_option_get("arena_max"), cap);
  EXPECT_EQ(mallard_option_get("mmap_threshold"), threshold);
  EXPECT_EQ(mallard_option_get("mmap_max"), 65536);
  EXPECT_FALSE(options().dynamic_threshold_off);
  EXPECT_EQ(mallard_option_set("mmap_threshold", "17179869184g"), -1);
  EXPECT_EQ(mallard_option_get("mmap_threshold"), threshold);
}

// The options a running program changes (the dynamic mmap threshold raised by a freed huge
// block, mallopt) are read by every size decision and dirty budget of other threads: relaxed
// atomics, so ThreadSanitizer finds no race here (tests/robustness/tsan.supp no longer hides one).
TEST(Options, LiveOptionsAreReadAndWrittenWithoutRaces) {
  std::atomic<bool> done{false};
  std::thread raiser([&] {  // frees huge blocks: raises the threshold, and the trim threshold
    for (int round = 0; !done.load(); ++round) {
      for (std::size_t mb = 1; mb <= 32; mb *= 2) {
        void* p = mallard_malloc((mb << 20) - 4096 * static_cast<std::size_t>(round % 8));
        mallard_free(p);
      }
    }
  });
  std::thread setter([&] {  // what mallopt and mallard_option_set write
    for (int i = 0; !done.load(); ++i) {
      options().decay_ms = 100 + i % 2;
      options().mmap_max = 65536 - i % 2;
    }
  });
  std::vector<void*> blocks;
  for (int i = 0; i < 200; ++i) {  // size decisions (huge::wants), dirty budgets (freed spans)
    for (std::size_t n = 96 << 10; n <= (4u << 20); n *= 2) blocks.push_back(mallard_malloc(n));
    for (void* p : blocks) mallard_free(p);
    blocks.clear();
  }
  done.store(true);
  raiser.join();
  setter.join();
  EXPECT_GE(huge::threshold(), std::size_t{1} << 20);  // it did rise
  options() = Options{};
}

// docs/options.md is the generator's current output (`mallard options --markdown`).
TEST(Options, DocumentationIsCurrent) {
  std::ifstream in(MALLARD_SOURCE_DIR "/docs/options.md");
  ASSERT_TRUE(in.good()) << "docs/options.md is missing";
  std::stringstream text;
  text << in.rdbuf();
  std::string generated;
  {
    os::TextWriter w([](void* out, const char* data,
                        std::size_t len) { static_cast<std::string*>(out)->append(data, len); },
                     &generated);
    write_option_docs(w, true);
  }
  EXPECT_EQ(text.str(), generated)
      << "docs/options.md is stale: run build/<dir>/mallard options --markdown > docs/options.md";
  std::size_t count = 0;
  const OptionInfo* table = option_table(&count);
  for (std::size_t i = 0; i < count; ++i)
    EXPECT_NE(generated.find(std::string("| `") + table[i].name + "` |"), std::string::npos);
}

// mallard(3)'s OPTIONS section (`mallard options --man`): every option, as roff.
TEST(OptionDocs, ManSectionHasEveryOption) {
  std::string generated;
  {
    os::TextWriter w([](void* out, const char* data,
                        std::size_t len) { static_cast<std::string*>(out)->append(data, len); },
                     &generated);
    write_option_docs(w, DocFormat::kMan);
  }  // flushed
  std::size_t count = 0;
  const OptionInfo* table = option_table(&count);
  for (std::size_t i = 0; i < count; ++i) {
    EXPECT_NE(generated.find(std::string(".TP\n.B ") + table[i].name + "\n"), std::string::npos)
        << table[i].name;
  }
  // Roff: no line starts with a control character except the macros written on purpose.
  ASSERT_EQ(generated.back(), '\n');
  for (std::size_t start = 0, end; start < generated.size(); start = end + 1) {
    end = generated.find('\n', start);
    std::string line = generated.substr(start, end - start);
    if (!line.empty() && (line[0] == '.' || line[0] == '\''))
      EXPECT_TRUE(line == ".TP" || line == ".br" || line.rfind(".B ", 0) == 0) << line;
  }
}

}  // namespace
}  // namespace mallard::config
