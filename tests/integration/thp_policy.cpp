/* thp_policy: the transparent-huge-page advice Mallard gives the kernel (option thp, issue 11
 * part 4), read back from the VmFlags of /proc/self/smaps ("hg": MADV_HUGEPAGE, "nh":
 * MADV_NOHUGEPAGE).
 *   kernel   neither flag, anywhere: the kernel's system-wide mode decides
 *   never    "nh" on the heap's memory, small heap or large
 *   always   "hg" on the heap's memory, small heap or large
 *   auto     "nh" on arena segments; on huge blocks "nh" while the heap holds less than 64 MiB in
 *            use, "hg" once it holds more
 * Exits 77 (skipped) on a kernel without transparent huge pages, or one that refuses the advice.
 * Usage: thp_policy LIB kernel|never|always|auto */
#include "it_common.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// The VmFlags of the mapping that holds p: "hg", "nh" or "" (neither).
std::string thp_flag_of(const void* p) {
  FILE* f = fopen("/proc/self/smaps", "r");
  if (f == nullptr) it_fail("open /proc/self/smaps: %s", strerror(errno));
  char line[1024];
  bool inside = false;
  std::string flag = "?";
  auto a = reinterpret_cast<uintptr_t>(p);
  while (fgets(line, sizeof line, f) != nullptr) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && strncmp(line, "VmFlags:", 8) == 0) {
      flag = strstr(line, " hg") != nullptr ? "hg" : strstr(line, " nh") != nullptr ? "nh" : "";
      break;
    }
  }
  fclose(f);
  if (flag == "?") it_fail("no mapping holds %p", p);
  return flag;
}

void expect(const char* what, const void* p, const std::string& want) {
  std::string got = thp_flag_of(p);
  printf("  %-44s %p: VmFlags %s\n", what, p, got.empty() ? "(neither)" : got.c_str());
  if (got != want)
    it_fail("%s: want %s, got %s", what, want.empty() ? "neither flag" : want.c_str(),
            got.empty() ? "neither flag" : got.c_str());
}

}  // namespace

// Whether this kernel takes huge-page advice at all (built with THP, and no filter refuses it).
bool kernel_takes_thp_advice() {
  if (access("/sys/kernel/mm/transparent_hugepage/enabled", R_OK) != 0) return false;
  const size_t size = 4 * IT_MiB;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) it_fail("mmap: %s", strerror(errno));
  bool ok = madvise(p, size, MADV_HUGEPAGE) == 0 && madvise(p, size, MADV_NOHUGEPAGE) == 0;
  munmap(p, size);
  return ok;
}

int main(int argc, char** argv) {
  const char* mode = argc > 2 ? argv[2] : "auto";
  if (!kernel_takes_thp_advice()) {
    printf(
        "thp_policy: this kernel has no transparent huge pages, or refuses the advice: skipped\n");
    return 77;
  }
  std::string opt = std::string("thp=") + mode;
  setenv("MALLARD_OPTIONS", opt.c_str(), 1);  // before the re-exec that preloads the library
  it_setup(argc, argv, "thp_policy");
  // What each mode wants of: a small block of a small heap, a huge block of a small heap, a huge
  // block once the heap holds 70 MiB, an arena segment mapped then.
  std::string small_want, early_huge_want, late_huge_want, segment_want;
  if (strcmp(mode, "kernel") == 0) {
    small_want = early_huge_want = late_huge_want = segment_want = "";
  } else if (strcmp(mode, "never") == 0) {
    small_want = early_huge_want = late_huge_want = segment_want = "nh";
  } else if (strcmp(mode, "always") == 0) {
    small_want = early_huge_want = late_huge_want = segment_want = "hg";
  } else if (strcmp(mode, "auto") == 0) {
    small_want = early_huge_want = segment_want = "nh";
    late_huge_want = "hg";
  } else {
    it_fail("unknown mode %s", mode);
  }
  // A small heap: its first segment, and a huge block.
  void* small = malloc(100);
  expect("small block, small heap", small, small_want);
  void* early_huge = malloc(4 * IT_MiB);
  expect("4 MiB huge block, small heap", early_huge, early_huge_want);
  // The heap past 64 MiB in use (huge blocks, touched).
  std::vector<void*> held;
  for (int i = 0; i < 70; i++) {
    held.push_back(malloc(IT_MiB));
    memset(held.back(), 1, IT_MiB);
  }
  void* late_huge = malloc(4 * IT_MiB);
  expect("4 MiB huge block, 70 MiB in use", late_huge, late_huge_want);
  // A new arena segment mapped now: direct mmap off, so a 100 MiB block needs one of its own.
  if (mallopt(M_MMAP_MAX, 0) != 1) it_fail("mallopt(M_MMAP_MAX, 0) refused");
  void* late_span = malloc(100 * IT_MiB);
  if (late_span == nullptr) it_fail("malloc(100 MiB) failed");
  expect("100 MiB arena span, 70 MiB in use (middle)", static_cast<char*>(late_span) + 50 * IT_MiB,
         segment_want);
  memset(late_span, 2, 100 * IT_MiB);
  FILE* f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  while (f != nullptr && fgets(line, sizeof line, f) != nullptr)
    if (strncmp(line, "AnonHugePages:", 14) == 0) printf("  %s", line);  // shown, not required
  if (f != nullptr) fclose(f);
  free(late_span);
  for (void* p : held) free(p);
  free(late_huge);
  free(early_huge);
  free(small);
  printf("thp_policy %s: ok\n", mode);
  return 0;
}
