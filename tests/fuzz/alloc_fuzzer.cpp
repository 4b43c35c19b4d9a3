// alloc_fuzzer.cpp: differential fuzzer of the allocation API (libFuzzer). Each input is decoded
// into a sequence of calls of the prefixed API (malloc, calloc, realloc, reallocarray,
// aligned_alloc, posix_memalign and memalign with odd alignments, valloc, pvalloc, free,
// malloc_usable_size, malloc_trim, option changes, and calls made by a second thread, which can
// exit and leave its pages abandoned). A shadow model (live block -> size, usable size,
// alignment, pattern tag) predicts every answer; after each call the fuzzer checks:
//   - feasible requests succeed; impossible ones fail with glibc's errno (ENOMEM / EINVAL);
//   - alignment, usable size >= request, calloc memory zeroed;
//   - no overlap between the usable ranges of live blocks;
//   - contents intact (every block carries a pattern over its whole usable size, checked on
//     free and realloc, and for all blocks every 64 steps); realloc keeps the prefix;
//   - mallard_check_heap() every 16 steps, and at the end of the input, after everything is
//     freed, the live-byte statistics are back to their starting figures exactly.
// Input format (bytes, read from the front; reads past the end give 0): an operation byte, then
// its arguments. See docs/robustness.md.
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>

#include "mallard/mallard.h"

namespace {

// ---- failures ----
[[noreturn]] __attribute__((format(printf, 1, 2))) void bug(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "alloc_fuzzer: BUG: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  abort();  // libFuzzer saves the input
}
#define EXPECT(cond, ...)          \
  do {                             \
    if (!(cond)) bug(__VA_ARGS__); \
  } while (0)

// ---- input decoding ----
struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint8_t u8() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() { return u16() | (static_cast<std::uint32_t>(u16()) << 16); }
};

constexpr std::size_t kPtrdiffMax = static_cast<std::size_t>(PTRDIFF_MAX);
constexpr std::size_t kFeasibleSize = std::size_t{64} << 20;  // must succeed up to here
constexpr std::size_t kFeasibleAlign = std::size_t{1} << 26;  // ... and with alignments up to here
constexpr std::size_t kMaxLiveBytes = std::size_t{256} << 20;
constexpr std::size_t kMaxLiveBlocks = 1024;

// Sizes: mostly small, some at size-class boundaries, some large or huge, a few impossible.
std::size_t decode_size(Reader& in) {
  std::uint8_t sel = in.u8();
  switch (sel >> 5) {
    case 0:
      return in.u8() % 65;
    case 1:
    case 2:
      return in.u16() % 1025;
    case 3:
      return 1024 + in.u16() % (64 * 1024);
    case 4: {  // a size-class boundary (16-byte steps to 128, then 4 classes per doubling), +-1
      unsigned k = 7 + in.u8() % 10;
      std::size_t base = (std::size_t{1} << k) + (in.u8() % 4) * (std::size_t{1} << (k - 2));
      return base + (in.u8() % 3) - 1;
    }
    case 5:
      return 64 * 1024 + in.u32() % (1 << 20);
    case 6:
      return (std::size_t{1} << 20) + in.u32() % (16 << 20);
    default: {
      static const std::size_t kExtreme[] = {
          SIZE_MAX,     SIZE_MAX - 4095,      kPtrdiffMax + 1,
          kPtrdiffMax,  std::size_t{1} << 62, std::size_t{1} << 47,
          SIZE_MAX / 2, kPtrdiffMax - 64};
      return kExtreme[sel % (sizeof kExtreme / sizeof kExtreme[0])];
    }
  }
}

std::size_t decode_alignment(Reader& in) {
  static const std::size_t kAligns[] = {0,
                                        1,
                                        2,
                                        3,
                                        4,
                                        5,
                                        7,
                                        8,
                                        12,
                                        16,
                                        24,
                                        32,
                                        48,
                                        64,
                                        100,
                                        128,
                                        256,
                                        1024,
                                        4096,
                                        4097,
                                        8192,
                                        65536,
                                        1 << 20,
                                        1 << 21,
                                        1 << 22,
                                        1 << 23,
                                        1 << 26,
                                        std::size_t{1} << 62,
                                        std::size_t{1} << 63,
                                        (std::size_t{1} << 63) + 1,
                                        SIZE_MAX,
                                        16};
  return kAligns[in.u8() % (sizeof kAligns / sizeof kAligns[0])];
}

bool is_power_of_two(std::size_t x) {
  return x != 0 && (x & (x - 1)) == 0;
}

// ---- block patterns: the whole usable size, sampled beyond 64 KiB ----
unsigned char pattern_byte(std::uint64_t tag, std::size_t i) {
  std::uint64_t x = (tag + i / 8) * 0x9E3779B97F4A7C15ull;
  return static_cast<unsigned char>((x >> (8 * (i % 8))) ^ (x >> 56));
}
template <class F>
void for_each_sampled(std::size_t n, F f) {
  if (n <= 65536) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  for (std::size_t i = 0; i < 4096; ++i) f(i);
  for (std::size_t i = 65536; i + 8 <= n - 4096; i += 65536)
    for (std::size_t k = i; k < i + 8; ++k) f(k);
  for (std::size_t i = n - 4096; i < n; ++i) f(i);
}

// ---- the shadow model ----
struct Live {
  std::size_t n;       // requested
  std::size_t usable;  // malloc_usable_size when allocated (filled with the pattern)
  std::uint64_t tag;
};

std::map<std::uintptr_t, Live> g_live;
std::size_t g_live_bytes = 0;
std::uint64_t g_next_tag = 1;

void fill(void* p, std::size_t n, std::uint64_t tag) {
  auto* b = static_cast<unsigned char*>(p);
  for_each_sampled(n, [&](std::size_t i) { b[i] = pattern_byte(tag, i); });
}

void check_contents(const void* p, std::size_t keep, const Live& l, const char* when) {
  const auto* b = static_cast<const unsigned char*>(p);
  for_each_sampled(l.usable, [&](std::size_t i) {
    if (i < keep && b[i] != pattern_byte(l.tag, i))
      bug("%s: block %p (%zu bytes, usable %zu) damaged at offset %zu", when, p, l.n, l.usable, i);
  });
}

// A new block from a successful call: aligned, big enough, inside no other live block.
void add_block(void* p, std::size_t n, std::size_t align, const char* call, bool zeroed) {
  EXPECT(reinterpret_cast<std::uintptr_t>(p) % (align < 16 ? 16 : align) == 0,
         "%s(n=%zu, align=%zu) = %p is misaligned", call, n, align, p);
  std::size_t usable = mallard_malloc_usable_size(p);
  EXPECT(usable >= n, "%s(n=%zu) = %p: usable size %zu", call, n, p, usable);
  auto a = reinterpret_cast<std::uintptr_t>(p);
  auto next = g_live.lower_bound(a);
  EXPECT(next == g_live.end() || next->first >= a + usable,
         "%s(n=%zu) = %p [%zu usable] overlaps the live block %#lx", call, n, p, usable,
         static_cast<unsigned long>(next->first));
  if (next != g_live.begin()) {
    auto prev = std::prev(next);
    EXPECT(prev->first + prev->second.usable <= a,
           "%s(n=%zu) = %p overlaps the live block %#lx [%zu usable]", call, n, p,
           static_cast<unsigned long>(prev->first), prev->second.usable);
  }
  if (zeroed) {
    const auto* b = static_cast<const unsigned char*>(p);
    for_each_sampled(n, [&](std::size_t i) {
      EXPECT(b[i] == 0, "%s(n=%zu) = %p: byte %zu is not zero", call, n, p, i);
    });
  }
  Live l{n, usable, g_next_tag++};
  fill(p, usable, l.tag);
  g_live[a] = l;
  g_live_bytes += n;
}

// The block at index k (wrapping) of the live set, or nullptr when it is empty.
void* pick(Reader& in) {
  if (g_live.empty()) return nullptr;
  std::size_t k = in.u16() % g_live.size();
  auto it = g_live.begin();
  std::advance(it, static_cast<long>(k));
  return reinterpret_cast<void*>(it->first);
}

void remove_block(void* p, const char* when) {
  auto it = g_live.find(reinterpret_cast<std::uintptr_t>(p));
  EXPECT(it != g_live.end(), "model lost %p", p);
  check_contents(p, SIZE_MAX, it->second, when);
  g_live_bytes -= it->second.n;
  g_live.erase(it);
}

bool room_for(std::size_t n) {
  return g_live.size() < kMaxLiveBlocks &&
         g_live_bytes + (n < kFeasibleSize ? n : 0) <= kMaxLiveBytes;
}

// Checks the answer to an allocation: success iff feasible (errno as glibc's otherwise).
void check_answer(void* p, int err, bool feasible, int want_errno, std::size_t n, std::size_t align,
                  const char* call, bool zeroed = false) {
  if (p == nullptr) {
    EXPECT(!feasible, "%s(n=%zu, align=%zu) failed (errno %d) but is feasible", call, n, align,
           err);
    EXPECT(err == want_errno, "%s(n=%zu, align=%zu) failed with errno %d, expected %d", call, n,
           align, err, want_errno);
    return;
  }
  EXPECT(n <= kPtrdiffMax, "%s(n=%zu) succeeded beyond PTRDIFF_MAX", call, n);
  add_block(p, n, align, call, zeroed);
  if (n > kFeasibleSize) {  // a surprising success (huge overcommitted mapping): give it back
    remove_block(p, "oversized block");
    mallard_free(p);
  }
}

// ---- the second thread: runs calls on request, one at a time (deterministic) ----
class Helper {
 public:
  ~Helper() { stop(); }
  void run(std::function<void()> f) {
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    std::unique_lock<std::mutex> lock(mu_);
    job_ = std::move(f);
    cv_.notify_all();
    cv_.wait(lock, [this] { return !job_; });
  }
  void stop() {  // the thread exits: its pages are abandoned, later frees go to them
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
      cv_.notify_all();
    }
    thread_.join();
    quit_ = false;
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return quit_ || job_; });
      if (job_) {
        job_();
        job_ = nullptr;
        cv_.notify_all();
      } else if (quit_) {
        return;
      }
    }
  }
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool quit_ = false;
};

Helper* g_helper;
long g_default_decay_ms, g_default_mmap_threshold;

// ---- operations ----
void op_malloc(Reader& in) {
  std::size_t n = decode_size(in);
  if (!room_for(n)) return;
  errno = 0;
  void* p = mallard_malloc(n);
  check_answer(p, errno, n <= kFeasibleSize, ENOMEM, n, 0, "malloc");
}

void op_calloc(Reader& in) {
  std::size_t count = in.u8() % 17;
  std::size_t size = decode_size(in);
  std::size_t n;
  bool overflow = __builtin_mul_overflow(count, size, &n);
  if (overflow) n = SIZE_MAX;
  if (!room_for(n)) return;
  errno = 0;
  void* p = mallard_calloc(count, size);
  check_answer(p, errno, !overflow && n <= kFeasibleSize, ENOMEM, n, 0, "calloc", true);
}

void op_realloc(Reader& in, bool array) {
  void* old = in.u8() % 8 == 0 ? nullptr : pick(in);
  std::size_t count = array ? in.u8() % 9 : 1;
  std::size_t size = decode_size(in);
  std::size_t n;
  bool overflow = __builtin_mul_overflow(count, size, &n);
  if (overflow) n = SIZE_MAX;
  if (!room_for(n)) return;
  const char* call = array ? "reallocarray" : "realloc";
  Live before{};
  if (old != nullptr) {
    before = g_live[reinterpret_cast<std::uintptr_t>(old)];
    check_contents(old, SIZE_MAX, before, "before realloc");
  }
  errno = 0;
  void* p = array ? mallard_reallocarray(old, count, size) : mallard_realloc(old, n);
  int err = errno;
  if (old != nullptr && n == 0 && !overflow) {  // glibc: realloc(p, 0) frees p, returns NULL
    EXPECT(p == nullptr, "%s(%p, 0) returned %p", call, old, p);
    g_live_bytes -= before.n;
    g_live.erase(reinterpret_cast<std::uintptr_t>(old));
    return;
  }
  if (old == nullptr) {
    check_answer(p, err, !overflow && n <= kFeasibleSize, ENOMEM, n, 0, call);
    return;
  }
  if (p == nullptr) {  // failure: the old block is untouched
    EXPECT(overflow || n > kFeasibleSize, "%s(%p, %zu) failed (errno %d) but is feasible", call,
           old, n, err);
    EXPECT(err == ENOMEM, "%s(%p, %zu) failed with errno %d", call, old, n, err);
    check_contents(old, SIZE_MAX, before, "after a failed realloc");
    return;
  }
  check_contents(p, before.n < n ? before.n : n, before, "after realloc (the kept prefix)");
  g_live_bytes -= before.n;
  g_live.erase(reinterpret_cast<std::uintptr_t>(old));
  add_block(p, n, 0, call, false);
  if (n > kFeasibleSize) {
    remove_block(p, "oversized block");
    mallard_free(p);
  }
}

void op_aligned(Reader& in, unsigned which) {
  std::size_t align = decode_alignment(in);
  std::size_t n = decode_size(in);
  if (!room_for(n)) return;
  errno = 0;
  bool pow2 = is_power_of_two(align);
  bool small_enough = n <= kFeasibleSize;
  switch (which) {
    case 0: {  // aligned_alloc: a power of two, else EINVAL
      void* p = mallard_aligned_alloc(align, n);
      bool feasible = pow2 && align <= kFeasibleAlign && small_enough;
      check_answer(p, errno, feasible, pow2 ? ENOMEM : EINVAL, n, align, "aligned_alloc");
      break;
    }
    case 1: {  // posix_memalign: a power-of-two multiple of sizeof(void*), else EINVAL
      void* out = &out;
      int saved = errno = 12345;
      int rc = mallard_posix_memalign(&out, align, n);
      // As glibc's: errno untouched, except ENOMEM with an ENOMEM result.
      EXPECT(errno == saved || (rc == ENOMEM && errno == ENOMEM), "posix_memalign changed errno");
      bool valid = pow2 && align % sizeof(void*) == 0;
      if (rc != 0) {
        EXPECT(out == &out, "posix_memalign failed but wrote *memptr");
        EXPECT(rc == (valid ? ENOMEM : EINVAL), "posix_memalign(%zu, %zu) returned %d", align, n,
               rc);
        EXPECT(!(valid && align <= kFeasibleAlign && small_enough),
               "posix_memalign(%zu, %zu) failed but is feasible", align, n);
        break;
      }
      EXPECT(valid, "posix_memalign(%zu, %zu) accepted a bad alignment", align, n);
      check_answer(out, 0, true, 0, n, align, "posix_memalign");
      break;
    }
    default: {  // memalign: above 2^63 EINVAL, else rounded up to a power of two
      void* p = mallard_memalign(align, n);
      std::size_t rounded = 1;
      while (rounded < align && rounded < (std::size_t{1} << 63)) rounded <<= 1;
      bool too_big = align > (std::size_t{1} << 63);
      check_answer(p, errno, !too_big && rounded <= kFeasibleAlign && small_enough,
                   too_big ? EINVAL : ENOMEM, n, too_big ? 0 : rounded, "memalign");
      break;
    }
  }
}

void op_valloc(Reader& in, bool pvalloc) {
  std::size_t n = decode_size(in);
  if (!room_for(n)) return;
  errno = 0;
  void* p = pvalloc ? mallard_pvalloc(n) : mallard_valloc(n);
  std::size_t want = n;
  if (pvalloc && n <= kFeasibleSize) want = n == 0 ? 4096 : (n + 4095) & ~std::size_t{4095};
  check_answer(p, errno, n <= kFeasibleSize, ENOMEM, want, 4096, pvalloc ? "pvalloc" : "valloc");
}

void op_free(Reader& in) {
  void* p = pick(in);
  if (p == nullptr) {
    mallard_free(nullptr);
    return;
  }
  remove_block(p, "before free");
  mallard_free(p);
}

void op_usable(Reader& in) {
  void* p = pick(in);
  if (p == nullptr) {
    EXPECT(mallard_malloc_usable_size(nullptr) == 0, "malloc_usable_size(NULL) != 0");
    return;
  }
  const Live& l = g_live[reinterpret_cast<std::uintptr_t>(p)];
  EXPECT(mallard_malloc_usable_size(p) == l.usable, "malloc_usable_size(%p) changed", p);
  check_contents(p, SIZE_MAX, l, "usable size check");
}

void op_option(Reader& in) {
  switch (in.u8() % 6) {
    case 0:
      mallard_option_set("decay_ms", in.u8() % 2 ? "0" : "1");
      break;
    case 1:
      mallard_option_set("purge", in.u8() % 2 ? "free" : "dontneed");
      break;
    case 2:
      mallard_option_set("trim_threshold", in.u8() % 2 ? "0" : "64k");
      break;
    case 3: {
      static const char* kThresholds[] = {"4096", "16k", "60k", "64k", "200k", "1m"};
      mallard_option_set("mmap_threshold", kThresholds[in.u8() % 6]);
      break;
    }
    case 4:
      mallard_option_set("mmap_max", in.u8() % 2 ? "0" : "65536");
      break;
    default:
      mallard_option_set("top_pad", in.u8() % 2 ? "0" : "1m");
      break;
  }
}

// One operation, run by the calling thread.
void step(Reader& in, std::uint8_t op) {
  switch (op % 20) {
    case 0:
    case 1:
    case 2:
      op_malloc(in);
      break;
    case 3:
      op_calloc(in);
      break;
    case 4:
      op_realloc(in, false);
      break;
    case 5:
      op_realloc(in, true);
      break;
    case 6:
      op_aligned(in, 0);
      break;
    case 7:
      op_aligned(in, 1);
      break;
    case 8:
      op_aligned(in, 2);
      break;
    case 9:
      op_valloc(in, in.u8() % 2);
      break;
    case 10:
    case 11:
    case 12:
      op_free(in);
      break;
    case 13:
      op_usable(in);
      break;
    case 14:
      mallard_malloc_trim(0);
      break;
    case 15:
      op_option(in);
      break;
    case 16:
      mallard_check_heap();
      break;
    default:
      break;  // 17..19: thread operations, see run_input
  }
}

void reset_options() {
  char buf[32];
  snprintf(buf, sizeof buf, "%ld", g_default_decay_ms);
  mallard_option_set("decay_ms", buf);
  snprintf(buf, sizeof buf, "%ld", g_default_mmap_threshold);
  mallard_option_set("mmap_threshold", buf);
  mallard_option_set("purge", "dontneed");
  mallard_option_set("trim_threshold", "0");
  mallard_option_set("mmap_max", "65536");
  mallard_option_set("top_pad", "0");
}

mallard_stats snapshot() {
  mallard_stats s;
  mallard_get_stats(&s);
  return s;
}

void run_input(Reader in) {
  reset_options();
  mallard_stats start = snapshot();
  int steps = 0;
  while (!in.empty()) {
    std::uint8_t op = in.u8();
    if (op % 20 == 17) {  // the next operation runs on the second thread
      std::uint8_t next = in.u8();
      g_helper->run([&] { step(in, next); });
    } else if (op % 20 == 18) {
      g_helper->stop();
    } else if (op % 20 == 19) {  // a burst on the second thread
      std::uint8_t count = in.u8() % 8;
      g_helper->run([&] {
        for (std::uint8_t i = 0; i < count && !in.empty(); ++i) step(in, in.u8());
      });
    } else {
      step(in, op);
    }
    if (++steps % 16 == 0) mallard_check_heap();
    if (steps % 64 == 0)
      for (const auto& [a, l] : g_live)
        check_contents(reinterpret_cast<void*>(a), SIZE_MAX, l, "periodic check");
  }
  // Everything freed (half by the other thread): the live-byte figures must come back exactly.
  bool by_helper = steps % 2 == 1;
  auto free_all = [] {
    for (const auto& [a, l] : g_live) {
      check_contents(reinterpret_cast<void*>(a), SIZE_MAX, l, "final free");
      mallard_free(reinterpret_cast<void*>(a));
    }
    g_live.clear();
    g_live_bytes = 0;
  };
  if (by_helper)
    g_helper->run(free_all);
  else
    free_all();
  mallard_check_heap();
  mallard_stats end = snapshot();
  EXPECT(end.bytes_in_use == start.bytes_in_use && end.bytes_small == start.bytes_small &&
             end.bytes_large == start.bytes_large && end.bytes_huge == start.bytes_huge &&
             end.huge_blocks == start.huge_blocks,
         "bytes in use %zu (small %zu, large %zu, huge %zu in %zu) after freeing everything, "
         "%zu (small %zu, large %zu, huge %zu in %zu) at the start",
         end.bytes_in_use, end.bytes_small, end.bytes_large, end.bytes_huge, end.huge_blocks,
         start.bytes_in_use, start.bytes_small, start.bytes_large, start.bytes_huge,
         start.huge_blocks);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // No purger thread: every input's calls are the only ones the allocator sees.
  mallard_option_set("background_purge", "0");
  g_default_decay_ms = mallard_option_get("decay_ms");
  g_default_mmap_threshold = mallard_option_get("mmap_threshold");
  g_helper = new Helper;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_input(Reader{data, size});
  return 0;
}
