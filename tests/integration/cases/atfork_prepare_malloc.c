// From ../shared/cases/dropin/atfork_prepare_malloc.c; run by expect_output.sh in tests/integration/CMakeLists.txt.
// A constructor registers a pthread_atfork prepare handler that allocates, before the first
// malloc. Expected: "fork returned", exit 0 (no deadlock).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void* volatile keep;
static void prepare(void) { keep = malloc(100 * 1024); }   /* e.g. snapshot state before fork */
__attribute__((constructor)) static void lib_init(void) { pthread_atfork(prepare, NULL, NULL); }
int main(void) {
  keep = malloc(10); 
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, NULL, 0);
  puts("fork returned");
  return 0;
}
