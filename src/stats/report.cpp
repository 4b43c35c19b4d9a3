// report.cpp: the text and JSON reports and glibc's malloc_stats / malloc_info formats.
#include "stats/report.hpp"

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "backend/arena_registry.hpp"
#include "backend/huge.hpp"
#include "config/options.hpp"
#include "stats/owned_lock.hpp"
#include "stats/peak.hpp"
#include "stats/rss_split.hpp"
#include "stats/snapshot.hpp"

namespace mallard::stats {
namespace {

void line(os::TextWriter& w, const char* label, std::size_t bytes) {
  w.str("  ").str(label);
  for (std::size_t i = __builtin_strlen(label); i < 22; ++i) w.ch(' ');
  w.bytes_human(bytes);
}

void json_field(os::TextWriter& w, const char* key, std::size_t v, bool comma = true) {
  w.ch('"').str(key).str("\":").u(v);
  if (comma) w.ch(',');
}

// A JSON string: quotes, backslashes and control characters escaped (other bytes as they are).
void json_string(os::TextWriter& w, const char* s) {
  w.ch('"');
  for (; *s != '\0'; ++s) {
    auto c = static_cast<unsigned char>(*s);
    if (c == '"' || c == '\\') {
      w.ch('\\').ch(static_cast<char>(c));
    } else if (c < 0x20) {
      w.str("\\u00").ch("0123456789abcdef"[c >> 4]).ch("0123456789abcdef"[c & 15]);
    } else {
      w.ch(static_cast<char>(c));
    }
  }
  w.ch('"');
}

// No thread ever took a heap and nothing is mapped: the program made no allocation (a preloaded
// Mallard initializes itself at load, so that alone says nothing).
bool made_allocations(const mallard_stats& s) {
  return s.threads_total != 0 || s.bytes_mapped != 0 || s.huge_blocks != 0;
}

// "cmdline":"ARG ARG...", from /proc/self/cmdline (cut at 1 KiB; empty if unreadable).
void write_cmdline_json(os::TextWriter& w) {
  char cmdline[1024];
  os::read_cmdline(cmdline, sizeof cmdline);
  w.str("\"cmdline\":");
  json_string(w, cmdline);
  w.ch(',');
}

// A row "  LABEL  VALUE  NOTE", written only when the value is not 0.
void row(os::TextWriter& w, const char* label, std::size_t bytes, const char* note) {
  if (bytes == 0) return;
  line(w, label, bytes);
  w.str("  ").str(note).ch('\n');
}

bool program_is(const char* prefix) {
  return std::strncmp(os::program_name(), prefix, std::strlen(prefix)) == 0;
}

// The RSS split (rss_split.hpp): the rows that hold anything.
void write_rss_split_text(os::TextWriter& w, const RssSplit& r) {
  if (!r.known) {
    w.str("  (where it is: /proc/self/smaps is not readable)\n");
    return;
  }
  row(w, "in Mallard's heap", r.mallard, "resident pages of its segments and huge blocks");
  if (r.files != 0) {
    line(w, "file mappings", r.files);
    w.str("  the program, its libraries, mapped files; largest:");
    const char* sep = " ";
    for (const LargestMapping& m : r.largest_files) {
      if (m.rss == 0) continue;
      w.str(sep).str(m.name).ch(' ').bytes_human(m.rss);
      sep = ", ";
    }
    w.ch('\n');
  }
  if (r.anonymous != 0) {
    line(w, "other anonymous", r.anonymous);
    w.str("  ").u(r.anonymous_count).str(" mappings Mallard does not own (other allocators, ");
    w.str("thread stacks, JIT code); largest:");
    const char* sep = " ";
    for (const LargestMapping& m : r.largest_anonymous) {
      if (m.rss == 0) continue;
      w.str(sep).bytes_human(m.rss).str(" at ").hex(m.start);
      if (m.name[0] != '\0') w.ch(' ').str(m.name);
      sep = ", ";
    }
    w.ch('\n');
  }
  row(w, "brk not Mallard's", r.brk_other, "[heap] pages another sbrk user holds");
  row(w, "main thread stack", r.stack, "[stack]");
  row(w, "kernel mappings", r.other, "[vdso], [vvar]...");
  if (program_is("python") && r.anonymous > r.mallard)
    w.str(
        "  hint: Python keeps its small objects in arenas it maps itself (pymalloc, in \"other "
        "anonymous\"): run it with PYTHONMALLOC=malloc to have them in Mallard's heap\n");
}

void write_rss_split_json(os::TextWriter& w, const RssSplit& r) {
  w.str("\"rss\":{");
  w.str("\"known\":").str(r.known ? "true," : "false,");
  json_field(w, "total", r.total);
  json_field(w, "mallard", r.mallard);
  json_field(w, "files", r.files);
  json_field(w, "anonymous", r.anonymous);
  json_field(w, "anonymous_mappings", r.anonymous_count);
  json_field(w, "brk_other", r.brk_other);
  json_field(w, "stack", r.stack);
  json_field(w, "kernel", r.other);
  w.str("\"largest_files\":[");
  bool first = true;
  for (const LargestMapping& m : r.largest_files) {
    if (m.rss == 0) continue;
    w.str(first ? "{" : ",{").str("\"name\":");
    json_string(w, m.name);
    w.ch(',');
    json_field(w, "rss", m.rss, false);
    w.ch('}');
    first = false;
  }
  w.str("],\"largest_anonymous\":[");
  first = true;
  for (const LargestMapping& m : r.largest_anonymous) {
    if (m.rss == 0) continue;
    w.str(first ? "{" : ",{").str("\"name\":");
    json_string(w, m.name);
    w.ch(',');
    json_field(w, "start", m.start);
    json_field(w, "rss", m.rss, false);
    w.ch('}');
    first = false;
  }
  w.str("]},");
}

// mallopt(M_MXFAST)'s value while the option table has no `mxfast` (-1: not set).
std::atomic<long> g_mxfast_set{-1};

}  // namespace

std::size_t mxfast() {
  long v = g_mxfast_set.load(std::memory_order_relaxed);
  if (v < 0) v = config::get_option(config::options(), "mxfast");  // -1: no such option
  if (v < 0) return kDefaultMxfast;
  return static_cast<std::size_t>(v) > kMaxMxfast ? kMaxMxfast : static_cast<std::size_t>(v);
}

bool set_mxfast(long value) {
  if (value < 0 || static_cast<std::size_t>(value) > kMaxMxfast) return false;
  os::TextWriter text(-1);  // buffer only: the value as decimal text, for the option parser
  text.u(static_cast<std::uint64_t>(value));
  if (config::set_option(config::options(), "mxfast", 6, text.data(), text.size()))
    g_mxfast_set.store(-1, std::memory_order_relaxed);  // the option holds it
  else
    g_mxfast_set.store(value, std::memory_order_relaxed);
  return true;
}

void fill_mallinfo2(struct mallinfo2* out) {
  mallard_stats s;
  take_snapshot(&s);
  std::size_t huge_mapped = huge::stats().mapped_bytes;
  std::size_t limit = mxfast();
  std::size_t fast_blocks = 0, fast_bytes = 0, other_blocks = 0;
  for (std::size_t c = 0; c < s.class_count; ++c) {
    const mallard_class_stats& k = s.classes[c];
    if (k.block_size <= limit) {
      fast_blocks += k.blocks_free;
      fast_bytes += k.blocks_free * k.block_size;
    } else {
      other_blocks += k.blocks_free;
    }
  }
  std::memset(out, 0, sizeof *out);
  out->ordblks = s.free_spans + other_blocks;
  out->smblks = fast_blocks;
  out->hblks = s.huge_blocks;
  out->hblkhd = huge_mapped;
  out->usmblks = 0;
  out->fsmblks = fast_bytes;
  out->uordblks = s.bytes_small + s.bytes_large;
  out->fordblks = s.bytes_free_in_pages + s.bytes_dirty + s.bytes_purged;
  // glibc's identity arena == uordblks + fordblks. The segments' headers and page entries are in
  // neither (mallard_get_stats reports them as bytes_metadata): freeing every block brings
  // uordblks back to where it was, even when a segment was mapped meanwhile.
  out->arena = out->uordblks + out->fordblks;
  out->keepcost = s.bytes_dirty;
}

namespace {

// The rows of "where the mapped memory is" (and of the peak), those that hold anything.
void write_heap_rows(os::TextWriter& w, const mallard_stats& s, bool with_retained) {
  if (s.bytes_in_use != 0) {
    line(w, "live blocks", s.bytes_in_use);
    w.str("  small ").bytes_human(s.bytes_small).str(", large ").bytes_human(s.bytes_large);
    w.str(", huge ").bytes_human(s.bytes_huge).str(" in ").u(s.huge_blocks).str(" blocks\n");
  }
  row(w, "free in small pages", s.bytes_free_in_pages,
      "cached in thread pages for reuse (never-touched parts are not resident)");
  if (s.bytes_dirty != 0) {
    line(w, "dirty free spans", s.bytes_dirty);
    w.str("  resident, purged after decay_ms=")
        .u(static_cast<std::uint64_t>(config::options().decay_ms))
        .ch('\n');
  }
  if (with_retained)
    row(w, "purged / retained", s.bytes_purged, "address space only, not resident");
  row(w, "metadata", s.bytes_metadata, "segment headers and page entries, heaps, the segment map");
}

// The size classes holding the most bytes in live blocks (at most `most`), on one line.
void write_largest_classes(os::TextWriter& w, const mallard_stats& s, int most) {
  bool shown[MALLARD_MAX_SIZE_CLASSES] = {};
  const char* sep = "  largest size classes by live bytes: ";
  for (int k = 0; k < most; ++k) {
    std::size_t best = s.class_count;
    for (std::size_t c = 0; c < s.class_count; ++c) {
      const mallard_class_stats& x = s.classes[c];
      if (shown[c] || x.blocks_used == 0) continue;
      if (best == s.class_count ||
          x.blocks_used * x.block_size > s.classes[best].blocks_used * s.classes[best].block_size)
        best = c;
    }
    if (best == s.class_count) break;
    shown[best] = true;
    const mallard_class_stats& x = s.classes[best];
    w.str(sep).u(x.blocks_used).str(" x ").u(x.block_size).str(" B = ");
    w.bytes_human(x.blocks_used * x.block_size);
    sep = ", ";
  }
  if (sep[0] == ',') w.ch('\n');
}

// "classes":[...] for the classes that have pages (no comma after).
void write_classes_json(os::TextWriter& w, const mallard_stats& s) {
  w.str("\"classes\":[");
  bool first = true;
  for (std::size_t c = 0; c < s.class_count; ++c) {
    const mallard_class_stats& k = s.classes[c];
    if (k.pages == 0) continue;
    if (!first) w.ch(',');
    first = false;
    w.ch('{');
    json_field(w, "block_size", k.block_size);
    json_field(w, "blocks_used", k.blocks_used);
    json_field(w, "blocks_free", k.blocks_free);
    json_field(w, "pages", k.pages, false);
    w.ch('}');
  }
  w.ch(']');
}

}  // namespace

namespace {

// The report's large working state (about 10 KiB), off the caller's stack: the exit report may run
// on a thread with a 16 KiB stack. One report at a time: the others wait (kCopyWaitMs at most);
// a report from a signal handler that interrupted a report of the same thread says so instead.
struct ReportScratch {
  mallard_stats now{};
  RssSplit split;
  PeakSnapshot peak;
};
constinit ReportScratch g_report_scratch;
OwnedLock g_report_lock;

class ScratchGuard {
 public:
  ScratchGuard() : locked_(g_report_lock.lock(kCopyWaitMs)) {}
  ~ScratchGuard() {
    if (locked_) g_report_lock.unlock();
  }
  ScratchGuard(const ScratchGuard&) = delete;
  ScratchGuard& operator=(const ScratchGuard&) = delete;
  bool locked() const { return locked_; }

 private:
  bool locked_;
};

}  // namespace

void reset_report_in_child() {
  g_report_lock.reset_in_child();
}

void write_report_text(os::TextWriter& w) {
  ScratchGuard guard;
  if (!guard.locked()) {
    w.str("mallard: no report: this thread is writing one already (a signal handler?)\n");
    return;
  }
  mallard_stats& s = g_report_scratch.now;
  take_snapshot(&s);
  w.str("== mallard report: ").str(os::program_name()).str(" (pid ");
  w.u(static_cast<std::uint64_t>(getpid())).str(", Mallard " MALLARD_VERSION_STRING ") ==\n");
  if (!made_allocations(s))
    w.str("no allocation: the program made no allocator call that needed memory\n");
  w.str("in use at exit        ").bytes_human(s.bytes_in_use);
  w.str("  bytes in live blocks (as rounded to their size class)\n");
  w.str("peak pages in use     ").bytes_human(s.peak_bytes_in_use);
  w.str("  highest sum of the small pages (64 KiB and more) threads hold, large spans (4 KiB\n");
  w.str(
      "                      pages) and huge blocks: an upper bound of the bytes that were live\n");
  w.str("mapped                ").bytes_human(s.bytes_mapped);
  if (s.bytes_brk != 0) w.str("  (brk ").bytes_human(s.bytes_brk).ch(')');
  w.str("  address space Mallard holds\n");
  w.str("resident (RSS)        ")
      .bytes_human(s.bytes_resident)
      .str("  (peak ")
      .bytes_human(s.peak_resident)
      .str("), the whole process, at exit:\n");
  RssSplit& split = g_report_scratch.split;
  split_rss(&split);
  write_rss_split_text(w, split);
  w.str("where Mallard's mapped memory is, at exit:\n");
  write_heap_rows(w, s, true);
  PeakSnapshot& peak = g_report_scratch.peak;
  if (copy_peak(&peak)) {
    w.str("at the peak: RSS ").bytes_human(peak.rss).str(", ");
    w.u(peak.after_ms / 1000).ch('.').u(peak.after_ms / 100 % 10);
    w.str(" s after the first allocation (snapshot ").u(peak.snapshots);
    w.str(": one is taken when the RSS grows by 1/8):\n");
    if (s.peak_resident > peak.rss + (peak.rss >> kGrowthShift)) {
      w.str("  (the process's highest RSS, ").bytes_human(s.peak_resident);
      w.str(", came between two allocator slow paths: no snapshot shows it)\n");
    }
    write_heap_rows(w, peak.heap, false);
    write_rss_split_text(w, peak.split);
    write_largest_classes(w, peak.heap, 3);
  }
  w.str("arenas ").u(s.arenas).str(" (max ").u(s.arena_max).str("), segments ").u(s.segments);
  w.str(", threads live ").u(s.threads_live).str(" (").u(s.threads_total).str(" ever)");
  w.str(", abandoned pages ").u(s.abandoned_pages).str(", purges ").u(s.purges);
  w.str(", mmap threshold ").bytes_human(s.mmap_threshold).ch('\n');
  bool any_class = false;
  for (std::size_t c = 0; c < s.class_count; ++c) any_class = any_class || s.classes[c].pages != 0;
  if (!any_class) return;
  w.str("size classes with pages, at exit:\n");
  w.str("  block (B)     in use   blocks used   blocks free   4 KiB pages\n");
  for (std::size_t c = 0; c < s.class_count; ++c) {
    const mallard_class_stats& k = s.classes[c];
    if (k.pages == 0) continue;
    w.u(k.block_size, 11).str("  ");
    std::size_t bytes = k.blocks_used * k.block_size;
    os::TextWriter tmp(-1);
    tmp.bytes_human(bytes);
    for (std::size_t i = tmp.size(); i < 9; ++i) w.ch(' ');
    w.bytes(tmp.data(), tmp.size());
    w.u(k.blocks_used, 14).u(k.blocks_free, 14).u(k.pages, 14).ch('\n');
  }
}

void write_report_json(os::TextWriter& w) {
  ScratchGuard guard;
  if (!guard.locked()) {
    w.str("{\"schema_version\":1,\"error\":\"this thread is writing a report already\"}\n");
    return;
  }
  mallard_stats& s = g_report_scratch.now;
  take_snapshot(&s);
  w.ch('{');
  json_field(w, "schema_version", kReportSchemaVersion);
  w.str("\"version\":\"" MALLARD_VERSION_STRING "\",\"program\":");
  json_string(w, os::program_name());
  w.ch(',');
  json_field(w, "pid", static_cast<std::size_t>(getpid()));
  json_field(w, "ppid", static_cast<std::size_t>(getppid()));
  write_cmdline_json(w);
  w.str("\"made_allocations\":").str(made_allocations(s) ? "true," : "false,");
  w.str("\"options\":{");
  const config::Options& o = config::options();
  bool first_option = true;
#define X(name, kind, def, min, max, enums, doc)                       \
  if (!first_option) w.ch(',');                                        \
  first_option = false;                                                \
  w.str("\"" #name "\":");                                             \
  if (o.name.load() < 0)                                               \
    w.ch('-').u(static_cast<std::uint64_t>(-(o.name.load() + 1)) + 1); \
  else                                                                 \
    w.u(static_cast<std::uint64_t>(o.name.load()));
#include "config/options.inc"
#undef X
  w.str("},");
  json_field(w, "bytes_in_use", s.bytes_in_use);
  json_field(w, "peak_bytes_in_use", s.peak_bytes_in_use);
  json_field(w, "bytes_small", s.bytes_small);
  json_field(w, "bytes_large", s.bytes_large);
  json_field(w, "bytes_huge", s.bytes_huge);
  json_field(w, "huge_blocks", s.huge_blocks);
  json_field(w, "bytes_mapped", s.bytes_mapped);
  json_field(w, "bytes_brk", s.bytes_brk);
  json_field(w, "bytes_free_in_pages", s.bytes_free_in_pages);
  json_field(w, "bytes_dirty", s.bytes_dirty);
  json_field(w, "bytes_purged", s.bytes_purged);
  json_field(w, "bytes_metadata", s.bytes_metadata);
  json_field(w, "bytes_resident", s.bytes_resident);
  json_field(w, "peak_resident", s.peak_resident);
  RssSplit& split = g_report_scratch.split;
  split_rss(&split);
  write_rss_split_json(w, split);
  json_field(w, "arenas", s.arenas);
  json_field(w, "arena_max", s.arena_max);
  json_field(w, "threads_live", s.threads_live);
  json_field(w, "threads_total", s.threads_total);
  json_field(w, "abandoned_pages", s.abandoned_pages);
  json_field(w, "segments", s.segments);
  json_field(w, "free_spans", s.free_spans);
  json_field(w, "purges", s.purges);
  json_field(w, "mmap_threshold", s.mmap_threshold);
  PeakSnapshot& peak = g_report_scratch.peak;
  if (copy_peak(&peak)) {
    w.str("\"peak\":{");
    json_field(w, "after_ms", peak.after_ms);
    json_field(w, "bytes_resident", peak.rss);
    json_field(w, "snapshots", peak.snapshots);
    json_field(w, "bytes_in_use", peak.heap.bytes_in_use);
    json_field(w, "bytes_small", peak.heap.bytes_small);
    json_field(w, "bytes_large", peak.heap.bytes_large);
    json_field(w, "bytes_huge", peak.heap.bytes_huge);
    json_field(w, "bytes_mapped", peak.heap.bytes_mapped);
    json_field(w, "bytes_free_in_pages", peak.heap.bytes_free_in_pages);
    json_field(w, "bytes_dirty", peak.heap.bytes_dirty);
    json_field(w, "bytes_metadata", peak.heap.bytes_metadata);
    write_rss_split_json(w, peak.split);
    write_classes_json(w, peak.heap);
    w.str("},");
  }
  write_classes_json(w, s);
  w.str("}\n");
}

// glibc's format: per arena "system bytes" and "in use bytes", then the totals with mmap.
void write_malloc_stats(os::TextWriter& w) {
  std::size_t system_total = 0, in_use_total = 0;
  arenas::for_each([&](unsigned i, Arena* a) {
    mallard_stats s;
    take_arena_snapshot(a, &s);
    w.str("Arena ").u(i).str(":\n");
    w.str("system bytes     = ").u(s.bytes_mapped, 10).ch('\n');
    w.str("in use bytes     = ").u(s.bytes_in_use, 10).ch('\n');
    system_total += s.bytes_mapped;
    in_use_total += s.bytes_in_use;
  });
  huge::HugeStats h = huge::stats();
  w.str("Total (incl. mmap):\n");
  w.str("system bytes     = ").u(system_total + h.mapped_bytes, 10).ch('\n');
  w.str("in use bytes     = ").u(in_use_total + h.live_bytes, 10).ch('\n');
  w.str("max mmap regions = ").u(h.peak_count, 10).ch('\n');
  w.str("max mmap bytes   = ").u(h.peak_mapped, 10).ch('\n');
}

// glibc's malloc_info XML: free memory by size per heap, then totals.
void write_malloc_info(os::TextWriter& w) {
  std::size_t fast_count = 0, fast_size = 0, rest_count = 0, rest_size = 0, system = 0;
  std::size_t limit = mxfast();
  w.str("<malloc version=\"1\">\n");
  arenas::for_each([&](unsigned i, Arena* a) {
    mallard_stats s;
    take_arena_snapshot(a, &s);
    std::size_t heap_fast_count = 0, heap_fast_size = 0, heap_rest_count = 0, heap_rest_size = 0;
    w.str("<heap nr=\"").u(i).str("\">\n<sizes>\n");
    for (std::size_t c = 0; c < s.class_count; ++c) {
      const mallard_class_stats& k = s.classes[c];
      if (k.blocks_free == 0) continue;
      w.str("  <size from=\"").u(k.block_size).str("\" to=\"").u(k.block_size);
      w.str("\" total=\"").u(k.blocks_free * k.block_size).str("\" count=\"").u(k.blocks_free);
      w.str("\"/>\n");
      // glibc's "fast" are its fastbin chunks: up to mxfast; the others are in its bins ("rest").
      if (k.block_size <= limit) {
        heap_fast_count += k.blocks_free;
        heap_fast_size += k.blocks_free * k.block_size;
      } else {
        heap_rest_count += k.blocks_free;
        heap_rest_size += k.blocks_free * k.block_size;
      }
    }
    std::size_t spans = s.bytes_dirty + s.bytes_purged;
    heap_rest_count += s.free_spans;
    heap_rest_size += spans;
    if (s.free_spans != 0) {
      w.str("  <unsorted from=\"4096\" to=\"").u(spans).str("\" total=\"").u(spans);
      w.str("\" count=\"").u(s.free_spans).str("\"/>\n");
    }
    w.str("</sizes>\n");
    w.str("<total type=\"fast\" count=\"")
        .u(heap_fast_count)
        .str("\" size=\"")
        .u(heap_fast_size)
        .str("\"/>\n");
    w.str("<total type=\"rest\" count=\"")
        .u(heap_rest_count)
        .str("\" size=\"")
        .u(heap_rest_size)
        .str("\"/>\n");
    w.str("<system type=\"current\" size=\"").u(s.bytes_mapped).str("\"/>\n");
    w.str("<system type=\"max\" size=\"").u(s.bytes_mapped).str("\"/>\n");
    w.str("<aspace type=\"total\" size=\"").u(s.bytes_mapped).str("\"/>\n");
    w.str("<aspace type=\"mprotect\" size=\"").u(s.bytes_mapped).str("\"/>\n");
    w.str("</heap>\n");
    fast_count += heap_fast_count;
    fast_size += heap_fast_size;
    rest_count += heap_rest_count;
    rest_size += heap_rest_size;
    system += s.bytes_mapped;
  });
  huge::HugeStats h = huge::stats();
  w.str("<total type=\"fast\" count=\"").u(fast_count).str("\" size=\"").u(fast_size).str("\"/>\n");
  w.str("<total type=\"rest\" count=\"").u(rest_count).str("\" size=\"").u(rest_size).str("\"/>\n");
  w.str("<total type=\"mmap\" count=\"")
      .u(h.live_count)
      .str("\" size=\"")
      .u(h.mapped_bytes)
      .str("\"/>\n");
  w.str("<system type=\"current\" size=\"").u(system).str("\"/>\n");
  w.str("<system type=\"max\" size=\"").u(system).str("\"/>\n");
  w.str("<aspace type=\"total\" size=\"").u(system).str("\"/>\n");
  w.str("<aspace type=\"mprotect\" size=\"").u(system).str("\"/>\n");
  w.str("</malloc>\n");
}

}  // namespace mallard::stats
