// rss_split.cpp: the process's RSS split into Mallard's part and the rest, mapping by mapping.
// Mallard's part is found granule by granule (segment_map::lookup) and counted with mincore; the
// rest of a mapping is the kernel's Rss less that.
#include "stats/rss_split.hpp"

#include <cstring>

#include "backend/segment_map.hpp"
#include "os/proc_maps.hpp"

namespace mallard::stats {
namespace {

const char* base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

// Keeps the kLargest largest entries (by rss), merging an entry of the same name (a file's
// several mappings) when merge is set.
[[gnu::cold]] void note_largest(LargestMapping (&top)[RssSplit::kLargest], const char* name,
                                std::uintptr_t start, std::size_t rss, bool merge) {
  int slot = -1;
  if (merge) {
    for (int i = 0; i < RssSplit::kLargest; ++i)
      if (top[i].rss != 0 && std::strcmp(top[i].name, name) == 0) slot = i;
  }
  if (slot >= 0) {
    top[slot].rss += rss;
  } else {
    slot = RssSplit::kLargest - 1;
    if (top[slot].rss >= rss) return;
    std::size_t n = std::strlen(name);
    if (n >= sizeof top[slot].name) n = sizeof top[slot].name - 1;
    std::memcpy(top[slot].name, name, n);
    top[slot].name[n] = '\0';
    top[slot].start = start;
    top[slot].rss = rss;
  }
  for (int i = slot; i > 0 && top[i].rss > top[i - 1].rss; --i) {
    LargestMapping t = top[i];
    top[i] = top[i - 1];
    top[i - 1] = t;
  }
}

// Mallard's resident bytes inside [start, end): the granules the segment map knows.
std::size_t mallard_resident_in(std::uintptr_t start, std::uintptr_t end) {
  std::size_t resident = 0;
  for (std::uintptr_t a = start; a < end;) {
    std::uintptr_t next = (a & ~(kSegmentSize - 1)) + kSegmentSize;
    if (next > end || next < a) next = end;
    if (segment_map::lookup(reinterpret_cast<const void*>(a)) != nullptr)
      resident += os::resident_in(a, next - a);
    a = next;
  }
  return resident;
}

[[gnu::cold]] void visit(void* context, const os::Mapping& m) {
  auto* out = static_cast<RssSplit*>(context);
  out->total += m.rss;
  if (m.rss == 0) return;
  const char* path = m.path;
  bool anonymous = path[0] == '\0' || std::strncmp(path, "[anon", 5) == 0;
  bool brk = std::strcmp(path, "[heap]") == 0;
  if (path[0] == '/') {
    out->files += m.rss;
    note_largest(out->largest_files, base_name(path), m.start, m.rss, true);
    return;
  }
  if (std::strncmp(path, "[stack", 6) == 0) {
    out->stack += m.rss;
    return;
  }
  if (!anonymous && !brk) {
    out->other += m.rss;
    return;
  }
  std::size_t mine = mallard_resident_in(m.start, m.end);
  if (mine > m.rss) mine = m.rss;  // mincore and Rss disagree on a page being torn down
  out->mallard += mine;
  std::size_t rest = m.rss - mine;
  if (rest == 0) return;
  if (brk) {
    out->brk_other += rest;
  } else {
    out->anonymous += rest;
    ++out->anonymous_count;
    note_largest(out->largest_anonymous, path, m.start, rest, false);
  }
}

}  // namespace

void split_rss(RssSplit* out) {
  *out = RssSplit{};
  out->known = os::for_each_mapping(visit, out);
}

}  // namespace mallard::stats
