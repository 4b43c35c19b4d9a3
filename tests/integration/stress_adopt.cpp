/* stress_adopt: a page abandoned by an exited thread is adopted by a new thread while another
 * thread frees the page's last blocks (the "orphan" remote free, which may give the page back to
 * the arena under the arena lock). Each round: a thread allocates a few blocks of one size class
 * and exits (its page is abandoned); then a second thread allocates the same class (it adopts the
 * page) while the main thread frees the first thread's blocks. If the orphan free gives the page
 * back after the adopter took it, the adopter's blocks live in memory the arena hands out again:
 * the blocks of other classes it then allocates overlap them and their contents are found
 * overwritten, or the heap's lists are corrupted. Meant to run with the race windows widened
 * (libmallard_race_delays.so). Usage: stress_adopt LIB [rounds=3000] */
#include "it_common.h"

#include <pthread.h>

#include <atomic>

namespace {

constexpr int kBlocks = 3;    /* blocks the first thread leaves behind */
constexpr int kAdopted = 40;  /* blocks the adopter allocates and keeps a while */
constexpr size_t kSize = 112; /* one small size class, rarely used by libc itself */
constexpr int kOther = 16;
constexpr size_t kOtherSizes[4] = {3000, 5000, 7000, 9000};

void* g_left[kBlocks];
std::atomic<int> g_adopting;

void* leave_blocks(void*) {
  for (int i = 0; i < kBlocks; i++) {
    g_left[i] = malloc(kSize);
    if (g_left[i] == nullptr) it_fail("malloc(%zu) failed", kSize);
    it_fill(g_left[i], kSize);
  }
  return nullptr;
}

void* adopt(void*) {
  void* mine[kAdopted];
  g_adopting.store(1, std::memory_order_release);
  for (int i = 0; i < kAdopted; i++) {
    mine[i] = malloc(kSize);
    if (mine[i] == nullptr) it_fail("malloc(%zu) failed in the adopter", kSize);
    it_fill(mine[i], kSize);
  }
  /* Blocks of other classes take fresh pages from the same arena: a page given back by mistake
   * is handed out here, and filling these overwrites the adopted blocks. */
  void* other[kOther];
  for (int i = 0; i < kOther; i++) {
    size_t size = kOtherSizes[i % 4];
    other[i] = malloc(size);
    if (other[i] == nullptr) it_fail("malloc(%zu) failed in the adopter", size);
    it_fill(other[i], size);
  }
  for (int i = 0; i < kAdopted; i++) it_check(mine[i], kSize, "adopted page's block");
  for (int i = 0; i < kOther; i++) {
    it_check(other[i], kOtherSizes[i % 4], "block of another class");
    free(other[i]);
  }
  for (int i = 0; i < kAdopted; i++) free(mine[i]);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "stress_adopt");
  long rounds = it_arg(argc, argv, a, 3000);
  for (long r = 0; r < rounds; r++) {
    pthread_t t;
    if (pthread_create(&t, nullptr, leave_blocks, nullptr) != 0) it_fail("pthread_create failed");
    pthread_join(t, nullptr);
    for (int i = 0; i < kBlocks; i++) it_check(g_left[i], kSize, "abandoned block");
    for (int i = 0; i + 1 < kBlocks; i++) free(g_left[i]);
    g_adopting.store(0, std::memory_order_relaxed);
    if (pthread_create(&t, nullptr, adopt, nullptr) != 0) it_fail("pthread_create failed");
    /* The last block goes while the adopter takes the page: a spread of delays after it starts
     * lands some of these frees inside the (widened) adoption window. */
    while (g_adopting.load(std::memory_order_acquire) == 0) {
    }
    double until = it_now() + (double)(r % 64) * 5e-6;
    while (it_now() < until) {
    }
    free(g_left[kBlocks - 1]);
    pthread_join(t, nullptr);
  }
  printf("stress_adopt: OK: %ld rounds\n", rounds);
  return 0;
}
