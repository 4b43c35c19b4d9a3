// options.hpp: Options, the process-wide settings, parsed from MALLARD_OPTIONS and glibc's
// environment variables at initialisation and changed later by mallopt or mallard_option_set.
// Owns parsing, the option table and its bounds; never allocates (parsing works on the
// environment in place). In secure-execution mode (setuid, setgid, file capabilities: AT_SECURE)
// the environment is not read at all.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "os/visibility.hpp"

namespace mallard::os {
class TextWriter;
}

namespace mallard::config {

enum class OptionKind : std::uint8_t { kSize, kCount, kBool, kEnum };

// Bounds used by the table (options.inc): C's INT_MAX, and 1 TiB for byte budgets.
inline constexpr long kOptionIntMax = 2147483647;
inline constexpr long kOptionSizeMax = 1L << 40;

// A setting that may change while other threads read it (mallopt, mallard_option_set, the dynamic
// mmap threshold raised by a free): relaxed atomic loads and stores, which are plain moves on
// x86-64 (no read-modify-write, no fence), so no read is a data race. Reads as a T; copyable (a
// copy is a snapshot, for tests that save and restore the options).
template <typename T>
class Relaxed {
 public:
  constexpr Relaxed(T v = T{}) noexcept : v_(v) {}  // NOLINT(google-explicit-constructor)
  Relaxed(const Relaxed& other) noexcept : v_(other.load()) {}
  Relaxed& operator=(const Relaxed& other) noexcept {
    store(other.load());
    return *this;
  }
  Relaxed& operator=(T v) noexcept {
    store(v);
    return *this;
  }
  operator T() const noexcept { return load(); }  // NOLINT(google-explicit-constructor)
  T load() const noexcept { return v_.load(std::memory_order_relaxed); }
  void store(T v) noexcept { v_.store(v, std::memory_order_relaxed); }

 private:
  std::atomic<T> v_;
};

struct Options {
#define X(name, kind, def, min, max, enums, doc) Relaxed<long> name{def};
#include "config/options.inc"
#undef X
  // glibc's no_dyn_threshold: set when mmap_threshold, trim_threshold, top_pad or mmap_max is
  // set explicitly (option, MALLOC_*_ variable, tunable or mallopt); the dynamic mmap threshold
  // (and the trim threshold that follows it) then stays where it is.
  Relaxed<bool> dynamic_threshold_off{false};
};

struct OptionInfo {
  const char* name;
  OptionKind kind;
  long default_value;
  long min_value;  // inclusive bounds; every source (option, variable, tunable, mallopt) obeys them
  long max_value;
  const char* enum_names;  // '|'-separated, for kEnum
  const char* doc;
};

// The process's options. Written during init (single-threaded) and later by mallopt,
// mallard_option_set and the dynamic threshold; read anywhere (see Relaxed).
extern Options g_options MALLARD_HIDDEN;
inline Options& options() {
  return g_options;
}

// Every option, in table order.
const OptionInfo* option_table(std::size_t* count);

// Why a value was refused.
enum class ValueError : std::uint8_t { kNone, kEmpty, kMalformed, kNegative, kOverflow, kRange };
// Number syntax: Mallard's (decimal, k/m/g/t suffixes for sizes) or glibc's for its own knobs
// (MALLOC_*_ variables and GLIBC_TUNABLES: also 0x hexadecimal and leading-0 octal, as glibc's
// strtoul-based tunable parser; Mallard's suffixes are accepted there too).
enum class NumberSyntax : std::uint8_t { kMallard, kGlibc };
// Parses one value (spaces around it trimmed) and checks it against the option's bounds.
ValueError parse_option_value(const OptionInfo& info, const char* s, std::size_t n,
                              NumberSyntax syntax, long* out);

// Parses and sets one option (spaces around key and value trimmed). Returns false, and changes
// nothing, for an unknown key or a value that is malformed, overflows or is out of bounds.
bool set_option(Options& o, const char* key, std::size_t key_len, const char* value,
                std::size_t value_len);
// Sets an option to a number within its bounds; false (nothing changed) otherwise or if unknown.
bool set_option_number(Options& o, const char* key, long value);
// glibc's mallopt(3) for the parameters that are options (M_ARENA_MAX, M_MMAP_THRESHOLD,
// M_MMAP_MAX, M_TRIM_THRESHOLD, M_TOP_PAD): 1 on success; 0 for a value outside the option's
// bounds, and then nothing changes; -1 for any other parameter (the caller's). As glibc: a
// negative M_TRIM_THRESHOLD means "never trim" (stored as -1), M_ARENA_MAX refuses values < 1.
// The caller applies the side effects (arena cap, small-size limit).
int apply_mallopt(Options& o, int param, int value);
// Whether setting `key` turns the dynamic mmap threshold off (glibc: M_MMAP_THRESHOLD,
// M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, however they are set).
bool freezes_dynamic_threshold(const char* key);
// Reads an option by name (-1 if unknown).
long get_option(const Options& o, const char* key);

// Applies "k=v,k=v" text; each unknown key (once per key) or refused value prints one warning
// line to stderr (naming the option, the value and the allowed range) and keeps the value.
void apply_option_string(Options& o, const char* text);
// Applies MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_MAX_,
// MALLOC_TOP_PAD_, GLIBC_TUNABLES (glibc.malloc.*) and then MALLARD_OPTIONS (which wins), each
// refused value with one warning. In secure-execution mode nothing is read (glibc ignores its
// malloc variables there too): the options stay as they are, and nothing is printed.
void load_options_from_environment(Options& o);
void load_options_from_environment(Options& o, bool secure_execution);
// getauxval(AT_SECURE): the process runs setuid, setgid or with gained capabilities.
bool secure_execution();

// Writes the option reference: the `mallard options` listing, docs/options.md (markdown) or the
// OPTIONS section of mallard(3) (roff, `mallard options --man`): one table, three renderings.
enum class DocFormat { kText, kMarkdown, kMan };
[[gnu::cold]] void write_option_docs(os::TextWriter& w, DocFormat format);
inline void write_option_docs(os::TextWriter& w, bool markdown) {
  write_option_docs(w, markdown ? DocFormat::kMarkdown : DocFormat::kText);
}

}  // namespace mallard::config
