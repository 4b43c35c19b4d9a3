// report.hpp: every human- or machine-readable rendering of the statistics: the exit report of
// `mallard run --report` (text or JSON), glibc's malloc_stats text and malloc_info XML. Takes its
// figures from the snapshot; writes through a TextWriter (no printf, no allocation).
#pragma once

#include <cstddef>

#include "os/text_writer.hpp"

struct mallinfo2;

namespace mallard::stats {

// The exit report. The JSON form's "schema_version" changes whenever a field changes meaning or
// goes away (fields may be added without a change); docs/observability.md lists the fields.
inline constexpr std::size_t kReportSchemaVersion = 1;
[[gnu::cold]] void write_report_text(os::TextWriter& w);
[[gnu::cold]] void write_report_json(os::TextWriter& w);
// In the child of fork(): the report's lock is freed (its holder may not exist there).
void reset_report_in_child();
[[gnu::cold]] void write_malloc_stats(os::TextWriter& w);
// glibc's malloc_info(3) XML; its "fast" totals are the free blocks of the classes up to mxfast().
[[gnu::cold]] void write_malloc_info(os::TextWriter& w);

// glibc's mxfast, in bytes (mallopt(M_MXFAST), tunable glibc.malloc.mxfast): the largest chunk
// glibc keeps in a fastbin. Mallard has no fastbins; the free blocks of its size classes of at most
// mxfast() bytes are what glibc's reports call fastbin blocks (mallinfo smblks and fsmblks,
// malloc_info "fast"), so a program that sets mxfast to 0 sees none, as with glibc. Nothing else
// depends on it. The value set by mallopt if any, else option `mxfast` if the option table has
// it, else glibc's default.
inline constexpr std::size_t kDefaultMxfast = 128;  // glibc's DEFAULT_MXFAST (64-bit)
inline constexpr std::size_t kMaxMxfast = 160;      // glibc's MAX_FAST_SIZE (64-bit)
std::size_t mxfast();
// mallopt(M_MXFAST, value): as glibc, accepted (true) only for 0 <= value <= kMaxMxfast.
bool set_mxfast(long value);

// Fills *out with glibc's mallinfo2(3) fields, in glibc's meanings (malloc/malloc.c int_mallinfo),
// all in bytes or block counts:
//   arena     uordblks + fordblks, glibc's identity: the arenas' bytes for blocks (brk and
//             segments, without their headers and page entries; not huge blocks)
//   ordblks   free chunks that are not fastbin chunks: free spans, and free blocks of the classes
//             above mxfast()
//   smblks    free fastbin chunks: free blocks of the classes up to mxfast() (0 if mxfast is 0)
//   hblks     huge blocks (direct mmaps) alive; hblkhd their mapped bytes
//   usmblks   always 0 (as glibc's: "unused", mallinfo2(3))
//   fsmblks   bytes in the smblks blocks
//   uordblks  bytes of live blocks in the arenas (huge blocks are in hblkhd only)
//   fordblks  free bytes in the arenas: free blocks in small pages, dirty and purged free spans
//   keepcost  what malloc_trim(0) could give back now: the dirty (resident) free spans
// The segments' metadata is in none of them (mallard_get_stats: bytes_metadata).
[[gnu::cold]] void fill_mallinfo2(struct mallinfo2* out);

}  // namespace mallard::stats
