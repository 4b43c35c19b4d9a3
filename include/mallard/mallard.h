/* mallard.h: the public, prefixed API of the Mallard allocator.
 *
 * Every standard allocation function is also exported with a `mallard_` prefix, so a program can
 * use Mallard beside another malloc (and tests can run under tools that own `malloc`). The
 * statistics and option calls exist only under the prefix. This header is plain C and needs no
 * C++ runtime. */
#ifndef MALLARD_MALLARD_H
#define MALLARD_MALLARD_H

#include <stddef.h>
#if defined(__has_include)
#if __has_include(<malloc.h>)
#include <malloc.h> /* struct mallinfo, struct mallinfo2 */
#define MALLARD_HAVE_MALLINFO 1
#endif
#endif

#ifdef __cplusplus
#define MALLARD_NOTHROW noexcept
extern "C" {
#else
#define MALLARD_NOTHROW
#endif

/* The version of this header (CMakeLists.txt's project version; the build checks they agree).
 * The library's is mallard_version(): "MAJOR.MINOR.PATCH", the same as MALLARD_VERSION_STRING
 * when the program runs with the library it was built against. The SONAME (libmallard.so.0)
 * changes with MAJOR. */
#define MALLARD_VERSION_MAJOR 0
#define MALLARD_VERSION_MINOR 2
#define MALLARD_VERSION_PATCH 0
#define MALLARD_VERSION_STRING "0.2.0"

/* The running library's version, "MAJOR.MINOR.PATCH": a static string (never freed). */
const char* mallard_version(void) MALLARD_NOTHROW;

/* ---- the standard API, prefixed ---- */
void* mallard_malloc(size_t size) MALLARD_NOTHROW;
void mallard_free(void* ptr) MALLARD_NOTHROW;
void* mallard_calloc(size_t count, size_t size) MALLARD_NOTHROW;
void* mallard_realloc(void* ptr, size_t size) MALLARD_NOTHROW;
void* mallard_reallocarray(void* ptr, size_t count, size_t size) MALLARD_NOTHROW;
void* mallard_aligned_alloc(size_t alignment, size_t size) MALLARD_NOTHROW;
int mallard_posix_memalign(void** memptr, size_t alignment, size_t size) MALLARD_NOTHROW;
void* mallard_memalign(size_t alignment, size_t size) MALLARD_NOTHROW;
void* mallard_valloc(size_t size) MALLARD_NOTHROW;
void* mallard_pvalloc(size_t size) MALLARD_NOTHROW;
size_t mallard_malloc_usable_size(void* ptr) MALLARD_NOTHROW;

/* glibc extensions, prefixed (same meaning as glibc's). */
int mallard_mallopt(int param, int value) MALLARD_NOTHROW;
int mallard_malloc_trim(size_t pad) MALLARD_NOTHROW;
void mallard_malloc_stats(void) MALLARD_NOTHROW;
int mallard_malloc_info(int options, void* stream /* FILE* */) MALLARD_NOTHROW;
#ifdef MALLARD_HAVE_MALLINFO
struct mallinfo mallard_mallinfo(void) MALLARD_NOTHROW; /* glibc's structs, from <malloc.h> */
struct mallinfo2 mallard_mallinfo2(void) MALLARD_NOTHROW;
#endif

/* ---- statistics ---- */
#define MALLARD_MAX_SIZE_CLASSES 64

typedef struct mallard_class_stats {
  size_t block_size;  /* bytes per block of this class */
  size_t blocks_used; /* live blocks now */
  size_t blocks_free; /* blocks in this class's pages that are free (cached) */
  size_t pages;       /* pages (runs of 4 KiB OS pages) holding this class */
} mallard_class_stats;

typedef struct mallard_stats {
  size_t bytes_in_use;        /* bytes of live blocks, as rounded to their size class */
  size_t peak_bytes_in_use;   /* peak of bytes held for live blocks: small pages in use by
                                 threads, large spans and huge blocks (page granularity) */
  size_t bytes_small;         /* live bytes in small size classes */
  size_t bytes_large;         /* live bytes in large spans (arena pages, > small classes) */
  size_t bytes_huge;          /* live bytes in huge blocks (direct mmap) */
  size_t huge_blocks;         /* number of live huge blocks */
  size_t bytes_mapped;        /* address space reserved from the OS (mmap + brk) */
  size_t bytes_brk;           /* of which from brk (arena 0's [heap]) */
  size_t bytes_free_in_pages; /* free blocks inside small pages (cached for reuse) */
  size_t bytes_dirty;         /* free spans not yet purged (resident, reusable), and the carved
                                 part of empty small pages kept for their class ("parked") */
  size_t bytes_purged;        /* free spans purged (MADV_DONTNEED/FREE): address space retained;
                                 and the never-carved rest of parked pages */
  size_t bytes_metadata;      /* segment headers, heaps and the segment map */
  size_t bytes_resident;      /* the process's RSS now (from /proc/self/statm) */
  size_t peak_resident;       /* the process's peak RSS (VmHWM) */
  size_t arenas;              /* arenas created */
  size_t arena_max;           /* cap on arenas */
  size_t threads_live;        /* thread heaps in use */
  size_t abandoned_pages;     /* small pages of exited threads waiting for adoption (and, in a
                                 forked child, pages of the parent's other threads, freed into
                                 but never allocated from) */
  size_t threads_total;       /* thread heaps ever created */
  size_t segments;            /* segments mapped */
  size_t mmap_threshold;      /* current huge threshold (moves dynamically) */
  size_t purges;              /* madvise purge calls made */
  size_t free_spans;          /* free spans (dirty or purged) in the arenas */
  size_t class_count;         /* entries used in classes[] */
  mallard_class_stats classes[MALLARD_MAX_SIZE_CLASSES];
} mallard_stats;

/* Fills *out with an exact snapshot (walks every arena under its lock). Returns 0. */
int mallard_get_stats(mallard_stats* out) MALLARD_NOTHROW;

/* Writes the human-readable report (what `mallard run --report` prints) to file descriptor fd:
 * the heap now, where the process's RSS is (it reads /proc/self/smaps and calls mincore over
 * Mallard's segments: milliseconds for a large heap, about 10 KiB of stack) and the snapshot of
 * the peak (docs/observability.md). */
void mallard_print_report(int fd) MALLARD_NOTHROW;

/* Writes the same report as one JSON object to fd ("schema_version":1; docs/observability.md). */
void mallard_print_stats_json(int fd) MALLARD_NOTHROW;

/* ---- options ----
 * Keys are those of MALLARD_OPTIONS (see docs/options.md). Returns 0, or -1 for an unknown key or a
 * bad value (the option keeps its value). */
int mallard_option_set(const char* key, const char* value) MALLARD_NOTHROW;
/* Returns the option's value as an integer (booleans 0/1, enums their index), or -1 if unknown. */
long mallard_option_get(const char* key) MALLARD_NOTHROW;

/* Purges every purgeable page now (like malloc_trim(0)). Returns bytes purged or released. */
size_t mallard_purge(void) MALLARD_NOTHROW;

/* Verifies the heap's invariants; prints what is wrong and aborts on a violation. Returns 0. */
int mallard_check_heap(void) MALLARD_NOTHROW;

#ifdef __cplusplus
}
#endif

#endif /* MALLARD_MALLARD_H */
