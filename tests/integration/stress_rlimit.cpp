/* stress_rlimit: out-of-memory behaviour under RLIMIT_AS = VmSize + 256 MiB.
 * For huge (8 MiB), medium (64 KiB) and small (256 B) blocks, in that order: malloc until it
 * returns NULL (errno must be ENOMEM), check and free everything; the same with `new[]` (must
 * throw std::bad_alloc), nothrow new (must return nullptr) and aligned new. In round 1 each
 * exhaustion must obtain at least a quarter of the headroom; round 2 repeats it all and only
 * requires clean failures (an allocator may keep address space it got for other sizes).
 * Impossible requests (malloc/calloc/realloc/posix_memalign/aligned_alloc/new of ~SIZE_MAX/2,
 * calloc overflow) must fail cleanly with ENOMEM. After each round the program must work
 * normally again (small blocks, 64 KiB and 1 MiB blocks).
 * Usage: stress_rlimit LIB [headroom_MiB=256] */
#include "it_common.h"

#include <sys/resource.h>

#include <new>
#include <string>

namespace {

void* volatile g_sink;
volatile size_t g_huge = SIZE_MAX / 2;
size_t g_headroom;

struct Node { /* every block starts with a link to the previous one and a check word */
  Node* next;
  size_t check;
};

enum class Api { Malloc, New, NothrowNew, AlignedNew };
const char* kApiName[] = {"malloc", "new[]", "new(nothrow)[]", "new(align_val_t)[]"};

/* Allocates `size` blocks with `api` until failure; returns how many succeeded. */
size_t exhaust(Api api, size_t size, int round) {
  Node* head = nullptr;
  size_t count = 0, cap = 2 * g_headroom / size + 4096;
  for (;;) {
    void* p = nullptr;
    errno = 0;
    if (api == Api::Malloc) {
      p = malloc(size);
      if (p == nullptr && errno != ENOMEM)
        it_fail("malloc(%zu) returned NULL with errno %d, not ENOMEM", size, errno);
    } else if (api == Api::New) {
      try {
        p = new char[size];
      } catch (const std::bad_alloc&) {
        p = nullptr;
      }
    } else if (api == Api::NothrowNew) {
      p = new (std::nothrow) char[size];
    } else {
      try {
        p = new (std::align_val_t{64}) char[size];
        if ((uintptr_t)p % 64 != 0) it_fail("aligned new returned %p", p);
      } catch (const std::bad_alloc&) {
        p = nullptr;
      }
    }
    if (p == nullptr) break;
    g_sink = p;
    Node* n = (Node*)p;
    n->next = head;
    n->check = count ^ 0x5A5A5A5A;
    head = n;
    if (++count > cap) it_fail("%s(%zu): never failed under RLIMIT_AS", kApiName[(int)api], size);
  }
  if (round == 1 && count * size < g_headroom / 4)
    it_fail("%s(%zu): failed after only %zu blocks (%.1f MiB of %zu MiB headroom), round %d",
            kApiName[(int)api], size, count, (double)(count * size) / IT_MiB, g_headroom / IT_MiB,
            round);
  for (size_t i = count; head != nullptr; i--) { /* check and free, newest first */
    Node* next = head->next;
    if (head->check != ((i - 1) ^ 0x5A5A5A5A))
      it_fail("%s block %zu corrupted", kApiName[(int)api], i - 1);
    if (api == Api::Malloc)
      free(head);
    else if (api == Api::AlignedNew)
      ::operator delete[](head, std::align_val_t{64});
    else
      delete[](char*) head;
    head = next;
  }
  return count;
}

void expect_null(void* p, const char* what) {
  if (p != nullptr) it_fail("%s succeeded (%p), expected NULL", what, p);
  if (errno != ENOMEM) it_fail("%s: errno %d, expected ENOMEM", what, errno);
}

/* Requests that can never succeed. */
void impossible(void) {
  errno = 0;
  expect_null(malloc(g_huge), "malloc(SIZE_MAX/2)");
  errno = 0;
  expect_null(calloc(g_huge, 4), "calloc(SIZE_MAX/2, 4) (overflow)");
  errno = 0;
  expect_null(calloc(1, g_huge), "calloc(1, SIZE_MAX/2)");
  errno = 0;
  expect_null(aligned_alloc(64, g_huge & ~(size_t)63), "aligned_alloc(64, SIZE_MAX/2)");
  void* q = nullptr;
  int rc = posix_memalign(&q, 64, g_huge);
  if (rc != ENOMEM) it_fail("posix_memalign(64, SIZE_MAX/2) = %d, expected ENOMEM", rc);
  char* p = (char*)malloc(100);
  if (p == nullptr) it_fail("malloc(100) failed");
  it_fill(p, 100);
  g_sink = p; /* the compiler must not reason about p after realloc */
  errno = 0;
  expect_null(realloc(g_sink, g_huge), "realloc(p, SIZE_MAX/2)");
  it_check(g_sink, 100, "block after failed realloc");
  free(g_sink);
  try {
    g_sink = ::operator new(g_huge);
    it_fail("operator new(SIZE_MAX/2) did not throw");
  } catch (const std::bad_alloc&) {
  }
  if (::operator new(g_huge, std::nothrow) != nullptr)
    it_fail("nothrow new(SIZE_MAX/2) != nullptr");
}

/* Grows the stack now: under RLIMIT_AS a later stack extension could fail (SIGSEGV). */
[[gnu::noinline]] void prefault_stack(void) {
  volatile char buf[256 * 1024];
  for (size_t i = 0; i < sizeof buf; i += 4096) buf[i] = 1;
}

/* After OOM the program must work normally. */
void normal_work(void) {
  void* big[20];
  for (int i = 0; i < 20; i++) {
    size_t size = i < 4 ? IT_MiB : 64 * 1024;
    big[i] = malloc(size);
    if (big[i] == nullptr) it_fail("malloc(%zu) failed after freeing everything", size);
    memset(big[i], 1, size);
  }
  for (int i = 0; i < 20; i++) free(big[i]);
  static void* ptrs[10000]; /* static: stack growth can fail under RLIMIT_AS */
  static size_t sizes[10000];
  it_rng r{7};
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 10000; i++) {
      sizes[i] = r.range(1, 8192);
      ptrs[i] = malloc(sizes[i]);
      if (ptrs[i] == nullptr) it_fail("malloc(%zu) failed after recovery", sizes[i]);
      it_fill(ptrs[i], sizes[i]);
    }
    for (int i = 0; i < 10000; i++) {
      it_check(ptrs[i], sizes[i], "after recovery");
      free(ptrs[i]);
    }
  }
  std::string* s = new std::string(1000, 'x');
  delete s;
}

}  // namespace

int main(int argc, char** argv) {
  int a = it_setup(argc, argv, "stress_rlimit");
  g_headroom = (size_t)it_arg(argc, argv, a, 256) * IT_MiB;
  impossible();
  free(malloc(1000)); /* make sure the allocator is initialised before measuring */
  prefault_stack();
  size_t vm = it_vmsize();
  struct rlimit rl = {vm + g_headroom, vm + g_headroom};
  if (setrlimit(RLIMIT_AS, &rl) != 0) it_fail("setrlimit(RLIMIT_AS): %s", strerror(errno));
  printf("RLIMIT_AS = VmSize %.1f MiB + %zu MiB\n", (double)vm / IT_MiB, g_headroom / IT_MiB);
  const size_t sizes[] = {8 * IT_MiB, 64 * 1024, 256};
  for (int round = 1; round <= 2; round++) {
    for (size_t size : sizes) {
      for (int api = 0; api < 4; api++) {
        size_t n = exhaust((Api)api, size, round);
        printf("round %d: %-20s %8zu B: %7zu blocks (%.0f MiB) before failure\n", round,
               kApiName[api], size, n, (double)(n * size) / IT_MiB);
      }
    }
    impossible();
    normal_work();
  }
  printf("stress_rlimit: OK\n");
  return 0;
}
