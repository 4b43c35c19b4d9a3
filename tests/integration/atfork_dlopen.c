/* atfork_dlopen.c LIB [forks]: fork handlers registered BEFORE Mallard's own. The program registers
 * its handlers, then dlopen()s Mallard (whose constructor registers Mallard's): Mallard's prepare
 * handler then runs first and takes every lock, and the program's prepare handler, which runs
 * after it, and its parent and child handlers, which run before Mallard's, allocate and free
 * through Mallard (mallard_malloc, mallard_free) while two threads do the same. Expected: every
 * fork returns, parent and children allocate, exit 0. Three of the handlers' calls fork again
 * (nested forks inside Mallard's fork window). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void* (*m_malloc)(size_t);
static void (*m_free)(void*);
static atomic_int stop;

static void work(size_t big) {
  void* a = m_malloc(100 * 1024);
  void* b = m_malloc(big);
  if (a == NULL || b == NULL) _exit(3);
  memset(a, 1, 1024);
  m_free(a);
  m_free(b);
}
/* Once each, a handler forks again from inside Mallard's fork window (the handlers here run
 * after Mallard's prepare and before its parent and child handlers): nested forks. */
static int nested_in = 0, nested_failures = 0;
static void nested_fork(int phase) {
  if (nested_in != phase) return;
  nested_in = 0;
  pid_t pid = fork();
  if (pid == 0) {
    work(5000);
    _exit(0);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    ++nested_failures;
}
static void prepare(void) {
  work(40);
  nested_fork(1);
}
static void parent(void) {
  work(300000);
  nested_fork(2);
}
static void child(void) {
  work(2000);
  nested_fork(3);
}

static void* worker(void* arg) {
  unsigned x = (unsigned)(size_t)arg;
  void* slots[32] = {0};
  while (!atomic_load(&stop)) {
    x = x * 1103515245u + 12345u;
    unsigned i = (x >> 8) % 32;
    m_free(slots[i]);
    size_t n = (x >> 16) % 4 == 0 ? 70000 + x % 100000 : 1 + x % 2000;
    slots[i] = m_malloc(n);
    if (slots[i] == NULL) _exit(4);
  }
  for (int i = 0; i < 32; i++) m_free(slots[i]);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: atfork_dlopen LIB [forks]\n");
    return 2;
  }
  int forks = argc > 2 ? atoi(argv[2]) : 200;
  alarm(120);                             /* a deadlock ends the test with SIGALRM */
  pthread_atfork(prepare, parent, child); /* before Mallard's */
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (lib == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  m_malloc = (void* (*)(size_t))dlsym(lib, "mallard_malloc");
  m_free = (void (*)(void*))dlsym(lib, "mallard_free");
  if (m_malloc == NULL || m_free == NULL) {
    fprintf(stderr, "no mallard_malloc\n");
    return 1;
  }
  m_free(m_malloc(10));
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker, (void*)(size_t)(i + 1));
  for (int n = 0; n < forks; n++) {
    if (n == 10 || n == 20 || n == 30) nested_in = n / 10; /* prepare, parent, child */
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      alarm(20);
      for (int i = 0; i < 100; i++) work((size_t)i * 1000 + 1);
      _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "child of fork %d failed (status 0x%x)\n", n, st);
      return 1;
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  if (nested_failures != 0) {
    fprintf(stderr, "a nested fork's child failed\n");
    return 1;
  }
  printf(
      "atfork_dlopen: %d forks returned with handlers registered before Mallard's, 3 of them "
      "forking again inside the fork window\n",
      forks);
  return 0;
}
