/* atfork_linked.c LIB MODE [N]: fork with handlers of a linked library (atfork_lib.c), registered
 * before a preloaded Mallard's constructor runs, and with several forking threads. Run with LIB
 * preloaded. Modes:
 *   mutex N        a thread allocates inside the library's mutex while main forks N times
 *   nested PHASE   the library's prepare (1), parent (2) or child (3) handler forks again; then
 *                  threads must still allocate in parent and child
 *   concurrent N   two threads fork N times each while two others allocate
 * A deadlock ends the test through alarm(). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void lib_work(unsigned x);
extern int lib_nested_fork_in;
extern int lib_nested_failures;

static atomic_int stop;

static void* lib_worker(void* a) {
  unsigned x = 1;
  while (!atomic_load(&stop)) lib_work(x = x * 1103515245u + 12345u);
  return a;
}
static void* alloc_worker(void* a) {
  unsigned x = (unsigned)(size_t)a;
  void* slots[32] = {0};
  while (!atomic_load(&stop)) {
    x = x * 1103515245u + 12345u;
    unsigned i = (x >> 8) % 32;
    free(slots[i]);
    slots[i] = malloc((x >> 16) % 8 == 0 ? 70000 + x % 60000 : 1 + x % 3000);
    if (slots[i] == NULL) _exit(4);
  }
  for (int i = 0; i < 32; i++) free(slots[i]);
  return NULL;
}
static int fork_and_wait(unsigned seed) {
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    alarm(20);
    pthread_t t; /* the child is multi-threaded again and allocates from both threads */
    atomic_store(&stop, 0);
    pthread_create(&t, NULL, alloc_worker, (void*)(size_t)(seed + 7));
    for (unsigned i = 0; i < 200; i++) lib_work(seed + i);
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    _exit(0);
  }
  int st = 0;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "child failed (status 0x%x)\n", st);
    return 1;
  }
  return 0;
}
static void* forker(void* a) {
  int n = (int)(size_t)a;
  for (int i = 0; i < n; i++)
    if (fork_and_wait((unsigned)i)) exit(1);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: atfork_linked LIB mutex|nested|concurrent [N]\n");
    return 2;
  }
  const char* mode = argv[2];
  int n = argc > 3 ? atoi(argv[3]) : 300;
  alarm(120);
  pthread_t t[4];
  if (strcmp(mode, "mutex") == 0) {
    pthread_create(&t[0], NULL, lib_worker, NULL);
    for (int i = 0; i < n; i++)
      if (fork_and_wait((unsigned)i)) return 1;
    atomic_store(&stop, 1);
    pthread_join(t[0], NULL);
  } else if (strcmp(mode, "nested") == 0) {
    pthread_create(&t[0], NULL, alloc_worker, (void*)1);
    pthread_create(&t[1], NULL, lib_worker, NULL);
    lib_nested_fork_in = n;
    if (fork_and_wait(1)) return 1;
    for (int i = 0; i < 50; i++) /* the locks were all given back: forks and threads go on */
      if (fork_and_wait((unsigned)i)) return 1;
    atomic_store(&stop, 1);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    if (lib_nested_failures != 0) {
      fprintf(stderr, "the nested fork's child failed\n");
      return 1;
    }
  } else if (strcmp(mode, "concurrent") == 0) {
    pthread_create(&t[0], NULL, alloc_worker, (void*)1);
    pthread_create(&t[1], NULL, alloc_worker, (void*)2);
    pthread_create(&t[2], NULL, forker, (void*)(size_t)n);
    pthread_create(&t[3], NULL, forker, (void*)(size_t)n);
    pthread_join(t[2], NULL);
    pthread_join(t[3], NULL);
    atomic_store(&stop, 1);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
  } else {
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
  }
  printf("atfork_linked %s: ok\n", mode);
  return 0;
}
