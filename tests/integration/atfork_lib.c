/* atfork_lib.c -> libit_atfork_lib.so: a library the test program links (DT_NEEDED), so its
 * constructor, which registers fork handlers, runs before a preloaded Mallard's constructor.
 *   - The textbook fork-safe library: prepare locks the library's mutex, parent and child unlock
 *     it; lib_work() allocates while holding the mutex. (glibc takes its malloc locks after every
 *     prepare handler; an allocator whose prepare ran first would deadlock here.)
 *   - lib_nested_fork_in: which of its handlers also calls fork() (0 none, 1 prepare, 2 parent,
 *     3 child), waiting for that nested child, which allocates and exits. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t lib_mutex = PTHREAD_MUTEX_INITIALIZER;
int lib_nested_fork_in = 0;
int lib_nested_failures = 0;

static void nested_fork(int phase) {
  if (lib_nested_fork_in != phase) return;
  lib_nested_fork_in = 0; /* once */
  pid_t pid = fork();
  if (pid == 0) {
    void* p = malloc(100000);
    void* q = malloc(40);
    free(p);
    free(q);
    _exit(0);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    ++lib_nested_failures;
}
/* The nested fork runs this library's handlers again: it must not hold its own mutex then. */
static void prepare(void) {
  nested_fork(1);
  pthread_mutex_lock(&lib_mutex);
}
static void parent(void) {
  pthread_mutex_unlock(&lib_mutex);
  nested_fork(2);
}
static void child(void) {
  pthread_mutex_unlock(&lib_mutex);
  nested_fork(3);
}
__attribute__((constructor)) static void lib_init(void) {
  pthread_atfork(prepare, parent, child);
}

void lib_work(unsigned x) {
  pthread_mutex_lock(&lib_mutex);
  void* volatile p = malloc(x % 2 ? 70000 + x % 50000 : 16 + x % 4000); /* large: arena lock */
  memset(p, 0, 16);
  free(p);
  pthread_mutex_unlock(&lib_mutex);
}
