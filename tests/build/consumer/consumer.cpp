// consumer.cpp: the C++ twin of consumer.c: operator new and the standard library's containers
// must allocate from Mallard (a block appears in its statistics). Prints "mallard VERSION".
#include <mallard/mallard.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {
void* volatile keep;
char* volatile keep_dup;
}  // namespace

int main(int argc, char** argv) {
  const std::string want = argc > 1 ? argv[1] : MALLARD_VERSION_STRING;
  if (want != mallard_version() || want != MALLARD_VERSION_STRING) {
    std::fprintf(stderr, "version: library %s, header %s, expected %s\n", mallard_version(),
                 MALLARD_VERSION_STRING, want.c_str());
    return 1;
  }
  static mallard_stats before, after;
  const std::size_t size = std::size_t{1} << 20;
  mallard_get_stats(&before);
  auto block = std::make_unique<std::vector<char>>(size, 'x');
  keep = block->data();
  std::string text(1000, 'y');
  // The C library's own allocations must be Mallard's too: in a static link nothing here names
  // malloc, so only the link options can have brought Mallard's in (kept, never freed here).
  keep_dup = strdup(std::string(size, 'z').c_str());
  mallard_get_stats(&after);
  if (after.bytes_in_use < before.bytes_in_use + 2 * size + text.size()) {
    std::fprintf(stderr, "operator new or malloc is not Mallard's: bytes in use %zu -> %zu\n",
                 before.bytes_in_use, after.bytes_in_use);
    return 1;
  }
  std::printf("mallard %s\n", mallard_version());
  return 0;
}
