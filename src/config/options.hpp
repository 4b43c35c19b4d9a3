// options.hpp: Options, the process-wide settings, parsed from MALLARD_OPTIONS and glibc's
// environment variables at initialisation and changed later by mallopt or mallard_option_set.
// Owns parsing and the option table; never allocates (parsing works on the environment in place).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mallard::config {

enum class OptionKind : std::uint8_t { kSize, kCount, kBool, kEnum };

struct Options {
#define X(name, kind, def, enums, doc) long name = def;
#include "config/options.inc"
#undef X
  // glibc's no_dyn_threshold: set when mmap_threshold, trim_threshold, top_pad or mmap_max is
  // set explicitly (option, MALLOC_*_ variable, tunable or mallopt); the dynamic mmap threshold
  // (and the trim threshold that follows it) then stays where it is.
  bool dynamic_threshold_off = false;
};

struct OptionInfo {
  const char* name;
  OptionKind kind;
  long default_value;
  const char* enum_names;  // '|'-separated, for kEnum
  const char* doc;
};

// The process's options. Written during init (single-threaded) and by mallopt; read anywhere.
extern Options g_options;
inline Options& options() {
  return g_options;
}

// Every option, in table order.
const OptionInfo* option_table(std::size_t* count);

// Parses one value for an option. Returns false for an unknown key or a bad value.
bool set_option(Options& o, const char* key, std::size_t key_len, const char* value,
                std::size_t value_len);
// Whether setting `key` turns the dynamic mmap threshold off (glibc: M_MMAP_THRESHOLD,
// M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX, however they are set).
bool freezes_dynamic_threshold(const char* key);
// Reads an option by name (-1 if unknown).
long get_option(const Options& o, const char* key);

// Applies "k=v,k=v" text; each unknown key or bad value prints one warning to stderr (once per
// key) and keeps the default.
void apply_option_string(Options& o, const char* text);
// Applies MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_MAX_,
// MALLOC_TOP_PAD_, GLIBC_TUNABLES (glibc.malloc.*) and then MALLARD_OPTIONS (which wins).
void load_options_from_environment(Options& o);

}  // namespace mallard::config
