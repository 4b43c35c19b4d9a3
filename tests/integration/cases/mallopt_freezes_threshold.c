// From ../shared/cases/dropin/mallopt_freezes_threshold.c (glibc knobs that must freeze the dynamic
// mmap threshold); run by expect_output.sh in tests/integration/CMakeLists.txt: the whole program
// (RESULT: PASS), and its child mode ("0": no mallopt) under each MALLOC_*_ variable and tunable.
/* Setting M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX or M_MMAP_THRESHOLD (mallopt, MALLOC_*_ variables,
 * GLIBC_TUNABLES) turns off the dynamic mmap threshold (mallopt(3)). Expected: hblks=1 in all six
 * cases, "RESULT: PASS". */
#include "common.h"
#include <malloc.h>

static int second_is_mmapped(void) {
  { void *volatile v = malloc(1 << 20); memset(v, 1, 4096); free(v); }
  void *p = malloc(1 << 20);
  memset(p, 1, 4096);
  int h = (int)mallinfo2().hblks;
  free(p);
  return h;
}

int main(int argc, char **argv) {
  if (argc > 1) { /* child: one case */
    int which = atoi(argv[1]);
    int ok = 1;
    if (which == 1) ok = mallopt(M_TRIM_THRESHOLD, 256 * 1024);
    if (which == 2) ok = mallopt(M_TOP_PAD, 64 * 1024);
    if (which == 3) ok = mallopt(M_MMAP_MAX, 65536);
    if (which == 4) ok = mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    printf("%d %d\n", ok, second_is_mmapped());
    return 0;
  }
  const char *names[] = {"(none)", "M_TRIM_THRESHOLD", "M_TOP_PAD", "M_MMAP_MAX", "M_MMAP_THRESHOLD",
                         "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"};
  const char *envs[] = {"", "", "", "", "", "MALLOC_TRIM_THRESHOLD_=262144 ",
                        "GLIBC_TUNABLES=glibc.malloc.trim_threshold=262144 "};
  int h[7], bad = 0;
  char out[200] = "";
  for (int i = 0; i < 7; i++) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/proc/%d/exe %d", envs[i], getpid(), i < 5 ? i : 0);
    FILE *f = popen(cmd, "r");
    int ok = 0;
    h[i] = -1;
    if (f) { if (fscanf(f, "%d %d", &ok, &h[i]) != 2) h[i] = -1; pclose(f); }
    printf("%-22s mallopt=%d  second 1 MiB block mmapped: hblks=%d\n", names[i], ok, h[i]);
    if (i > 0 && h[i] != 1) { bad++; snprintf(out + strlen(out), sizeof out - strlen(out), "%s ", names[i]); }
  }
  if (h[4] != 1) { RESULT("SKIP", "mallinfo2 does not reflect this allocator's mmaps (baseline hblks=%d)", h[4]); return 0; }
  if (bad) { RESULT("FAIL", "dynamic threshold still active after %s(hblks=0)", out); return 1; }
  RESULT("PASS", "all six settings freeze the threshold (baseline rises: hblks=%d)", h[0]);
  return 0;
}
