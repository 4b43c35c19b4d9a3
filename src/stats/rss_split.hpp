// rss_split.hpp: where the process's resident memory is, Mallard's part and the rest, from
// /proc/self/smaps and mincore (os/proc_maps.hpp). For the exit report ("why is my RSS this
// big?"); walks every mapping, so never on an allocation path. Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mallard::stats {

struct LargestMapping {
  char name[96] = {};  // a file's base name, "[anon:NAME]", or "" (anonymous)
  std::uintptr_t start = 0;
  std::size_t rss = 0;
};

struct RssSplit {
  bool known = false;            // false: /proc/self/smaps could not be read
  std::size_t total = 0;         // every mapping's Rss
  std::size_t mallard = 0;       // resident pages of Mallard's segments and huge blocks (mincore)
  std::size_t anonymous = 0;     // anonymous mappings not Mallard's (other allocators, thread
  unsigned anonymous_count = 0;  // stacks, JIT code) and the number of them that hold any
  std::size_t brk_other = 0;     // the [heap] (brk) pages that are not Mallard's (sbrk users)
  std::size_t stack = 0;         // the main thread's [stack]
  std::size_t files = 0;         // file mappings: the program, libraries, mapped data files
  std::size_t other = 0;         // [vdso], [vvar] and other kernel mappings
  static constexpr int kLargest = 3;
  LargestMapping largest_anonymous[kLargest];
  LargestMapping largest_files[kLargest];  // by file: the Rss of all its mappings
};

// Fills *out (uses about 3 KiB of stack). Mallard's metadata outside its segments (heap
// records, the segment map) counts as anonymous: it is a few hundred KiB.
[[gnu::cold]] void split_rss(RssSplit* out);

}  // namespace mallard::stats
