/* bad_pointer: performs one invalid free/realloc, chosen by MODE, for death tests (run it through
 * expect_abort.sh). Before the bad call it prints "bad_pointer: MODE: calling CALL(0x...)" to
 * stdout; if the call returns, it reports "not detected" and exits 3.
 *   double_free     free() of a 64-byte block twice
 *   foreign_stack   free() of a stack address
 *   foreign_static  free() of a static (.bss) address
 *   interior_small  free(p + 16) of a 64-byte block
 *   interior_large  free(p + 16) of a 1 MiB block
 *   realloc_freed   realloc() of a freed 64-byte block
 * Usage: bad_pointer LIB MODE */
#include "it_common.h"

namespace {

alignas(64) char g_static[256];

/* Hides the pointer's origin from the compiler (no -Wfree-nonheap-object / -Wuse-after-free). */
void* volatile g_hidden;
void* launder(void* p) {
  g_hidden = p;
  return g_hidden;
}

void announce(const char* mode, const char* call, void* p) {
  printf("bad_pointer: %s: calling %s(%p)\n", mode, call, p);
  fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "bad_pointer");
  if (a >= argc) it_fail("usage: bad_pointer LIB MODE");
  const char* mode = argv[a];
  /* a few neighbours so the bad block is not alone in its page */
  void* keep[8];
  for (int i = 0; i < 8; i++) keep[i] = malloc(64);
  char stack_buf[256];
  memset(stack_buf, 1, sizeof stack_buf);
  g_static[0] = 1;
  if (strcmp(mode, "double_free") == 0) {
    void* p = malloc(64);
    g_hidden = p;
    free(p);
    announce(mode, "free", g_hidden);
    free(g_hidden);
  } else if (strcmp(mode, "foreign_stack") == 0) {
    void* p = launder(stack_buf + 64);
    announce(mode, "free", p);
    free(p);
  } else if (strcmp(mode, "foreign_static") == 0) {
    void* p = launder(g_static + 64);
    announce(mode, "free", p);
    free(p);
  } else if (strcmp(mode, "interior_small") == 0 || strcmp(mode, "interior_large") == 0) {
    size_t size = mode[9] == 's' ? 64 : 1024 * 1024;
    char* p = (char*)malloc(size);
    if (p == nullptr) it_fail("malloc(%zu) failed", size);
    memset(p, 2, size);
    void* q = launder(p + 16);
    announce(mode, "free", q);
    free(q);
  } else if (strcmp(mode, "realloc_freed") == 0) {
    void* p = malloc(64);
    g_hidden = p;
    free(p);
    announce(mode, "realloc", g_hidden);
    void* q = realloc(g_hidden, 128);
    printf("bad_pointer: realloc returned %p\n", q);
  } else {
    it_fail("unknown mode '%s'", mode);
  }
  fprintf(stderr, "bad_pointer: %s: the invalid call was not detected (no abort)\n", mode);
  for (int i = 0; i < 8; i++) free(keep[i]);
  return 3;
}
