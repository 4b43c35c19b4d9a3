// proc_maps.hpp: the process's own mappings as the kernel lists them (/proc/self/smaps), read
// without allocating, and the resident pages of a range (mincore). For the exit report's "where is
// the RSS outside Mallard"; never used on an allocation path.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mallard::os {

struct Mapping {
  std::uintptr_t start = 0, end = 0;
  char perms[5] = {};   // "rw-p"
  char path[192] = {};  // file path, "[heap]", "[stack]", "[vdso]"...; "" if anonymous (cut)
  std::size_t rss = 0;  // resident bytes (smaps "Rss:")
};

// Calls visit(context, m) for every mapping of /proc/self/smaps, in address order. False if the
// file could not be read (no /proc).
[[gnu::cold]] bool for_each_mapping(void (*visit)(void* context, const Mapping& m), void* context);

// Resident bytes of the pages in [start, start + size) (both page-aligned), by mincore(2).
[[gnu::cold]] std::size_t resident_in(std::uintptr_t start, std::size_t size);

}  // namespace mallard::os
