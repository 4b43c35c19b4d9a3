// huge.cpp: direct-mmap blocks with the dynamic threshold.
#include "backend/huge.hpp"

#include "backend/arena.hpp"
#include "backend/segment_map.hpp"
#include "config/options.hpp"
#include "os/os.hpp"
#include "os/race_delay.hpp"
#include "stats/counters.hpp"

namespace mallard::huge {
namespace {

std::atomic<std::size_t> g_live_bytes{0};
std::atomic<std::size_t> g_mapped_bytes{0};
std::atomic<std::size_t> g_live_count{0};
std::atomic<std::size_t> g_peak_count{0};
std::atomic<std::size_t> g_peak_mapped{0};

// The record of released memory (huge.hpp). A record is written between two stores of its seq
// (odd while written); tag is generation << 1 | unmapped, set apart by note_unmapped (a CAS that
// fails if the slot holds another generation by then).
struct Record {
  std::atomic<std::uint64_t> seq{0};
  std::atomic<std::uint64_t> tag{0};
  std::atomic<std::uintptr_t> start{0};
  std::atomic<std::uintptr_t> end{0};
  std::atomic<std::uintptr_t> first{0};
  std::atomic<std::uint8_t> kind{0};
};
Record g_records[kReleasedRecords];
std::atomic<std::uint64_t> g_generation{0};

// ReaderSection's counters, one per cache line.
constexpr unsigned kReaderSlots = 64;
struct alignas(64) ReaderSlot {
  std::atomic<std::uint32_t> open{0};
};
ReaderSlot g_readers[kReaderSlots];

// Returns once every ReaderSection open when this was called has closed. The caller has cleared
// the segment-map entries first: a section that opens later cannot find the segment.
void wait_for_readers() {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // the map's clearing, then the reading
  for (ReaderSlot& r : g_readers) {
    while (r.open.load(std::memory_order_acquire) != 0) __builtin_ia32_pause();
  }
}

std::size_t header_offset(std::size_t alignment) {
  return alignment > kSegmentHeaderSize ? alignment : kSegmentHeaderSize;
}

std::size_t mapping_size(std::size_t offset, std::size_t n) {
  if (n > kMaxRequest || offset > kMaxAlignment) return 0;  // os/units.hpp: refused at the API
  return os::page_ceil(offset + n);  // the kernel's page: munmap and mremap lengths
}

void raise_peak(std::atomic<std::size_t>& peak, std::size_t v) {
  std::size_t old = peak.load(std::memory_order_relaxed);
  while (v > old && !peak.compare_exchange_weak(old, v, std::memory_order_relaxed)) {
  }
}

void account(std::ptrdiff_t usable, std::ptrdiff_t mapped, int count) {
  stats::add_active(usable);
  g_live_bytes.fetch_add(static_cast<std::size_t>(usable), std::memory_order_relaxed);
  std::size_t m =
      g_mapped_bytes.fetch_add(static_cast<std::size_t>(mapped), std::memory_order_relaxed) +
      static_cast<std::size_t>(mapped);
  std::size_t c =
      g_live_count.fetch_add(static_cast<std::size_t>(count), std::memory_order_relaxed) +
      static_cast<std::size_t>(count);
  raise_peak(g_peak_mapped, m);
  raise_peak(g_peak_count, c);
}

}  // namespace

std::size_t threshold() {
  return static_cast<std::size_t>(config::options().mmap_threshold);
}

bool wants(std::size_t n) {
  const config::Options& o = config::options();
  if (n < static_cast<std::size_t>(o.mmap_threshold)) return false;
  std::size_t live = g_live_count.load(std::memory_order_relaxed);
  // Each huge block is a mapping of its own (4 MiB-aligned: the kernel cannot merge them). Past
  // half the kernel's map count they would starve everything else of mappings (malloc failed
  // at ~65500 live blocks of 128 KiB with memory to spare): the arenas, which pack many large
  // blocks in a segment, take the rest.
  return live < static_cast<std::size_t>(o.mmap_max) && live < os::max_map_count() / 2;
}

void* allocate(std::size_t n, std::size_t alignment) {
  std::size_t offset = header_offset(alignment);
  std::size_t size = mapping_size(offset, n);
  if (size == 0) return nullptr;
  void* mem = os::map_aligned(size, alignment > kSegmentSize ? alignment : kSegmentSize);
  if (mem == nullptr) return nullptr;
  os::advise_huge_pages(mem, size, thp_mode(ThpMapping::kHugeBlock));
  auto* seg = static_cast<Segment*>(mem);
  seg->magic = kSegmentMagic;
  seg->kind = SegmentKind::kHuge;
  seg->size = size;
  seg->huge_block = static_cast<char*>(mem) + offset;
  seg->huge_usable = size - offset;
  seg->huge_alignment = alignment;
  if (!segment_map::insert(reinterpret_cast<std::uintptr_t>(mem), size, seg)) {
    os::unmap(mem, size);
    return nullptr;
  }
  account(static_cast<std::ptrdiff_t>(seg->huge_usable), static_cast<std::ptrdiff_t>(size), 1);
  return seg->huge_block;
}

ReaderSection::ReaderSection() {
  auto a = reinterpret_cast<std::uintptr_t>(this) >> 14;  // threads' stacks lie apart
  slot_ = &g_readers[(a * 0x9E3779B97F4A7C15ull) >> 58].open;
  slot_->fetch_add(1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // counted, then the map is read
}

void ReaderSection::leave() {
  if (slot_ == nullptr) return;
  slot_->fetch_sub(1, std::memory_order_release);
  slot_ = nullptr;
}

void reset_readers_in_child() {
  for (ReaderSlot& r : g_readers) r.open.store(0, std::memory_order_relaxed);
}

bool release(Segment* seg, ReaderSection& section) {
  // Two frees of the block racing: exactly one claims it; the other reports a double free.
  std::uint64_t magic = kSegmentMagic;
  bool claimed = std::atomic_ref<std::uint64_t>(seg->magic)
                     .compare_exchange_strong(magic, kReleasedMagic, std::memory_order_acq_rel);
  section.leave();
  if (!claimed) return false;
  std::size_t size = seg->size;
  std::size_t usable = seg->huge_usable;
  const auto start = reinterpret_cast<std::uintptr_t>(seg);
  std::uint64_t ticket = note_releasing(ReleasedKind::kHugeBlock, start, size,
                                        reinterpret_cast<std::uintptr_t>(seg->huge_block));
  segment_map::remove(start, size);
  wait_for_readers();  // a racing free may still be reading the header
  account(-static_cast<std::ptrdiff_t>(usable), -static_cast<std::ptrdiff_t>(size), -1);
  // glibc's dynamic threshold: freeing a block bigger than the threshold shows that such sizes
  // are transient, so they should come from the heap next time; the trim threshold (the arenas'
  // dirty budget) follows at twice the value, so those blocks can be reused without faults.
  config::Options& o = config::options();
  if (!o.dynamic_threshold_off && usable > static_cast<std::size_t>(o.mmap_threshold) &&
      usable <= kDynamicThresholdMax) {
    o.mmap_threshold = static_cast<long>(usable);
    o.trim_threshold = static_cast<long>(2 * usable);
  }
  os::unmap(seg, size);
  note_unmapped(ticket);
  return true;
}

void* reallocate(Segment* seg, std::size_t n) {
  std::size_t offset = static_cast<std::size_t>(seg->huge_block - reinterpret_cast<char*>(seg));
  std::size_t size = mapping_size(offset, n);
  if (size == 0) return nullptr;
  std::size_t old_size = seg->size;
  std::size_t old_usable = seg->huge_usable;
  if (size == old_size) return seg->huge_block;
  auto start = reinterpret_cast<std::uintptr_t>(seg);
  Segment* moved = seg;
  // The segment map entries of a range the kernel gives up are cleared before it does so: once
  // the range is free, another thread may map and register a segment there, and a late removal
  // would erase that one. Only this thread may name the block meanwhile (it is being
  // reallocated). The leaves of a range to be registered are made first, so that registering
  // after the kernel call cannot fail.
  if (!segment_map::prepare(start, size)) return nullptr;
  segment_map::remove(start, old_size);
  if (os::remap_in_place(seg, old_size, size)) {
    os::race_window(os::RaceWindow::kRemap);  // the freed tail is another thread's to map now
    segment_map::insert(start, size, seg);
  } else {
    std::size_t align = seg->huge_alignment > kSegmentSize ? seg->huge_alignment : kSegmentSize;
    void* dest = os::map_aligned(size, align, os::Access::kReserved);
    void* mem = nullptr;
    if (dest != nullptr && segment_map::prepare(reinterpret_cast<std::uintptr_t>(dest), size))
      mem = os::move_mapping(seg, old_size, size, dest);
    if (mem == nullptr) {
      if (dest != nullptr) os::unmap(dest, size);
      segment_map::insert(start, old_size, seg);  // not moved: registered again where it was
      return nullptr;
    }
    moved = static_cast<Segment*>(mem);
    os::race_window(os::RaceWindow::kRemap);
    segment_map::insert(reinterpret_cast<std::uintptr_t>(mem), size, moved);
    moved->huge_block = reinterpret_cast<char*>(moved) + offset;
    // The old address is released as by a free: a free of the old pointer is a double free.
    note_unmapped(note_releasing(ReleasedKind::kHugeBlock, start, old_size, start + offset));
  }
  moved->size = size;
  moved->huge_usable = size - offset;
  account(static_cast<std::ptrdiff_t>(moved->huge_usable) - static_cast<std::ptrdiff_t>(old_usable),
          static_cast<std::ptrdiff_t>(size) - static_cast<std::ptrdiff_t>(old_size), 0);
  return moved->huge_block;
}

HugeStats stats() {
  return {
      g_live_bytes.load(std::memory_order_relaxed), g_mapped_bytes.load(std::memory_order_relaxed),
      g_live_count.load(std::memory_order_relaxed), g_peak_count.load(std::memory_order_relaxed),
      g_peak_mapped.load(std::memory_order_relaxed)};
}

std::uint64_t note_releasing(ReleasedKind kind, std::uintptr_t start, std::size_t size,
                             std::uintptr_t first) {
  std::uint64_t gen = g_generation.fetch_add(1, std::memory_order_relaxed) + 1;
  Record& r = g_records[gen % kReleasedRecords];
  std::uint64_t seq = r.seq.load(std::memory_order_relaxed);
  // Odd: another writer has the slot (the ring went round meanwhile) or had it when the process
  // forked; this record is dropped.
  if ((seq & 1) != 0 || !r.seq.compare_exchange_strong(seq, seq + 1, std::memory_order_relaxed))
    return 0;
  std::atomic_thread_fence(std::memory_order_release);  // readers see the odd seq first
  r.tag.store(gen << 1, std::memory_order_relaxed);
  r.start.store(start, std::memory_order_relaxed);
  r.end.store(start + size, std::memory_order_relaxed);
  r.first.store(first, std::memory_order_relaxed);
  r.kind.store(static_cast<std::uint8_t>(kind), std::memory_order_relaxed);
  r.seq.store(seq + 2, std::memory_order_release);
  return gen;
}

void note_unmapped(std::uint64_t ticket) {
  if (ticket == 0) return;
  Record& r = g_records[ticket % kReleasedRecords];
  std::uint64_t tag = ticket << 1;
  r.tag.compare_exchange_strong(tag, tag | 1, std::memory_order_release, std::memory_order_relaxed);
}

bool find_released(const void* p, Released* out) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  std::uint64_t best = 0;
  for (Record& r : g_records) {
    std::uint64_t seq = r.seq.load(std::memory_order_acquire);
    if ((seq & 1) != 0 || seq == 0) continue;
    std::uint64_t tag = r.tag.load(std::memory_order_acquire);
    Released rec{static_cast<ReleasedKind>(r.kind.load(std::memory_order_relaxed)),
                 r.start.load(std::memory_order_relaxed), r.end.load(std::memory_order_relaxed),
                 r.first.load(std::memory_order_relaxed), (tag & 1) != 0};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (r.seq.load(std::memory_order_relaxed) != seq) continue;  // rewritten meanwhile
    if (a < rec.start || a >= rec.end || (tag >> 1) <= best) continue;
    best = tag >> 1;
    *out = rec;
  }
  return best != 0;
}

}  // namespace mallard::huge
