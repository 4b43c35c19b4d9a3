// arena.cpp: the span heap of an arena: growth from brk or mmap, best-fit allocation with
// splitting, coalescing on free, decay (dirty -> purged -> released) and abandoned small pages.
#include "backend/arena.hpp"

#include "backend/huge.hpp"
#include "backend/segment_map.hpp"
#include "config/options.hpp"
#include "os/check.hpp"
#include "os/os.hpp"
#include "os/text_writer.hpp"
#include "stats/counters.hpp"

namespace mallard {
namespace {

// An entry that starts nothing: kind none, no owner and no back offset (the fast path reads them).
void clear_entry(Span* e) {
  e->kind = kSpanNone;
  e->flags = 0;
  e->back = 0;
  e->to_first = 0;
  e->owner_tag.store(0, std::memory_order_relaxed);
}

// The doubly linked lists of small pages an arena keeps (abandoned, quarantined), through the
// pages' next/prev links.
void push_page(Span*& head, Span* page) {
  page->prev = nullptr;
  page->next = head;
  if (head != nullptr) head->prev = page;
  head = page;
}

void unlink_page(Span*& head, Span* page) {
  if (page->prev != nullptr)
    page->prev->next = page->next;
  else
    head = page->next;
  if (page->next != nullptr) page->next->prev = page->prev;
  page->next = page->prev = nullptr;
  page->flags = 0;
}

// The page entries inside a free span describe nothing (only its first and last entry are read:
// an entry of kind none is the interior of a span) but stay resident once written: 136 bytes per
// 4 KiB page, 34 MiB for every GiB a segment once had in use. When the span is purged, the kernel
// pages wholly inside its interior entries go too (they read as zero again: kind none).
void purge_entries_inside(Span* s) {
  if (s->page_count < 3) return;
  std::uintptr_t lo = os::page_ceil(reinterpret_cast<std::uintptr_t>(s + 1));
  std::uintptr_t hi = os::page_floor(reinterpret_cast<std::uintptr_t>(s + (s->page_count - 1)));
  if (lo < hi) os::purge(reinterpret_cast<void*>(lo), hi - lo, os::PurgeKind::kDontNeed);
}

// The free span that ends just before page `first` of seg (found from its tail entry), or nullptr.
Span* free_span_before(Segment* seg, std::uint32_t first) {
  if (first <= seg->first_data_page) return nullptr;
  Span* e = &seg->pages()[first - 1];
  return e->kind == kSpanFreeTail ? e - e->back : (e->kind == kSpanFree ? e : nullptr);
}

// The free span that starts at page `end` of seg, or nullptr.
Span* free_span_at(Segment* seg, std::uint32_t end) {
  if (end >= seg->page_count) return nullptr;
  Span* e = &seg->pages()[end];
  return e->kind == kSpanFree ? e : nullptr;
}

constexpr std::uint32_t bin_of(std::size_t pages) {
  return pages >= 128 ? 128 : static_cast<std::uint32_t>(pages);
}

os::PurgeKind purge_kind() {
  return config::options().purge == 1 ? os::PurgeKind::kFree : os::PurgeKind::kDontNeed;
}

// Smallest multiple of the segment size whose data pages hold `pages` pages plus top_pad; 0 when
// that segment would exceed kMaxSegmentPages (its page counts would not fit the entries).
std::size_t segment_bytes_for(Pages pages) {
  Pages pad = Pages::within(static_cast<std::size_t>(config::options().top_pad));
  constexpr std::size_t kMaxBytes = kMaxSegmentPages << kPageShift;
  if (pages.count() > kMaxSegmentPages) return 0;  // bigger than any segment
  // Smaller multiples of the segment size have fewer data pages than `pages`: start at the
  // largest of them, not at 4 MiB (refusing an impossible request took 16M rounds, ~12 ms).
  std::size_t bytes = pages.bytes() / kSegmentSize * kSegmentSize;
  if (bytes < kSegmentSize) bytes = kSegmentSize;
  while (bytes <= kMaxBytes) {
    Pages total = Pages::within(bytes);
    Pages data = total - segment_metadata_pages(total);
    if (data >= pages + pad || (data >= pages && bytes > kSegmentSize)) return bytes;
    bytes += kSegmentSize;
  }
  return 0;
}

}  // namespace

std::uint64_t decay_ms() {
  long d = config::options().decay_ms;
  return d < 0 ? 0 : static_cast<std::uint64_t>(d);
}

os::HugePages thp_mode(ThpMapping mapping) {
  switch (config::options().thp) {
    case 0:
      return os::HugePages::kKernel;
    case 1:
      return os::HugePages::kNever;
    case 2:
      return os::HugePages::kAlways;
    default:  // auto
      return mapping == ThpMapping::kHugeBlock &&
                     stats::g_active_bytes.load(std::memory_order_relaxed) >=
                         static_cast<std::int64_t>(kThpAutoHeapBytes)
                 ? os::HugePages::kAlways
                 : os::HugePages::kNever;
  }
}

void Arena::init(unsigned index, bool use_brk) {
  index_ = index;
  use_brk_ = use_brk;
}

// ---- growth and release ----------------------------------------------------------------------

Segment* Arena::map_segment_locked(std::size_t bytes) {
  bool brk = false;
  void* mem = nullptr;
  if (use_brk_ && config::options().heap_source == 0) {
    auto cur = reinterpret_cast<std::uintptr_t>(os::current_break());
    std::size_t pad = ((cur + kSegmentSize - 1) & ~(kSegmentSize - 1)) - cur;
    if (pad == 0 || os::grow_break(pad) != nullptr) mem = os::grow_break(bytes);
    brk = mem != nullptr;
    if (mem == nullptr && config::options().verbose) {
      os::TextWriter(2).str("mallard: brk refused; arena 0 continues with mmap\n");
    }
  }
  // An mmap segment is reserved, and committed as its pages are handed out (commit_locked): its
  // header and page entries now. brk memory is committed as the break grows.
  const Pages total = Pages::within(bytes);
  const Pages metadata = segment_metadata_pages(total);
  if (mem == nullptr) {
    mem = os::map_aligned(bytes, kSegmentSize, os::Access::kReserved);
    if (mem == nullptr) return nullptr;
    if (!os::commit(mem, metadata.bytes())) {
      os::unmap(mem, bytes);
      return nullptr;
    }
  }
  auto* seg = static_cast<Segment*>(mem);
  if (!segment_map::insert(reinterpret_cast<std::uintptr_t>(mem), bytes, seg)) {
    if (!brk) os::unmap(mem, bytes);
    return nullptr;
  }
  // On the whole segment: advice on part of it would split its mapping in two (twice the map
  // count; a brk heap no longer grows in one VMA).
  os::advise_huge_pages(seg, bytes, thp_mode(ThpMapping::kSegment));
  seg->magic = kSegmentMagic;
  seg->kind = SegmentKind::kNormal;
  seg->from_brk = brk;
  seg->size = bytes;
  seg->page_count = total.narrow();
  seg->first_data_page = metadata.narrow();
  seg->committed_pages = brk ? total.narrow() : metadata.narrow();
  seg->free_pages = 0;
  seg->arena = this;
  seg->prev = nullptr;
  seg->next = segments_;
  if (segments_ != nullptr) segments_->prev = seg;
  segments_ = seg;
  stats_.mapped += bytes;
  stats_.metadata += std::size_t{seg->first_data_page} * os::kPageSize;
  if (brk) stats_.brk += bytes;
  ++stats_.segments;
  return seg;
}

bool Arena::commit_locked(Segment* seg, std::uint32_t end) {
  MALLARD_CHECK(end <= seg->page_count);
  if (end <= seg->committed_pages) return true;
  // In steps, so that a segment taken page by page costs a few system calls, not one per span.
  std::uint32_t target = seg->committed_pages + kCommitStep;
  if (target < end) target = end;
  if (target > seg->page_count) target = seg->page_count;
  if (!os::commit(seg->page_address(seg->committed_pages),
                  Pages{target - seg->committed_pages}.bytes())) {
    // The step may be what the kernel refused: try the bare need.
    if (target == end || !os::commit(seg->page_address(seg->committed_pages),
                                     Pages{end - seg->committed_pages}.bytes()))
      return false;
    target = end;
  }
  seg->committed_pages = target;
  return true;
}

bool Arena::grow_locked(Pages pages) {
  std::size_t bytes = segment_bytes_for(pages);
  if (bytes == 0) return false;
  // Geometric growth: a new segment is at least as large as all the arena has mapped (up to
  // kMaxGrowthBytes), so that a growing heap is a few big segments whose free spans coalesce,
  // not many small ones that never can (a span cannot cross a segment's header). No page is
  // resident before it is touched, and an mmap segment is committed as its pages are handed out;
  // brk memory is committed as the break moves. If the kernel refuses the bigger segment, the
  // smallest will do.
  std::size_t geometric = (stats_.mapped < kMaxGrowthBytes ? stats_.mapped : kMaxGrowthBytes);
  // What is reserved beyond the request is bounded by the program's limits: at most 1/64 of a
  // finite `ulimit -v` or `ulimit -d` (the rest of the limit is the program's own), and nothing
  // for a brk segment under strict overcommit (brk memory is charged as the break moves).
  std::size_t limit = os::address_space_limit();
  if (os::data_limit() < limit) limit = os::data_limit();
  if (limit != SIZE_MAX && geometric > bytes + limit / 64) geometric = bytes + limit / 64;
  if (use_brk_ && config::options().heap_source == 0 && os::strict_overcommit()) geometric = 0;
  geometric = geometric / kSegmentSize * kSegmentSize;
  Segment* seg = geometric > bytes ? map_segment_locked(geometric) : nullptr;
  if (seg == nullptr) seg = map_segment_locked(bytes);
  if (seg == nullptr) return false;
  seg->free_pages = seg->data_pages();
  // Fresh memory is zero and not yet resident: it starts in the purged state (at time 0: never
  // used). Taking it teaches the budget nothing: only ranges in recent_purges_ do.
  make_free_locked(seg, seg->first_data_page, seg->data_pages(), kPurged, 0, true);
  segment_map::insert_fast(seg);  // header and entries written: free may find it
  return true;
}

void Arena::release_segment_locked(Segment* seg) {
  const bool brk = seg->from_brk;
  const std::size_t size = seg->size;
  // brk memory can only go back from the top of the break.
  if (brk && reinterpret_cast<char*>(seg) + size != os::current_break()) return;
  const auto start = reinterpret_cast<std::uintptr_t>(seg);
  Span* only = &seg->pages()[seg->first_data_page];
  // Recorded (before the map forgets it) if blocks were ever handed out of it, so that a free of
  // one of them after the release is still reported as a double free (frontend/block.cpp).
  std::uint64_t ticket = only->freed_at_ms == 0
                             ? 0
                             : huge::note_releasing(huge::ReleasedKind::kSegment, start, size,
                                                    reinterpret_cast<std::uintptr_t>(only->start));
  unlink_free_locked(only);
  segment_map::remove(start, size);
  if (seg->prev != nullptr)
    seg->prev->next = seg->next;
  else
    segments_ = seg->next;
  if (seg->next != nullptr) seg->next->prev = seg->prev;
  stats_.mapped -= size;
  stats_.metadata -= std::size_t{seg->first_data_page} * os::kPageSize;
  if (brk) stats_.brk -= size;
  --stats_.segments;
  // Every field has been read: the header goes away with the memory.
  if (brk) {
    if (!os::shrink_break(seg)) {
      // Someone moved the break after all: keep the memory (purged) as address space.
      os::purge(seg, size, os::PurgeKind::kDontNeed);
    }
  } else {
    os::unmap(seg, size);
  }
  huge::note_unmapped(ticket);
}

// ---- free span bookkeeping -------------------------------------------------------------------

void Arena::insert_bin_locked(Span* s) {
  std::uint32_t b = bin_of(s->page_count);
  Span*& head = bins_[s->state][b];
  s->prev = nullptr;
  s->next = head;
  if (head != nullptr) head->prev = s;
  head = s;
  nonempty_[s->state][b / 64] |= std::uint64_t{1} << (b % 64);
}

Span* Arena::make_free_locked(Segment* seg, std::uint32_t first, std::uint32_t count,
                              unsigned state, std::uint64_t freed_at, bool zeroed) {
  MALLARD_CHECK(lock_.held_by_me());
  MALLARD_CHECK(count != 0 && first >= seg->first_data_page && first + count <= seg->page_count &&
                first + count > first);
  MALLARD_CHECK(state == kDirty || state == kPurged);
  Span* s = &seg->pages()[first];
  s->start = seg->page_address(first);
  s->kind = kSpanFree;
  s->flags = 0;
  s->state = static_cast<std::uint8_t>(state);
  s->back = 0;
  s->to_first = 0;
  s->page_count = count;
  s->zeroed = zeroed ? 1 : 0;
  s->freed_at_ms = freed_at;
  s->owner_tag.store(0, std::memory_order_relaxed);
  if (count > 1) {
    Span* tail = s + (count - 1);
    tail->kind = kSpanFreeTail;
    tail->flags = 0;
    tail->back = count - 1;
    tail->to_first = 0;
    tail->owner_tag.store(0, std::memory_order_relaxed);
  }
  insert_bin_locked(s);
  if (state == kDirty) {
    s->age_next = nullptr;
    s->age_prev = age_tail_;
    if (age_tail_ != nullptr)
      age_tail_->age_next = s;
    else
      age_head_ = s;
    age_tail_ = s;
    if (dirty_bytes_ == 0) next_decay_ms_ = freed_at + decay_ms();
    dirty_bytes_ += s->bytes();
    stats_.dirty += s->bytes();
  } else {
    stats_.purged += s->bytes();
  }
  ++stats_.free_spans;
  return s;
}

void Arena::unlink_free_locked(Span* s) {
  MALLARD_CHECK(s->kind == kSpanFree);
  MALLARD_CHECK(s->state != kDirty || (dirty_bytes_ >= s->bytes() && stats_.dirty >= s->bytes()));
  MALLARD_CHECK(s->state != kPurged || stats_.purged >= s->bytes());
  MALLARD_CHECK(stats_.free_spans != 0);
  std::uint32_t b = bin_of(s->page_count);
  if (s->prev != nullptr)
    s->prev->next = s->next;
  else
    bins_[s->state][b] = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  if (bins_[s->state][b] == nullptr) nonempty_[s->state][b / 64] &= ~(std::uint64_t{1} << (b % 64));
  if (s->state == kDirty) {
    if (s->age_prev != nullptr)
      s->age_prev->age_next = s->age_next;
    else
      age_head_ = s->age_next;
    if (s->age_next != nullptr)
      s->age_next->age_prev = s->age_prev;
    else
      age_tail_ = s->age_prev;
    dirty_bytes_ -= s->bytes();
    stats_.dirty -= s->bytes();
  } else {
    stats_.purged -= s->bytes();
  }
  --stats_.free_spans;
  if (s->page_count > 1) clear_entry(s + (s->page_count - 1));
  clear_entry(s);
}

Span* Arena::coalesce_locked(Segment* seg, Span* s, unsigned state) {
  std::uint32_t first = seg->index_of(s);
  std::uint32_t count = s->page_count;
  bool zeroed = s->zeroed != 0;
  std::uint64_t freed_at = s->freed_at_ms;
  bool merged = false;
  Span* left = free_span_before(seg, first);
  if (left != nullptr && left->state == state) {
    if (!merged) unlink_free_locked(s);
    merged = true;
    zeroed &= left->zeroed != 0;
    if (left->freed_at_ms > freed_at) freed_at = left->freed_at_ms;
    std::uint32_t left_first = seg->index_of(left);
    count += left->page_count;
    unlink_free_locked(left);
    first = left_first;
  }
  Span* right = free_span_at(seg, first + count);
  if (right != nullptr && right->state == state) {
    if (!merged) unlink_free_locked(s);
    merged = true;
    zeroed &= right->zeroed != 0;
    if (right->freed_at_ms > freed_at) freed_at = right->freed_at_ms;
    count += right->page_count;
    unlink_free_locked(right);
  }
  if (!merged) return s;
  return make_free_locked(seg, first, count, state, freed_at, zeroed);
}

namespace {

// Where a span of `pages` pages starting on a multiple of `align` pages would start inside the
// free span s, or nullptr if it does not fit there.
char* aligned_start_in(const Span* s, Pages pages, Pages align) {
  std::uintptr_t mask = align.bytes() - 1;
  auto start = reinterpret_cast<std::uintptr_t>(s->start);
  std::uintptr_t at = (start + mask) & ~mask;
  if (at - start + pages.bytes() > s->bytes()) return nullptr;
  return reinterpret_cast<char*>(at);
}

}  // namespace

Span* Arena::find_chunk_aligned_fit_locked(unsigned state, Pages pages) {
  const std::size_t chunk = segment_map::kChunkPages;
  // Bins where a span may or may not have room at a chunk boundary: the first few of each.
  const std::size_t sure = pages.count() + chunk - 1;  // from here on every span has room
  for (std::size_t n = pages.count(); n < sure && n < kBinCount - 1; ++n) {
    unsigned scanned = 0;
    for (Span* s = bins_[state][n]; s != nullptr && scanned < kAlignScan; s = s->next, ++scanned)
      if (aligned_start_in(s, pages, Pages{chunk}) != nullptr) return s;
  }
  Span* s = find_fit_locked(state, Pages{sure}, Pages{1});
  MALLARD_CHECK(s == nullptr || aligned_start_in(s, pages, Pages{chunk}) != nullptr);
  return s;
}

Span* Arena::find_fit_locked(unsigned state, Pages pages, Pages align_pages) {
  std::size_t need = (pages + align_pages - Pages{1}).count();
  std::uint32_t b = bin_of(need);
  for (std::uint32_t w = b / 64; w < 3; ++w) {
    std::uint64_t bits = nonempty_[state][w];
    if (w == b / 64) bits &= ~std::uint64_t{0} << (b % 64);
    if (bits == 0) continue;
    std::uint32_t found = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(bits));
    if (found < 128) return bins_[state][found];
    // The last bin holds every span of >= 128 pages: best fit by scanning.
    Span* best = nullptr;
    for (Span* s = bins_[state][128]; s != nullptr; s = s->next) {
      if (s->page_count >= need && (best == nullptr || s->page_count < best->page_count)) {
        best = s;
        if (s->page_count == need) break;
      }
    }
    return best;
  }
  return nullptr;
}

void Arena::set_in_use_locked(Segment* seg, std::uint32_t first, std::uint32_t count,
                              SpanKind kind) {
  MALLARD_CHECK(count != 0 && first >= seg->first_data_page && first + count <= seg->page_count);
  MALLARD_CHECK(first + count <= seg->committed_pages);
  MALLARD_CHECK(seg->free_pages >= count);
  Span* s = &seg->pages()[first];
  s->start = seg->page_address(first);
  s->kind = kind;
  s->flags = 0;
  s->back = 0;
  s->to_first = 0;                                   // any span's first entry is its own
  s->owner_tag.store(0, std::memory_order_relaxed);  // a small page's owner sets its own
  s->page_count = count;
  s->next = s->prev = nullptr;
  if (kind == kSpanSmall) {
    for (std::uint32_t i = 1; i < count; ++i) {
      s[i].kind = kSpanSmallPart;
      s[i].back = i;
      s[i].to_first = -static_cast<std::int64_t>(i * sizeof(Span));
      s[i].owner_tag.store(0, std::memory_order_relaxed);
    }
    stats_.small_pages += s->bytes();
    stats::add_active(static_cast<std::int64_t>(s->bytes()));
  } else {
    stats::add_active(static_cast<std::int64_t>(s->bytes()));
    stats_.large += s->bytes();
    ++stats_.large_count;
  }
  seg->free_pages -= count;
  seg->metadata_purged = 0;
}

// ---- allocation and free of spans ------------------------------------------------------------

Span* Arena::alloc_span_locked(Pages pages, Pages align_pages, SpanKind kind, bool* zeroed) {
  MALLARD_CHECK(lock_.held_by_me());
  if (align_pages.is_zero()) align_pages = Pages{1};
  // A span lies inside one segment: more pages than the largest segment can never be found or
  // grown (and the sum below must not wrap).
  if (pages.count() > kMaxSegmentPages || align_pages.count() > kMaxSegmentPages) return nullptr;
  Span* s = nullptr;
  // Small pages start on a chunk boundary where the span heap has room for it (segment_map::
  // fast_chunk_of: free then finds the page without reading the entry of the block's own 4 KiB
  // page); dirty memory first, aligned or not, before any purged memory. Only spans of whole
  // chunks (every small page is: size_class.hpp, class_page_count): one that is not would leave
  // a hole before the next boundary that no span can use.
  const bool chunked = kind == kSpanSmall && align_pages == Pages{1} &&
                       pages.count() % segment_map::kChunkPages == 0;
  for (int attempt = 0; attempt < 2 && s == nullptr; ++attempt) {
    if (chunked) s = find_chunk_aligned_fit_locked(kDirty, pages);
    if (s == nullptr) s = find_fit_locked(kDirty, pages, align_pages);
    if (s == nullptr && align_pages == Pages{1}) {
      if (Span* joined = take_dirty_joined_locked(pages, kind)) {
        *zeroed = false;
        tick_locked();
        return joined;
      }
    }
    if (s == nullptr && chunked) s = find_chunk_aligned_fit_locked(kPurged, pages);
    if (s == nullptr) s = find_fit_locked(kPurged, pages, align_pages);
    if (s == nullptr && (attempt == 1 || !grow_locked(pages + align_pages - Pages{1})))
      return nullptr;
  }
  Segment* seg = segment_of_entry(s);
  std::uint32_t first = seg->index_of(s);
  std::uint32_t count = s->page_count;
  unsigned state = s->state;
  bool was_zero = s->zeroed != 0;
  std::uint64_t freed_at = s->freed_at_ms;
  unlink_free_locked(s);
  std::uint32_t at = first;
  std::size_t align_bytes = align_pages.bytes();
  while ((reinterpret_cast<std::uintptr_t>(seg->page_address(at)) & (align_bytes - 1)) != 0) ++at;
  if (chunked) {
    if (char* aligned = aligned_start_in(s, pages, Pages{segment_map::kChunkPages}))
      at = first + static_cast<std::uint32_t>((aligned - s->start) >> kPageShift);
  }
  const std::uint32_t used_end = at + pages.narrow();
  MALLARD_CHECK(used_end <= first + count);
  if (!commit_locked(seg, used_end)) {
    // The kernel will not back these pages: the span goes back as it was and the request fails;
    // a segment mapped for this request alone goes back to the OS at once.
    make_free_locked(seg, first, count, state, freed_at, was_zero);
    if (count == seg->data_pages() && !seg->from_brk && seg->size > kSegmentSize)
      release_segment_locked(seg);
    return nullptr;
  }
  if (state == kPurged) learn_from_reuse_locked(seg->page_address(at), pages.bytes());
  if (at != first) make_free_locked(seg, first, at - first, state, freed_at, was_zero);
  if (used_end != first + count)
    make_free_locked(seg, used_end, first + count - used_end, state, freed_at, was_zero);
  set_in_use_locked(seg, at, pages.narrow(), kind);
  *zeroed = was_zero;
  // Dirty spans age on every call that reaches the arena; after the span is taken, so that a
  // dirty span this call could use is not purged first.
  tick_locked();
  return &seg->pages()[at];
}

Span* Arena::take_dirty_joined_locked(Pages pages, SpanKind kind) {
  MALLARD_CHECK(lock_.held_by_me());
  const std::uint64_t need = pages.count();
  Span* dirty = nullptr;
  Span* purged = nullptr;  // its free neighbour, left or right
  unsigned scanned = 0;
  for (Span* d = age_tail_; d != nullptr && scanned < kJoinScan; d = d->age_prev, ++scanned) {
    if (dirty != nullptr && d->page_count <= dirty->page_count) continue;
    Segment* seg = segment_of_entry(d);
    const std::uint32_t first = seg->index_of(d);
    for (Span* n : {free_span_at(seg, first + d->page_count), free_span_before(seg, first)}) {
      if (n != nullptr && n->state == kPurged &&
          std::uint64_t{d->page_count} + n->page_count >= need) {
        dirty = d;
        purged = n;
        break;
      }
    }
  }
  if (dirty == nullptr) return nullptr;
  Segment* seg = segment_of_entry(dirty);
  const std::uint32_t d_first = seg->index_of(dirty);
  const std::uint32_t d_count = dirty->page_count;
  const std::uint32_t n_first = seg->index_of(purged);
  const std::uint32_t n_count = purged->page_count;
  const std::uint32_t taken = pages.narrow() - d_count;  // from the purged neighbour
  const bool left = n_first < d_first;
  // The block: the dirty span and the purged pages next to it.
  const std::uint32_t at = left ? d_first - taken : d_first;
  if (!commit_locked(seg, at + pages.narrow())) return nullptr;
  const std::uint64_t n_freed_at = purged->freed_at_ms;
  const bool n_zeroed = purged->zeroed != 0;
  unlink_free_locked(dirty);
  unlink_free_locked(purged);
  learn_from_reuse_locked(seg->page_address(left ? at : d_first + d_count), Pages{taken}.bytes());
  if (taken != n_count)
    make_free_locked(seg, left ? n_first : n_first + taken, n_count - taken, kPurged, n_freed_at,
                     n_zeroed);
  set_in_use_locked(seg, at, pages.narrow(), kind);
  return &seg->pages()[at];
}

void Arena::free_span_locked(Span* s) {
  MALLARD_CHECK(lock_.held_by_me());
  return_span_locked(s);
  tick_locked();
  enforce_dirty_budget_locked();
}

void Arena::tick_locked() {
  MALLARD_CHECK(lock_.held_by_me());
  if (dirty_bytes_ == 0 && stats_.parked_pages == 0) return;
  std::uint64_t now = os::now_ms();
  if (now >= next_decay_ms_) decay_locked(now, false);
}

std::size_t Arena::dirty_budget() const {
  const config::Options& o = config::options();
  if (o.dirty_max > 0) return static_cast<std::size_t>(o.dirty_max);
  // glibc trims the top of a heap once more than M_TRIM_THRESHOLD is free there; the threshold
  // follows twice the dynamic mmap threshold (128 KiB to 64 MiB). Here it bounds all the free
  // memory an arena keeps resident, wherever it lies. A negative value (mallopt(M_TRIM_THRESHOLD,
  // -1), glibc's "never trim") leaves dirty memory to decay alone.
  if (o.trim_threshold < 0) return SIZE_MAX;
  std::size_t budget = static_cast<std::size_t>(o.trim_threshold);
  // A busy arena may keep a quarter of what it has in use: programs that free and reallocate
  // at once must not page-fault on every reuse (bench `large`, docs/design.md).
  // (Parked pages are free memory, not activity.)
  std::size_t by_activity =
      (stats_.small_pages - stats_.parked_bytes + stats_.large) / kActiveShareDivisor;
  if (by_activity > budget) budget = by_activity;
  // Or what the arena learnt, when more: bytes it purged and had to fault back in at once
  // (learn_from_reuse_locked).
  return reuse_boost_ > budget ? reuse_boost_ : budget;
}

void Arena::note_purge_locked(const char* start, std::size_t bytes) {
  recent_purges_[recent_next_] = RecentPurge{start, start + bytes, os::now_ms()};
  recent_next_ = (recent_next_ + 1) % kRecentPurges;
}

void Arena::learn_from_reuse_locked(const char* start, std::size_t bytes) {
  // Memory purged and wanted again within a second: the purge cost a system call and the reuse
  // costs page faults, for nothing. The budget grows by what was wanted back (thread churn: each
  // exiting thread's pages are what the next thread takes). Exact ranges, not span times: free
  // spans coalesce with fresh memory and with each other.
  std::uint64_t now = os::now_ms();
  const char* end = start + bytes;
  for (RecentPurge& r : recent_purges_) {
    if (r.start == nullptr || now - r.at_ms >= kReuseWindowMs) continue;
    const char* lo = r.start > start ? r.start : start;
    const char* hi = r.end < end ? r.end : end;
    if (lo >= hi) continue;
    reuse_boost_ += static_cast<std::size_t>(hi - lo);
    r.start = nullptr;  // counted once
  }
  if (reuse_boost_ > kMaxReuseBoost) reuse_boost_ = kMaxReuseBoost;
}

void Arena::enforce_dirty_budget_locked() {
  MALLARD_CHECK(lock_.held_by_me());
  std::size_t budget = dirty_budget();
  // A failed purge re-queues a span: stop after a lap (a released parked page adds a span).
  std::size_t guard = stats_.free_spans + 2 * stats_.parked_pages + 1;
  while (dirty_bytes_ + stats_.parked_resident > budget && guard-- != 0) {
    if (age_head_ != nullptr)
      purge_span_locked(age_head_);
    else if (!release_oldest_parked_locked())  // now dirty: purged on the next lap
      break;
  }
}

void Arena::return_span_locked(Span* s) {
  MALLARD_CHECK(s->kind == kSpanSmall || s->kind == kSpanLarge);
  MALLARD_CHECK(s->kind != kSpanSmall || stats_.small_pages >= s->bytes());
  MALLARD_CHECK(s->kind != kSpanLarge || (stats_.large >= s->bytes() && stats_.large_count != 0));
  Segment* seg = segment_of_entry(s);
  std::uint32_t first = seg->index_of(s);
  std::uint32_t count = s->page_count;
  if (s->kind == kSpanSmall) {
    for (std::uint32_t i = 1; i < count; ++i) clear_entry(&s[i]);
    stats_.small_pages -= s->bytes();
    stats::add_active(-static_cast<std::int64_t>(s->bytes()));
  } else {
    stats::add_active(-static_cast<std::int64_t>(s->bytes()));
    stats_.large -= s->bytes();
    --stats_.large_count;
  }
  seg->free_pages += count;
  std::uint64_t now = os::now_ms();
  Span* f = make_free_locked(seg, first, count, kDirty, now, false);
  f = coalesce_locked(seg, f, kDirty);
  if (decay_ms() == 0) purge_span_locked(f);
}

bool Arena::shrink_span_locked(Span* s, Pages new_pages) {
  MALLARD_CHECK(lock_.held_by_me());
  if (new_pages.is_zero() || new_pages > s->pages()) return false;
  std::uint32_t tail = (s->pages() - new_pages).narrow();
  if (tail == 0) return true;
  Segment* seg = segment_of_entry(s);
  std::uint32_t first = seg->index_of(s);
  s->set_pages(new_pages);
  stats_.large -= std::size_t{tail} * os::kPageSize;
  stats::add_active(-static_cast<std::int64_t>(std::size_t{tail} * os::kPageSize));
  seg->free_pages += tail;
  Span* f = make_free_locked(seg, first + new_pages.narrow(), tail, kDirty, os::now_ms(), false);
  f = coalesce_locked(seg, f, kDirty);
  if (decay_ms() == 0) purge_span_locked(f);
  enforce_dirty_budget_locked();
  return true;
}

bool Arena::grow_span_locked(Span* s, Pages new_pages) {
  MALLARD_CHECK(lock_.held_by_me());
  if (new_pages <= s->pages()) return new_pages == s->pages();
  Segment* seg = segment_of_entry(s);
  std::uint32_t right_index = seg->index_of(s) + s->page_count;
  // Compared at full width: a size beyond the segment can never be met in place (round 1 took
  // the count modulo 2^32 here and returned a block smaller than promised).
  if (new_pages > seg->pages_total() - Pages{seg->index_of(s)}) return false;
  std::uint32_t need = (new_pages - s->pages()).narrow();
  Span* right = free_span_at(seg, right_index);
  if (right == nullptr || right->page_count < need) return false;
  if (!commit_locked(seg, right_index + need)) return false;
  std::uint32_t rest = right->page_count - need;
  unsigned state = right->state;
  bool zero = right->zeroed != 0;
  std::uint64_t freed_at = right->freed_at_ms;
  unlink_free_locked(right);
  if (rest != 0) make_free_locked(seg, right_index + need, rest, state, freed_at, zero);
  s->set_pages(new_pages);
  stats_.large += std::size_t{need} * os::kPageSize;
  stats::add_active(static_cast<std::int64_t>(std::size_t{need} * os::kPageSize));
  seg->free_pages -= need;
  return true;
}

// ---- decay -----------------------------------------------------------------------------------

void Arena::purge_span_locked(Span* s) {
  Segment* seg = segment_of_entry(s);
  std::uint32_t first = seg->index_of(s);
  std::uint32_t count = s->page_count;
  std::uint64_t freed_at = s->freed_at_ms;
  unlink_free_locked(s);
  ++stats_.purge_calls;
  os::PurgeKind kind = purge_kind();
  char* start = seg->page_address(first);
  const std::size_t bytes = Pages{count}.bytes();
  if (!os::purge(start, bytes, kind)) {
    make_free_locked(seg, first, count, kDirty, freed_at, false);  // try again at a later tick
    return;
  }
  // On a kernel whose pages are larger than Mallard's, only the kernel pages wholly inside the
  // span were purged: the ends may still hold data.
  const bool whole = os::purge_covers(start, bytes);
  note_purge_locked(start, bytes);
  Span* f = make_free_locked(seg, first, count, kPurged, os::now_ms(),
                             kind == os::PurgeKind::kDontNeed && whole);
  f = coalesce_locked(seg, f, kPurged);
  // Merged with purged neighbours, the kernel pages the span shared with them are wholly free:
  // purge the merged range so they go too.
  if (os::page_size() > os::kPageSize && f->page_count != count)
    os::purge(f->start, f->bytes(), kind);
  purge_entries_inside(f);
  // The segment is now entirely free and purged: its page entries (136 bytes per page, 136 KiB
  // per 4 MiB) were written while it was used and are resident; give them back now, since no
  // later call may come to do it (the segment itself is released by a decay pass or a trim).
  if (f->page_count == seg->data_pages()) purge_segment_metadata_locked(seg);
}

std::size_t Arena::decay_locked(std::uint64_t now, bool force) {
  MALLARD_CHECK(lock_.held_by_me());
  std::size_t released = 0;
  std::uint64_t delay = decay_ms();
  std::size_t guard = stats_.free_spans + 1;  // a failed purge re-queues a span: stop after a lap
  while (age_head_ != nullptr && guard-- != 0 && (force || age_head_->freed_at_ms + delay <= now)) {
    std::size_t bytes = age_head_->bytes();
    released += bytes;
    // Dirty memory that aged unused was kept for nothing: the learnt part of the budget shrinks.
    reuse_boost_ = reuse_boost_ > bytes ? reuse_boost_ - bytes : 0;
    purge_span_locked(age_head_);
  }
  if (force) reuse_boost_ = 0;
  // Parked pages that aged unused go back to the span heap (dirty, purged by the next pass, or by
  // the forced purge below: counted as released there, not here).
  for (unsigned c = 0; c < kClassCount; ++c) {
    for (Span* page = parked_[c]; page != nullptr;) {
      Span* next = page->next;
      if (force || page->freed_at_ms + delay <= now) {
        unlink_parked_locked(page);
        return_span_locked(page);
      }
      page = next;
    }
  }
  // Abandoned and quarantined pages whose blocks have all come back by remote frees go back to
  // the span heap.
  for (unsigned c = 0; c <= kClassCount; ++c) {
    for (Span* page = c < kClassCount ? abandoned_[c] : quarantined_; page != nullptr;) {
      Span* next = page->next;
      std::size_t bytes = page->bytes();
      if (release_abandoned_if_empty_locked(page)) released += bytes;
      page = next;
    }
  }
  guard = stats_.free_spans + 1;
  while (age_head_ != nullptr && force && guard-- != 0) {  // pages just returned are dirty too
    released += age_head_->bytes();
    purge_span_locked(age_head_);
  }
  // Entirely free, purged segments: released to the OS (brk ones only from the top of the
  // break, so the walk goes from the newest, highest segment down), except one mmap segment kept
  // for reuse. A free segment that must stay also gives back its page-entry pages.
  bool keep_one = !force;
  for (Segment* seg = segments_; seg != nullptr;) {
    Segment* next = seg->next;
    Span* only = &seg->pages()[seg->first_data_page];
    // Entirely free is not enough: the free pages may be split into a dirty and a purged span.
    if (only->kind == kSpanFree && only->state == kPurged &&
        only->page_count == seg->data_pages()) {
      std::size_t size = seg->size;
      std::size_t before = stats_.mapped;
      if (keep_one && !seg->from_brk && size == kSegmentSize) {
        keep_one = false;
      } else {
        release_segment_locked(seg);
      }
      if (stats_.mapped != before)
        released += size;
      else
        released += purge_segment_metadata_locked(seg);
    }
    seg = next;
  }
  next_decay_ms_ = age_head_ != nullptr ? age_head_->freed_at_ms + delay : now + delay;
  if (next_decay_ms_ <= now) next_decay_ms_ = now + 1;
  return released;
}

std::size_t Arena::purge_segment_metadata_locked(Segment* seg) {
  if (seg->metadata_purged != 0 || seg->first_data_page <= 2) return 0;
  // Page 0 holds the header: keep it. The free span's entries are rewritten afterwards.
  Span* only = &seg->pages()[seg->first_data_page];
  std::uint64_t freed_at = only->freed_at_ms;
  bool zeroed = only->zeroed != 0;
  unlink_free_locked(only);
  std::size_t bytes = std::size_t{seg->first_data_page - 1} * os::kPageSize;
  bool ok = os::purge(seg->page_address(1), bytes, os::PurgeKind::kDontNeed);
  make_free_locked(seg, seg->first_data_page, seg->data_pages(), kPurged, freed_at, zeroed);
  if (!ok) return 0;
  seg->metadata_purged = 1;
  return bytes;
}

// ---- abandoned small pages -------------------------------------------------------------------

void Arena::abandon_page_locked(Span* page) {
  MALLARD_CHECK(lock_.held_by_me());
  page->flags = kSpanAbandoned;
  push_page(abandoned_[page->size_class], page);
  ++stats_.abandoned_pages;
}

void Arena::unlink_abandoned_locked(Span* page) {
  unlink_page(abandoned_[page->size_class], page);
  --stats_.abandoned_pages;
}

void Arena::quarantine_page_locked(Span* page) {
  MALLARD_CHECK(lock_.held_by_me());
  page->flags = kSpanQuarantined;
  push_page(quarantined_, page);
  ++stats_.quarantined_pages;
}

bool Arena::release_abandoned_if_empty_locked(Span* page) {
  MALLARD_CHECK(lock_.held_by_me());
  if ((page->flags & (kSpanAbandoned | kSpanQuarantined)) == 0) return false;  // adopted
  if (thread_free_count(page->thread_free.load(std::memory_order_acquire)) != page->used)
    return false;
  const bool was_abandoned = (page->flags & kSpanAbandoned) != 0;
  if (page->flags & kSpanQuarantined) {
    unlink_page(quarantined_, page);
    --stats_.quarantined_pages;
  } else {
    unlink_abandoned_locked(page);
  }
  page->thread_free.store(0, std::memory_order_relaxed);
  if (was_abandoned) {
    // No decay tick: this runs inside the decay loop too.
    park_or_free_locked(page, false);
  } else {
    return_span_locked(page);
    enforce_dirty_budget_locked();
  }
  return true;
}

Span* Arena::take_abandoned_locked(unsigned size_class) {
  MALLARD_CHECK(lock_.held_by_me());
  Span* page = abandoned_[size_class];
  if (page != nullptr) unlink_abandoned_locked(page);
  return page;
}

// ---- parked small pages ----------------------------------------------------------------------

void Arena::park_or_free_locked(Span* page, bool tick) {
  MALLARD_CHECK(lock_.held_by_me());
  MALLARD_CHECK(page->kind == kSpanSmall && page->owner_tag.load(std::memory_order_relaxed) == 0);
  const unsigned c = page->size_class;
  // Resident at most: what was carved (in whole kernel pages, which may be larger than 4 KiB),
  // or more if the span came resident (resident_pages).
  const std::size_t kernel_page = os::page_size();
  std::size_t resident = (page->carved + kernel_page - 1) & ~(kernel_page - 1);
  if (resident > page->bytes()) resident = page->bytes();
  if (resident < page->resident_bytes()) resident = page->resident_bytes();
  // Parking is worth it only where pages go and come back: within what the arena learnt from
  // memory it purged and had to fault back in (learn_from_reuse_locked; thread churn teaches it
  // at once), not the trim threshold or activity share, which a program's last frees would fill
  // for nothing (bench size_sweep: +120 KiB resident at exit with them).
  std::size_t budget = dirty_budget();
  if (reuse_boost_ < budget) budget = reuse_boost_;
  if (decay_ms() != 0 && parked_count_[c] < kParkedPerClass &&
      dirty_bytes_ + stats_.parked_resident + resident <= budget) {
    const std::uint64_t now = os::now_ms();
    // Reset to never carved: every block is free, and the next owner carves them again from the
    // start, over the same (resident) bytes.
    page->free = nullptr;
    page->used = 0;
    page->thread_free.store(0, std::memory_order_relaxed);
    __atomic_store_n(&page->carved, std::uint64_t{0}, __ATOMIC_RELAXED);
    page->resident_pages = static_cast<std::uint32_t>(resident / os::kPageSize);
    page->freed_at_ms = now;
    push_page(parked_[c], page);
    page->flags = kSpanParked;
    ++parked_count_[c];
    if (dirty_bytes_ == 0 && stats_.parked_pages == 0) next_decay_ms_ = now + decay_ms();
    ++stats_.parked_pages;
    stats_.parked_bytes += page->bytes();
    stats::add_active(-static_cast<std::int64_t>(page->bytes()));  // free memory now
    stats_.parked_resident += resident;
    return;
  }
  return_span_locked(page);
  if (tick) tick_locked();
  enforce_dirty_budget_locked();
}

void Arena::unlink_parked_locked(Span* page) {
  MALLARD_CHECK(page->flags == kSpanParked && parked_count_[page->size_class] != 0);
  const std::size_t resident = page->resident_bytes();
  MALLARD_CHECK(stats_.parked_resident >= resident && stats_.parked_bytes >= page->bytes());
  unlink_page(parked_[page->size_class], page);
  --parked_count_[page->size_class];
  --stats_.parked_pages;
  stats_.parked_bytes -= page->bytes();
  stats_.parked_resident -= resident;
  stats::add_active(static_cast<std::int64_t>(page->bytes()));  // a small page again
}

Span* Arena::take_parked_locked(unsigned size_class) {
  MALLARD_CHECK(lock_.held_by_me());
  Span* page = parked_[size_class];
  if (page != nullptr) unlink_parked_locked(page);
  return page;
}

Span* Arena::alloc_small_page_locked(unsigned size_class, Pages pages, bool* zeroed) {
  MALLARD_CHECK(lock_.held_by_me());
  if (Span* page = take_parked_locked(size_class)) {
    *zeroed = false;
    return page;
  }
  while (dirty_bytes_ < pages.bytes() && release_oldest_parked_locked()) {
  }
  Span* page = alloc_span_locked(pages, Pages{1}, kSpanSmall, zeroed);
  // Memory known to be zero (fresh or purged) becomes resident only as it is carved; any other
  // (dirty) span may be resident throughout.
  if (page != nullptr) page->resident_pages = *zeroed ? 0 : page->page_count;
  return page;
}

bool Arena::release_oldest_parked_locked() {
  Span* oldest = nullptr;
  for (Span* head : parked_) {
    for (Span* page = head; page != nullptr; page = page->next)
      if (oldest == nullptr || page->freed_at_ms < oldest->freed_at_ms) oldest = page;
  }
  if (oldest == nullptr) return false;
  unlink_parked_locked(oldest);
  return_span_locked(oldest);
  return true;
}

}  // namespace mallard
