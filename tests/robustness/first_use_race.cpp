// first_use_race.cpp: the first allocations of a process, made by several threads at once.
// Each thread gets its own arena, and each arena's first segment registers itself in the segment
// map's fast map, which the first of them reserves (issue 10).
// Regression (CI of stop 17, TSan): the arenas that lost the race to reserve the fast map wrote
// its published address too (a plain word that free reads), racing with the winner.
// Each round forks a child (a process whose allocator state is still untouched: this program
// allocates only through the prefixed API, and only in the children), which starts kThreads
// threads that allocate at the same moment; the child reports through its exit status.
// Usage: first_use_race [ROUNDS] (default 200).
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rb_common.h"

namespace {

constexpr int kThreads = 6;
pthread_barrier_t g_start;

void* first_allocations(void* arg) {
  auto i = static_cast<std::uint64_t>(reinterpret_cast<std::intptr_t>(arg));
  pthread_barrier_wait(&g_start);
  void* small = mallard_malloc(48);
  void* large = mallard_malloc(300 * 1024);  // a large span: the arena grows at once
  RB_CHECK(small != nullptr && large != nullptr, "mallard_malloc");
  rb::fill(small, 48, i);
  rb::fill(large, 300 * 1024, i + 100);
  rb::check_pattern(small, 48, i, "small block");
  rb::check_pattern(large, 300 * 1024, i + 100, "large block");
  mallard_free(small);
  mallard_free(large);
  return nullptr;
}

[[noreturn]] void child() {
  pthread_barrier_init(&g_start, nullptr, kThreads);
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i)
    RB_CHECK(pthread_create(&threads[i], nullptr, first_allocations,
                            reinterpret_cast<void*>(std::intptr_t{i})) == 0,
             "pthread_create");
  for (pthread_t t : threads) pthread_join(t, nullptr);
  mallard_check_heap();
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  rb::g_prog = "first_use_race";
  long rounds = rb::arg(argc, argv, 1, 200);
  for (long r = 0; r < rounds; ++r) {
    pid_t pid = fork();
    RB_CHECK(pid >= 0, "fork");
    if (pid == 0) child();
    int status = 0;
    RB_CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    RB_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "round %ld: the child ended with status %#x (a sanitizer report exits with 66)", r,
             status);
  }
  rb::say("first_use_race: ok: %ld rounds of %d threads", rounds, kThreads);
  return 0;
}
