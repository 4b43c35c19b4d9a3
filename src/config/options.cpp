// options.cpp: the option table, its parsers (bounds, overflow, glibc's number syntax), the
// environment loader (secure-execution aware), mallopt's option part and the option reference.
// No allocation: warnings go through os::TextWriter.
#include "config/options.hpp"

#include <malloc.h>
#include <sys/auxv.h>

#include <cstring>

#include "os/os.hpp"
#include "os/text_writer.hpp"

namespace mallard::config {
namespace {

constexpr OptionInfo kTable[] = {
#define X(name, kind, def, min, max, enums, doc) \
  {#name, OptionKind::kind, def, min, max, enums, doc},
#include "config/options.inc"
#undef X
};
constexpr std::size_t kCount = sizeof kTable / sizeof kTable[0];

// Every default lies within its bounds.
constexpr bool defaults_within_bounds() {
  for (const OptionInfo& info : kTable) {
    if (info.min_value > info.max_value || info.default_value < info.min_value ||
        info.default_value > info.max_value)
      return false;
  }
  return true;
}
static_assert(defaults_within_bounds(), "options.inc: a default outside its option's bounds");

Relaxed<long>* field(Options& o, std::size_t index) {
  Relaxed<long>* fields[] = {
#define X(name, kind, def, min, max, enums, doc) &o.name,
#include "config/options.inc"
#undef X
  };
  return fields[index];
}

int find_option(const char* key, std::size_t key_len) {
  for (std::size_t i = 0; i < kCount; ++i) {
    if (std::strlen(kTable[i].name) == key_len && std::strncmp(kTable[i].name, key, key_len) == 0)
      return static_cast<int>(i);
  }
  return -1;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// Trims spaces at both ends of [*s, *s + *n).
void trim(const char** s, std::size_t* n) {
  while (*n > 0 && is_space(**s)) {
    ++*s;
    --*n;
  }
  while (*n > 0 && is_space((*s)[*n - 1])) --*n;
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  char l = static_cast<char>(c | 0x20);
  if (l >= 'a' && l <= 'f') return l - 'a' + 10;
  return 99;
}

// An unsigned number, with a binary k/m/g/t suffix when `suffix` is set (an optional 'b' after
// it: "64kb"). Overflow of 64 bits, in the digits or in the suffix's shift, is kOverflow.
ValueError parse_unsigned(const char* s, std::size_t n, bool suffix, NumberSyntax syntax,
                          std::uint64_t* out) {
  if (n == 0) return ValueError::kEmpty;
  if (s[0] == '-')
    return n > 1 && s[1] >= '0' && s[1] <= '9' ? ValueError::kNegative : ValueError::kMalformed;
  unsigned base = 10;
  std::size_t i = 0;
  if (syntax == NumberSyntax::kGlibc && n > 1 && s[0] == '0') {
    if ((s[1] | 0x20) == 'x') {
      base = 16;
      i = 2;
      if (n == 2) return ValueError::kMalformed;
    } else {
      base = 8;
      i = 1;
    }
  }
  std::size_t first = i;
  std::uint64_t v = 0;
  for (; i < n; ++i) {
    unsigned d = static_cast<unsigned>(digit_value(s[i]));
    if (d >= base) break;
    if (v > (UINT64_MAX - d) / base) return ValueError::kOverflow;
    v = v * base + d;
  }
  if (i == first && base != 8) return ValueError::kMalformed;  // "0" alone is octal zero
  if (i < n && suffix) {
    char c = static_cast<char>(s[i] | 0x20);
    int shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : c == 't' ? 40 : -1;
    if (shift < 0) return ValueError::kMalformed;
    ++i;
    if (i < n && (s[i] | 0x20) == 'b') ++i;  // "64kb"
    if (i != n) return ValueError::kMalformed;
    if (v > (UINT64_MAX >> shift)) return ValueError::kOverflow;
    v <<= shift;
  }
  if (i != n) return ValueError::kMalformed;
  *out = v;
  return ValueError::kNone;
}

// A name of a '|'-separated list, by index.
void enum_name(const char* names, long index, const char** name, std::size_t* len) {
  for (long k = 0; k < index && std::strchr(names, '|') != nullptr; ++k)
    names = std::strchr(names, '|') + 1;
  const char* end = std::strchr(names, '|');
  *name = names;
  *len = end ? static_cast<std::size_t>(end - names) : std::strlen(names);
}

void write_signed(os::TextWriter& w, long v) {
  if (v < 0)
    w.ch('-').u(static_cast<std::uint64_t>(-(v + 1)) + 1);
  else
    w.u(static_cast<std::uint64_t>(v));
}

// A value as the user writes it: the enum name, or the number.
[[gnu::cold]] void write_value(os::TextWriter& w, const OptionInfo& info, long v) {
  if (info.kind == OptionKind::kEnum && v >= info.min_value && v <= info.max_value) {
    const char* name;
    std::size_t len;
    enum_name(info.enum_names, v, &name, &len);
    w.bytes(name, len);
  } else {
    write_signed(w, v);
  }
}

// "0 to 33554432 bytes (32.0 MiB)", "0 to 1024", "0 or 1", "dontneed or free".
[[gnu::cold]] void write_range(os::TextWriter& w, const OptionInfo& info) {
  switch (info.kind) {
    case OptionKind::kBool:
      w.str("0 or 1");
      return;
    case OptionKind::kEnum:
      for (long k = info.min_value; k <= info.max_value; ++k) {
        if (k != info.min_value) w.str(k == info.max_value ? " or " : ", ");
        write_value(w, info, k);
      }
      return;
    case OptionKind::kSize:
      write_signed(w, info.min_value);
      w.str(" to ");
      write_signed(w, info.max_value);
      w.str(" bytes (").bytes_human(static_cast<std::uint64_t>(info.max_value)).ch(')');
      return;
    case OptionKind::kCount:
      write_signed(w, info.min_value);
      w.str(" to ");
      write_signed(w, info.max_value);
      return;
  }
}

const char* reason(const OptionInfo& info, ValueError e) {
  switch (e) {
    case ValueError::kEmpty:
      return "empty";
    case ValueError::kMalformed:
      return info.kind == OptionKind::kEnum   ? "not a known name"
             : info.kind == OptionKind::kBool ? "not 0, 1, true or false"
             : info.kind == OptionKind::kSize ? "not a number of bytes (digits, then k, m, g or t)"
                                              : "not a number";
    case ValueError::kNegative:
      return "negative";
    case ValueError::kOverflow:
      return "too large (overflows)";
    case ValueError::kRange:
      return "out of range";
    case ValueError::kNone:
      break;
  }
  return "";
}

// Where a refused value came from, for its warning line.
struct Source {
  const char* what;   // "option", "variable", "tunable"
  const char* where;  // " in MALLARD_OPTIONS", "", " in GLIBC_TUNABLES"
};
constexpr Source kFromOptions{"option", " in MALLARD_OPTIONS"};
constexpr Source kFromVariable{"variable", ""};
constexpr Source kFromTunable{"tunable", " in GLIBC_TUNABLES"};

// One line: mallard: bad value for option 'mmap_threshold=17179869184g' in MALLARD_OPTIONS: too
// large (overflows); allowed 0 to 33554432 bytes (32.0 MiB); keeping 131072
[[gnu::cold]] void warn_value(const Source& src, const char* key, std::size_t key_len,
                              const char* value, std::size_t value_len, const OptionInfo& info,
                              ValueError e, long current) {
  os::TextWriter w(2);
  w.str("mallard: bad value for ").str(src.what).str(" '").bytes(key, key_len).ch('=');
  w.bytes(value, value_len).ch('\'').str(src.where).str(": ").str(reason(info, e));
  w.str("; allowed ");
  write_range(w, info);
  w.str("; keeping ");
  write_value(w, info, current);
  w.ch('\n');
}

[[gnu::cold]] void warn_unknown(const char* what, const char* key, std::size_t key_len,
                                const char* where) {
  os::TextWriter w(2);
  w.str("mallard: unknown ").str(what).str(" '").bytes(key, key_len).ch('\'').str(where);
  w.str(" ignored\n");
}

void store(Options& o, std::size_t index, long v) {
  // The freeze first: a huge block freed meanwhile must not raise the threshold over this value.
  if (freezes_dynamic_threshold(kTable[index].name)) o.dynamic_threshold_off = true;
  *field(o, index) = v;
}

// Parses and stores one value of option `index`; on refusal warns (from `src`) and keeps it.
void apply_value(Options& o, std::size_t index, const Source& src, const char* key,
                 std::size_t key_len, const char* value, std::size_t value_len,
                 NumberSyntax syntax) {
  trim(&value, &value_len);
  long v = 0;
  ValueError e = parse_option_value(kTable[index], value, value_len, syntax, &v);
  if (e == ValueError::kNone) {
    store(o, index, v);
  } else {
    warn_value(src, key, key_len, value, value_len, kTable[index], e, *field(o, index));
  }
}

// glibc's malloc variables Mallard honours, and the options they set.
constexpr struct {
  const char* variable;
  const char* tunable;
  const char* key;
} kGlibcKnobs[] = {
    {"MALLOC_ARENA_MAX", "glibc.malloc.arena_max", "arena_max"},
    {"MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold", "mmap_threshold"},
    {"MALLOC_MMAP_MAX_", "glibc.malloc.mmap_max", "mmap_max"},
    {"MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold", "trim_threshold"},
    {"MALLOC_TOP_PAD_", "glibc.malloc.top_pad", "top_pad"},
    {nullptr, "glibc.malloc.mxfast", "mxfast"},  // a tunable only, in glibc too
};

// glibc's other malloc tunables (2.39): valid there, without effect here, so accepted silently.
constexpr const char* kGlibcTunablesWithoutEffect[] = {
    "glibc.malloc.check",      "glibc.malloc.perturb",      "glibc.malloc.arena_test",
    "glibc.malloc.tcache_max", "glibc.malloc.tcache_count", "glibc.malloc.tcache_unsorted_limit",
    "glibc.malloc.hugetlb",
};

bool equals(const char* s, std::size_t n, const char* name) {
  return std::strlen(name) == n && std::strncmp(s, name, n) == 0;
}

void apply_glibc_variables(Options& o) {
  for (const auto& knob : kGlibcKnobs) {
    if (knob.variable == nullptr) continue;
    const char* v = os::get_env(knob.variable);
    if (v == nullptr) continue;
    std::size_t n = std::strlen(v);
    const char* value = v;
    trim(&value, &n);
    if (n == 0) continue;  // set but empty: as unset (`MALLOC_ARENA_MAX= prog`)
    apply_value(o, static_cast<std::size_t>(find_option(knob.key, std::strlen(knob.key))),
                kFromVariable, knob.variable, std::strlen(knob.variable), value, n,
                NumberSyntax::kGlibc);
  }
}

// GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536:... Tunables of
// other namespaces are glibc's business; an unknown glibc.malloc one is reported.
void apply_glibc_tunables(Options& o) {
  const char* t = os::get_env("GLIBC_TUNABLES");
  if (t == nullptr) return;
  constexpr char kPrefix[] = "glibc.malloc.";
  while (*t != '\0') {
    const char* end = std::strchr(t, ':');
    std::size_t len = end ? static_cast<std::size_t>(end - t) : std::strlen(t);
    const char* eq = static_cast<const char*>(std::memchr(
        t, '=', len));  // NOLINT(bugprone-not-null-terminated-result): a search, not a copy
    const char* name = t;
    std::size_t name_len = eq ? static_cast<std::size_t>(eq - t) : len;
    trim(&name, &name_len);
    if (name_len >= sizeof kPrefix - 1 && std::strncmp(name, kPrefix, sizeof kPrefix - 1) == 0) {
      bool known = false;
      for (const auto& knob : kGlibcKnobs) {
        if (!equals(name, name_len, knob.tunable)) continue;
        known = true;
        std::size_t index = static_cast<std::size_t>(find_option(knob.key, std::strlen(knob.key)));
        if (eq == nullptr) {
          warn_value(kFromTunable, name, name_len, "", 0, kTable[index], ValueError::kEmpty,
                     *field(o, index));
        } else {
          apply_value(o, index, kFromTunable, name, name_len, eq + 1,
                      len - static_cast<std::size_t>(eq + 1 - t), NumberSyntax::kGlibc);
        }
      }
      for (const char* other : kGlibcTunablesWithoutEffect) known |= equals(name, name_len, other);
      if (!known) warn_unknown("tunable", name, name_len, " in GLIBC_TUNABLES");
    }
    if (end == nullptr) break;
    t = end + 1;
  }
}

}  // namespace

constinit Options g_options;

bool freezes_dynamic_threshold(const char* key) {
  return std::strcmp(key, "mmap_threshold") == 0 || std::strcmp(key, "trim_threshold") == 0 ||
         std::strcmp(key, "top_pad") == 0 || std::strcmp(key, "mmap_max") == 0;
}

const OptionInfo* option_table(std::size_t* count) {
  *count = kCount;
  return kTable;
}

ValueError parse_option_value(const OptionInfo& info, const char* s, std::size_t n,
                              NumberSyntax syntax, long* out) {
  trim(&s, &n);
  if (n == 0) return ValueError::kEmpty;
  switch (info.kind) {
    case OptionKind::kSize:
    case OptionKind::kCount: {
      std::uint64_t v = 0;
      ValueError e = parse_unsigned(s, n, info.kind == OptionKind::kSize, syntax, &v);
      if (e != ValueError::kNone) return e;
      if (v < static_cast<std::uint64_t>(info.min_value) ||
          v > static_cast<std::uint64_t>(info.max_value))
        return ValueError::kRange;
      *out = static_cast<long>(v);
      return ValueError::kNone;
    }
    case OptionKind::kBool:
      if (n == 1 && (s[0] == '1' || s[0] == '0')) return (*out = s[0] - '0'), ValueError::kNone;
      if (equals(s, n, "true")) return (*out = 1), ValueError::kNone;
      if (equals(s, n, "false")) return (*out = 0), ValueError::kNone;
      return ValueError::kMalformed;
    case OptionKind::kEnum:
      for (long k = info.min_value; k <= info.max_value; ++k) {
        const char* name;
        std::size_t len;
        enum_name(info.enum_names, k, &name, &len);
        if (len == n && std::strncmp(name, s, n) == 0) return (*out = k), ValueError::kNone;
      }
      return ValueError::kMalformed;
  }
  return ValueError::kMalformed;
}

bool set_option(Options& o, const char* key, std::size_t key_len, const char* value,
                std::size_t value_len) {
  trim(&key, &key_len);
  int i = find_option(key, key_len);
  if (i < 0) return false;
  long v = 0;
  if (parse_option_value(kTable[i], value, value_len, NumberSyntax::kMallard, &v) !=
      ValueError::kNone)
    return false;
  store(o, static_cast<std::size_t>(i), v);
  return true;
}

bool set_option_number(Options& o, const char* key, long value) {
  int i = find_option(key, std::strlen(key));
  if (i < 0 || value < kTable[i].min_value || value > kTable[i].max_value) return false;
  store(o, static_cast<std::size_t>(i), value);
  return true;
}

int apply_mallopt(Options& o, int param, int value) {
  switch (param) {
    case M_ARENA_MAX:  // as glibc, which ignores values < 1 and returns 1 for them
      return value < 1 || set_option_number(o, "arena_max", value) ? 1 : 0;
    case M_MMAP_THRESHOLD:
      return set_option_number(o, "mmap_threshold", value) ? 1 : 0;
    case M_MMAP_MAX:
      return set_option_number(o, "mmap_max", value) ? 1 : 0;
    case M_TRIM_THRESHOLD:
      // As glibc, which stores the int in a size_t: a negative value means "never trim".
      if (value < 0) {
        o.dynamic_threshold_off = true;
        o.trim_threshold = -1;
        return 1;
      }
      return set_option_number(o, "trim_threshold", value) ? 1 : 0;
    case M_TOP_PAD:
      return set_option_number(o, "top_pad", value) ? 1 : 0;
    default:
      return -1;  // not an option
  }
}

long get_option(const Options& o, const char* key) {
  int i = find_option(key, std::strlen(key));
  if (i < 0) return -1;
  return *field(const_cast<Options&>(o), static_cast<std::size_t>(i));
}

void apply_option_string(Options& o, const char* text) {
  // Each unknown key is reported once, even if it is repeated.
  const char* warned[16];
  std::size_t warned_len[16];
  int warned_count = 0;
  while (text != nullptr && *text != '\0') {
    const char* end = std::strchr(text, ',');
    std::size_t len = end ? static_cast<std::size_t>(end - text) : std::strlen(text);
    const char* eq = static_cast<const char*>(std::memchr(
        text, '=', len));  // NOLINT(bugprone-not-null-terminated-result): a search, not a copy
    const char* key = text;
    std::size_t key_len = eq ? static_cast<std::size_t>(eq - text) : len;
    trim(&key, &key_len);
    int index = key_len != 0 ? find_option(key, key_len) : -1;
    // A bare key means "=1" for a switch; for a size or count it is a missing value (a bare
    // `mmap_threshold` meaning 1 byte would mmap every block), refused like any bad value.
    const bool bare_switch =
        index >= 0 && kTable[static_cast<std::size_t>(index)].kind == OptionKind::kBool;
    const char* value = eq ? eq + 1 : bare_switch ? "1" : "";
    std::size_t value_len = eq ? len - static_cast<std::size_t>(eq + 1 - text) : std::strlen(value);
    if (index >= 0) {
      apply_value(o, static_cast<std::size_t>(index), kFromOptions, key, key_len, value, value_len,
                  NumberSyntax::kMallard);
    } else if (key_len != 0 || eq != nullptr) {
      bool seen = false;
      for (int i = 0; i < warned_count; ++i)
        seen |= warned_len[i] == key_len && std::strncmp(warned[i], key, key_len) == 0;
      if (!seen) {
        warn_unknown("option", key, key_len, " in MALLARD_OPTIONS");
        if (warned_count < 16) {
          warned[warned_count] = key;
          warned_len[warned_count++] = key_len;
        }
      }
    }
    if (end == nullptr) break;
    text = end + 1;
  }
}

bool secure_execution() {
  return getauxval(AT_SECURE) != 0;
}

void load_options_from_environment(Options& o, bool secure) {
  // A setuid program must not let the user who runs it steer it (report=text,report_fd=N writes
  // into a file the program opened): as glibc in secure-execution mode, ignore it all.
  if (secure) return;
  // glibc's order: the MALLOC_*_ variables are aliases that GLIBC_TUNABLES overrides.
  apply_glibc_variables(o);
  apply_glibc_tunables(o);
  apply_option_string(o, os::get_env("MALLARD_OPTIONS"));
}

void load_options_from_environment(Options& o) {
  load_options_from_environment(o, secure_execution());
}

namespace {

// Roff text: a backslash is written \e, and a line may not start with a control character.
void write_roff(os::TextWriter& w, const char* text) {
  if (*text == '.' || *text == '\'') w.str("\\&");
  for (; *text != '\0'; ++text) {
    if (*text == '\\')
      w.str("\\e");
    else
      w.ch(*text);
  }
}

}  // namespace

void write_option_docs(os::TextWriter& w, DocFormat format) {
  const bool markdown = format == DocFormat::kMarkdown;
  if (markdown) {
    w.str(
        "# Mallard options\n\n"
        "Generated by `mallard options --markdown` from `src/config/options.inc`; do not edit.\n\n"
        "Set them as `MALLARD_OPTIONS=\"key=value,key=value\"` (a bare `key` means `key=1` for a "
        "switch; spaces "
        "around keys and values are ignored), at run time with `mallard_option_set`, or with "
        "`mallard run --options`. glibc's `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, "
        "`MALLOC_MMAP_MAX_`, `MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_` and the matching "
        "`GLIBC_TUNABLES` (`glibc.malloc.arena_max` ...) set the same options (with glibc's number "
        "syntax too: `0x` hexadecimal, leading-0 octal), and `MALLARD_OPTIONS` wins over them; "
        "`mallopt` sets them at run time.\n\n"
        "Every value must lie in the option's range. An unknown key, or a value that is "
        "malformed, negative, overflows or is out of range, prints one warning line on stderr "
        "(naming the option, the value and the range) and the option keeps its value; "
        "`mallard_option_set` returns -1 and `mallopt` returns 0 instead, as glibc's mallopt(3) "
        "for a bad value. Sizes take binary suffixes: `64k` is 65536, `1m`, `1g`, `1t`.\n\n"
        "In secure-execution mode (a setuid or setgid program, or one with file capabilities: "
        "`getauxval(AT_SECURE)`), as glibc does for its malloc variables, no environment variable "
        "is read: every option keeps its default.\n\n"
        "| option | values | range | default | meaning |\n|---|---|---|---|---|\n");
  }
  for (const OptionInfo& info : kTable) {
    const char* values = info.kind == OptionKind::kSize    ? "bytes (k, m, g, t suffixes)"
                         : info.kind == OptionKind::kCount ? "integer"
                         : info.kind == OptionKind::kBool  ? "0 or 1 (true, false)"
                                                           : "name";
    if (format == DocFormat::kMan) {
      w.str(".TP\n.B ").str(info.name).ch('\n').str(values).str("; ");
      write_range(w, info);
      w.str("; default ");
      write_value(w, info, info.default_value);
      w.str(".\n.br\n");
      write_roff(w, info.doc);
      w.ch('\n');
    } else if (markdown) {
      w.str("| `").str(info.name).str("` | ").str(values).str(" | ");
      write_range(w, info);
      w.str(" | ");
      write_value(w, info, info.default_value);
      w.str(" | ").str(info.doc).str(" |\n");
    } else {
      w.str(info.name);
      for (std::size_t k = std::strlen(info.name); k < 18; ++k) w.ch(' ');
      w.ch(' ').str(values).str(", ");
      write_range(w, info);
      w.str(", default ");
      write_value(w, info, info.default_value);
      w.str("\n    ").str(info.doc).ch('\n');
    }
  }
}

}  // namespace mallard::config
