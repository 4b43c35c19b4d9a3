// os.hpp: the OS layer. Owns every system call Mallard makes for memory (mmap, munmap, mremap,
// madvise, brk), the clock, the CPU count and raw error output. It never allocates, never takes
// an allocator lock and knows nothing of arenas or heaps.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mallard::os {

// Mallard's page: the unit of spans and page entries (4 KiB), fixed at build time. It is not the
// kernel's page, which may be larger (aarch64 kernels use 16 and 64 KiB): see page_size().
inline constexpr std::size_t kPageSize = 4096;

// The kernel's page size in bytes (getauxval(AT_PAGESZ), read on first use; 4096..kSegmentSize).
// Every address given to mmap, munmap, mremap, mprotect and madvise is a multiple of it, and every
// length too, except where a function below says it rounds: commit() rounds outward, purge()
// inward. A build with MALLARD_PRETEND_PAGE_SIZE=N (tests) answers N when that is larger, to test
// 16 KiB-page behaviour on a 4 KiB kernel; the checked build asserts the alignment of every call.
std::size_t page_size();
// x rounded up (page_ceil) or down (page_floor) to a multiple of page_size(); x plus a page must
// not overflow (callers bound sizes first: kMaxRequest).
inline std::uintptr_t page_ceil(std::uintptr_t x) {
  return (x + page_size() - 1) & ~(std::uintptr_t{page_size()} - 1);
}
inline std::uintptr_t page_floor(std::uintptr_t x) {
  return x & ~(std::uintptr_t{page_size()} - 1);
}
// Whether purge(p, size) purges the whole range (both ends on kernel pages): only then does a
// MADV_DONTNEED purge leave the whole range reading as zeros.
bool purge_covers(const void* p, std::size_t size);

// How a new mapping starts: committed (read-write, charged to the kernel's overcommit accounting
// at once, so a request it could never back fails here), reserved (PROT_NONE address space,
// charged only for the parts later passed to commit()) or read-only (reads see zeros and cost no
// memory; charged, like a reservation, only for the parts later passed to commit()).
enum class Access : std::uint8_t { kCommitted, kReserved, kReadOnly };
// Maps `size` bytes (a multiple of page_size()) of zeroed memory whose start is a multiple of
// `alignment` (a power of two; the kernel's page at least). Returns nullptr when the OS refuses
// (for committed memory: also when the kernel would not back it, errno ENOMEM).
void* map_aligned(std::size_t size, std::size_t alignment, Access access = Access::kCommitted);
// Makes [p, p+size) of a reservation read-write (zeroed), charging it as glibc's heaps do when
// they grow (mprotect); rounded outward to kernel pages (what was committed stays committed).
// Returns false when the kernel refuses (overcommit limit, map count).
bool commit(void* p, std::size_t size);
// Unmaps [p, p+size). Returns false if the OS refused.
bool unmap(void* p, std::size_t size);
// Grows or shrinks a mapping in place (no move). Returns false if that is impossible.
bool remap_in_place(void* p, std::size_t old_size, std::size_t new_size);
// Moves the mapping [p, p+old_size) onto `dest`, a reservation of new_size bytes (map_aligned
// kReserved) that the kernel replaces atomically; the data is never copied. Returns dest, or
// nullptr (the old mapping and the reservation are then untouched).
void* move_mapping(void* p, std::size_t old_size, std::size_t new_size, void* dest);

// Transparent huge pages for the mapping [p, p+size) (kernel pages; the caller's own mapping).
// kKernel leaves the kernel's system-wide mode (/sys/kernel/mm/transparent_hugepage/enabled)
// alone; kNever asks for none (MADV_NOHUGEPAGE), kAlways for them wherever a 2 MiB-aligned run
// of the range is touched, even under the kernel's `madvise` mode (MADV_HUGEPAGE). Returns false
// if the kernel refused (built without THP: EINVAL); the mapping works the same either way.
enum class HugePages : std::uint8_t { kKernel, kNever, kAlways };
bool advise_huge_pages(void* p, std::size_t size, HugePages mode);

enum class PurgeKind : std::uint8_t { kDontNeed, kFree };
// Gives the physical pages of [p, p+size) back to the OS; the range stays mapped. Only the
// kernel pages wholly inside the range are purged (rounded inward; purge_covers says whether that
// is all of it). With kDontNeed those read as zeros afterwards. Returns false if the OS refused.
bool purge(void* p, std::size_t size, PurgeKind kind);

// The program break, for arena 0's [heap]. grow_break returns the old break (the start of the new
// memory) or nullptr when the kernel refuses (RLIMIT_DATA, a mapping in the way: then the
// caller falls back to mmap).
void* current_break();
void* grow_break(std::size_t size);
bool shrink_break(void* new_end);

// CPUs this process may use: its affinity mask, capped by the cgroup (v2 cpu.max or v1 quota).
unsigned usable_cpu_count();
// Monotonic milliseconds (CLOCK_MONOTONIC_COARSE: cheap enough for slow paths). The clocks are
// read through the vDSO directly, or the raw system call without one (os_clock.cpp).
std::uint64_t now_ms();
// Nanoseconds and microseconds of CLOCK_MONOTONIC (precise, unlike now_ms's coarse clock).
std::uint64_t now_ns();
// Whether the clocks above are read through the vDSO (false: the system call).
bool clock_uses_vdso();
// The address of the vDSO's function `name` of ELF version `version` (nullptr: any version), or
// nullptr when there is no vDSO or no such function (or name is nullptr).
void* find_vdso_symbol(const char* name, const char* version);
// The vDSO's clock_gettime on this architecture: its name and version, or nullptr for both where
// Mallard knows none (the clocks then use the system call).
const char* vdso_clock_name();
const char* vdso_clock_version();
inline std::uint64_t now_us() {
  return now_ns() / 1000;
}
// Threads of this process (num_threads of /proc/self/stat), or -1 when /proc is unreadable.
long thread_count();
// The kernel's limit on this process's memory mappings (/proc/sys/vm/max_map_count, read once;
// 65530, the kernel's default, when unreadable).
std::size_t max_map_count();
// The process's address-space limit in bytes (RLIMIT_AS, `ulimit -v`); SIZE_MAX when unlimited.
std::size_t address_space_limit();
// The process's data limit in bytes (RLIMIT_DATA, `ulimit -d`: brk and private writable
// mappings); SIZE_MAX when unlimited.
std::size_t data_limit();
// Whether the kernel runs strict overcommit (/proc/sys/vm/overcommit_memory is 2, read once):
// every committed byte, touched or not, counts against the commit limit.
bool strict_overcommit();
// Sleeps for `ms` milliseconds (a non-cancellable system call; resumes after signals).
void sleep_ms(std::uint64_t ms);
// Resident and peak resident bytes of this process (0 if /proc is unreadable).
std::size_t resident_bytes();
std::size_t peak_resident_bytes();
// 64 random bits from the kernel (AT_RANDOM / getrandom), for secrets such as free-list keys.
// Like every function of os_system.cpp: no cancellation point, errno left as it was.
std::uint64_t random_u64();

// Writes all of buf to fd, retrying on EINTR; never allocates. Raw write(2) system calls, so not
// a cancellation point; leaves errno as it was (output errors are dropped).
void write_all(int fd, const char* buf, std::size_t len);
// Reads an environment variable without allocating (nullptr if unset).
const char* get_env(const char* name);

// Files for the exit report, with raw system calls (no cancellation point, errno kept):
// creates `path` for writing, mode 0600, failing if it exists or is a symbolic link (-1).
int create_new_file(const char* path);
void close_fd(int fd);
// rename(2): replaces `to` atomically (readers see the old file or the new one, never a part).
bool rename_file(const char* from, const char* to);
bool remove_file(const char* path);
// This process's command line (/proc/self/cmdline), its arguments separated by spaces, cut to
// cap - 1 bytes, NUL-terminated ("" if unreadable).
void read_cmdline(char* buf, std::size_t cap);
// The program's name (glibc's program_invocation_short_name, from argv[0]), or "program".
const char* program_name();

// Test-only fault injection, compiled in only with MALLARD_FAULT_INJECTION (the static library
// mallard_fault_injection used by tests; never libmallard.so): when armed, the (n+1)-th of the
// OS memory calls (mmap, mremap growth, madvise, brk) fails as if the OS had refused.
#ifdef MALLARD_FAULT_INJECTION
bool inject_fault();
void set_fault_countdown(long fail_after);  // -1 disarms
long fault_countdown();
#else
inline constexpr bool inject_fault() {
  return false;
}
#endif

}  // namespace mallard::os
