/* sizes.c: the kind of fault behind ../shared/cases/dropin/realloc_huge_overlap.c, on every path.
 * Every allocation call, with sizes and alignments near each limit a size passes through (2^32
 * pages, 2^44, the 64 TiB request bound, 2^47, SIZE_MAX), with direct mmap allowed and refused
 * (mallopt(M_MMAP_MAX, 0): the arena path), either returns NULL with errno ENOMEM (EINVAL for an
 * invalid alignment) and leaves the block it was given unchanged, or returns a block at least as
 * large as asked (then it writes both ends of it). Prints "RESULT: PASS" or the first wrong call. */
#include "common.h"
#include <errno.h>
#include <malloc.h>
#include <stdint.h>

static int wrong;
static void fail(const char *call, size_t n, void *p, int err) {
  printf("WRONG %s(%zu) = %p errno %d usable %zu\n", call, n, p, err, p ? malloc_usable_size(p) : 0);
  wrong++;
}
/* A returned block must hold n bytes: touch its first and last byte (a short block would overlap
 * a later one; the heap checker and the next allocation see that). */
static void check(const char *call, size_t n, void *p, int err) {
  if (p == NULL) {
    if (err != ENOMEM) fail(call, n, p, err);
    return;
  }
  if (malloc_usable_size(p) < n) { fail(call, n, p, err); return; }
  ((volatile char *)p)[0] = 1;
  ((volatile char *)p)[n - 1] = 1;
}

static const size_t kPage = 4096;
static size_t sizes[] = {
    ((size_t)1 << 32) * 4096 + 20 * 4096, /* 2^32 pages + 20: wraps a 32-bit page count */
    ((size_t)1 << 32) * 4096 - 4096,      /* just under 2^32 pages */
    ((size_t)1 << 31) * 4096 + 4096,      /* just over the largest segment */
    ((size_t)1 << 44) + 80 * 1024,
    ((size_t)1 << 46), ((size_t)1 << 46) + 1, ((size_t)1 << 47), ((size_t)1 << 48) + 17 * 4096,
    (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, SIZE_MAX - 4096, SIZE_MAX - 15, SIZE_MAX};

static void run_all(const char *mode) {
  printf("mode %s\n", mode);
  for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    size_t n = sizes[i];
    void *p;
    errno = 0; p = malloc(n); check("malloc", n, p, errno); free(p);
    errno = 0; p = calloc(1, n); check("calloc", n, p, errno); free(p);
    errno = 0; p = calloc(n / 2 + 1, 2); if (n > 4) { check("calloc2", (n / 2 + 1) * 2, p, errno); } free(p);
    errno = 0; p = memalign(1 << 16, n); check("memalign", n, p, errno); free(p);
    errno = 0; p = aligned_alloc(1 << 22, n); check("aligned_alloc", n, p, errno); free(p);
    errno = 0; p = valloc(n); check("valloc", n, p, errno); free(p);
    p = NULL;
    int rc = posix_memalign(&p, 4096, n);
    if ((rc != 0) != (p == NULL) || (rc != 0 && rc != ENOMEM)) fail("posix_memalign", n, p, rc);
    else if (p) check("posix_memalign", n, p, 0);
    free(p);
    /* realloc of a small, a large and a huge block, growing to n: NULL leaves the block as it
     * was (same usable size, same contents). */
    size_t from[] = {24, 17 * kPage, 9 << 20};
    for (unsigned j = 0; j < 3; ++j) {
      char *q = malloc(from[j]);
      memset(q, 'q', from[j]);
      size_t before = malloc_usable_size(q);
      errno = 0;
      char *r = realloc(q, n);
      if (r == NULL) {
        if (errno != ENOMEM || malloc_usable_size(q) != before || q[0] != 'q' || q[from[j] - 1] != 'q')
          fail("realloc", n, q, errno);
        /* The next allocation must not overlap the block. */
        char *next = malloc(100 * 1024);
        if (next != NULL && next < q + before && q < next + 100 * 1024) fail("realloc-overlap", n, next, 0);
        free(next);
        free(q);
      } else {
        check("realloc", n, r, errno);
        free(r);
      }
    }
  }
}

int main(void) {
  static char obuf[1 << 16];
  setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
  run_all("default");
  mallopt(M_MMAP_MAX, 0); /* no direct mmap: every big block comes from an arena */
  run_all("mmap_max=0");
  if (wrong) { RESULT("FAIL", "%d calls broke the size contract", wrong); return 1; }
  RESULT("PASS", "every call returned NULL/ENOMEM or a block of the size asked");
  return 0;
}
