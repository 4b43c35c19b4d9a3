/* dlopen_program.c LIB: loads libmallard.so with dlopen (its TLS must fit the static TLS
 * surplus) and uses its prefixed API from two threads. */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef void* (*malloc_fn)(size_t);
typedef void (*free_fn)(void*);
static malloc_fn m;
static free_fn f;

static void* work(void* arg) {
  (void)arg;
  for (int i = 0; i < 100000; ++i) {
    char* p = m((size_t)(i % 3000) + 1);
    if (p == NULL) return (void*)1;
    memset(p, 1, (size_t)(i % 3000) + 1);
    f(p);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  void* h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  m = (malloc_fn)dlsym(h, "mallard_malloc");
  f = (free_fn)dlsym(h, "mallard_free");
  if (m == NULL || f == NULL) return 1;
  pthread_t t[2];
  void* r[2];
  for (int i = 0; i < 2; ++i) pthread_create(&t[i], NULL, work, NULL);
  for (int i = 0; i < 2; ++i) pthread_join(t[i], &r[i]);
  if (r[0] != NULL || r[1] != NULL) return 1;
  puts("dlopen_program: ok");
  return 0;
}
