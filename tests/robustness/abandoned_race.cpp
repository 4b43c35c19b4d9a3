// abandoned_race.cpp: the last remote frees into a page whose thread has exited, racing with
// malloc_trim, which releases empty pages and unmaps segments that became entirely free.
// Regression: the thread whose remote free returned the page's last block looked at the page
// again (to give it back at once) after other threads could already have released it and
// unmapped its segment: SIGSEGV, or a release of whatever the memory had become.
// Each round: a thread fills one page (16 blocks of 4 KiB) and exits, so the page is abandoned;
// then 16 threads free one block each, all at once, while another thread trims in a loop.
// Usage: abandoned_race [SECONDS] (default 3).
#include <pthread.h>

#include <atomic>

#include "rb_common.h"

namespace {

constexpr int kBlocks = 16;  // blocks of 4 KiB: one 64 KiB page
constexpr std::size_t kSize = 4096;

void* g_blocks[kBlocks];
pthread_barrier_t g_start;
std::atomic<bool> g_stop{false};

void* fill_page(void*) {
  for (int i = 0; i < kBlocks; ++i) {
    g_blocks[i] = mallard_malloc(kSize);
    RB_CHECK(g_blocks[i] != nullptr, "mallard_malloc");
    rb::fill(g_blocks[i], kSize, static_cast<std::uint64_t>(i));
  }
  return nullptr;  // the thread exits: its page is abandoned with 16 live blocks
}

void* free_one(void* arg) {
  auto i = reinterpret_cast<std::intptr_t>(arg);
  pthread_barrier_wait(&g_start);
  rb::check_pattern(g_blocks[i], kSize, static_cast<std::uint64_t>(i), "block");
  mallard_free(g_blocks[i]);
  return nullptr;
}

void* trim_loop(void*) {
  while (!g_stop.load(std::memory_order_relaxed)) mallard_malloc_trim(0);
  return nullptr;
}

pthread_t start(void* (*f)(void*), void* arg) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  pthread_t t;
  RB_CHECK(pthread_create(&t, &attr, f, arg) == 0, "pthread_create");
  pthread_attr_destroy(&attr);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  rb::g_prog = "abandoned_race";
  double seconds = static_cast<double>(rb::arg(argc, argv, 1, 3));
  // Segments of their own (no brk, whose top alone can be released), purged at once, no purger.
  mallard_option_set("heap_source", "mmap");
  mallard_option_set("decay_ms", "0");
  mallard_option_set("background_purge", "0");
  pthread_barrier_init(&g_start, nullptr, kBlocks);
  pthread_t trimmer = start(trim_loop, nullptr);
  double t0 = rb::now_s();
  long rounds = 0;
  while (rb::now_s() - t0 < seconds) {
    pthread_join(start(fill_page, nullptr), nullptr);
    pthread_t freers[kBlocks];
    for (int i = 0; i < kBlocks; ++i)
      freers[i] = start(free_one, reinterpret_cast<void*>(std::intptr_t{i}));
    for (pthread_t t : freers) pthread_join(t, nullptr);
    ++rounds;
  }
  g_stop.store(true);
  pthread_join(trimmer, nullptr);
  mallard_check_heap();
  RB_CHECK(rb::stats().abandoned_pages == 0, "abandoned pages left after every block came back");
  rb::say("abandoned_race: ok: %ld rounds in %.1f s", rounds, rb::now_s() - t0);
  return 0;
}
