// options.cpp: the option table, its parser and the environment loader. No allocation.
#include "config/options.hpp"

#include <cstring>

#include "os/os.hpp"
#include "os/text_writer.hpp"

namespace mallard::config {
namespace {

constexpr OptionInfo kTable[] = {
#define X(name, kind, def, enums, doc) {#name, OptionKind::kind, def, enums, doc},
#include "config/options.inc"
#undef X
};

long* field(Options& o, std::size_t index) {
  long* fields[] = {
#define X(name, kind, def, enums, doc) &o.name,
#include "config/options.inc"
#undef X
  };
  return fields[index];
}

int find_option(const char* key, std::size_t key_len) {
  for (std::size_t i = 0; i < sizeof kTable / sizeof kTable[0]; ++i) {
    if (std::strlen(kTable[i].name) == key_len && std::strncmp(kTable[i].name, key, key_len) == 0)
      return static_cast<int>(i);
  }
  return -1;
}

bool parse_number(const char* s, std::size_t n, bool allow_suffix, long* out) {
  if (n == 0) return false;
  unsigned long long v = 0;
  std::size_t i = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; ++i) {
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
    if (v > (1ull << 50)) return false;
  }
  if (i == 0) return false;
  if (i < n && allow_suffix) {
    char c = static_cast<char>(s[i] | 0x20);
    int shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : -1;
    if (shift < 0) return false;
    v <<= shift;
    ++i;
    if (i < n && (s[i] | 0x20) == 'b') ++i;  // "64kb"
    if (i < n && (s[i] | 0x20) == 'i') return false;
  }
  if (i != n) return false;
  *out = static_cast<long>(v);
  return true;
}

bool parse_value(const OptionInfo& info, const char* s, std::size_t n, long* out) {
  switch (info.kind) {
    case OptionKind::kSize:
      return parse_number(s, n, true, out);
    case OptionKind::kCount:
      return parse_number(s, n, false, out);
    case OptionKind::kBool:
      if ((n == 1 && (s[0] == '1' || s[0] == '0'))) {
        *out = s[0] - '0';
        return true;
      }
      if (n == 4 && std::strncmp(s, "true", 4) == 0) return (*out = 1), true;
      if (n == 5 && std::strncmp(s, "false", 5) == 0) return (*out = 0), true;
      return false;
    case OptionKind::kEnum: {
      const char* names = info.enum_names;
      for (long index = 0; *names != '\0'; ++index) {
        const char* end = std::strchr(names, '|');
        std::size_t len = end ? static_cast<std::size_t>(end - names) : std::strlen(names);
        if (len == n && std::strncmp(names, s, n) == 0) return (*out = index), true;
        if (end == nullptr) break;
        names = end + 1;
      }
      return false;
    }
  }
  return false;
}

void warn(const char* what, const char* key, std::size_t key_len, const char* value,
          std::size_t value_len) {
  os::TextWriter w(2);
  w.str("mallard: ").str(what).str(" '").bytes(key, key_len);
  if (value != nullptr) w.ch('=').bytes(value, value_len);
  w.str("' ignored; keeping the default\n");
}

void apply_env_number(Options& o, const char* env, const char* key) {
  const char* v = os::get_env(env);
  if (v != nullptr && *v != '\0') {
    if (!set_option(o, key, std::strlen(key), v, std::strlen(v)))
      warn("bad value in", env, std::strlen(env), v, std::strlen(v));
  }
}

// GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536:...
void apply_glibc_tunables(Options& o) {
  const char* t = os::get_env("GLIBC_TUNABLES");
  if (t == nullptr) return;
  static const struct {
    const char* tunable;
    const char* key;
  } kMap[] = {{"glibc.malloc.arena_max", "arena_max"},
              {"glibc.malloc.mmap_threshold", "mmap_threshold"},
              {"glibc.malloc.mmap_max", "mmap_max"},
              {"glibc.malloc.trim_threshold", "trim_threshold"},
              {"glibc.malloc.top_pad", "top_pad"}};
  while (*t != '\0') {
    const char* end = std::strchr(t, ':');
    std::size_t len = end ? static_cast<std::size_t>(end - t) : std::strlen(t);
    const char* eq = static_cast<const char*>(std::memchr(
        t, '=', len));  // NOLINT(bugprone-not-null-terminated-result): a search, not a copy
    if (eq != nullptr) {
      std::size_t name_len = static_cast<std::size_t>(eq - t);
      for (const auto& m : kMap) {
        if (std::strlen(m.tunable) == name_len && std::strncmp(t, m.tunable, name_len) == 0) {
          set_option(o, m.key, std::strlen(m.key), eq + 1, len - name_len - 1);
        }
      }
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
  *count = sizeof kTable / sizeof kTable[0];
  return kTable;
}

bool set_option(Options& o, const char* key, std::size_t key_len, const char* value,
                std::size_t value_len) {
  int i = find_option(key, key_len);
  if (i < 0) return false;
  long v = 0;
  if (!parse_value(kTable[i], value, value_len, &v)) return false;
  *field(o, static_cast<std::size_t>(i)) = v;
  if (freezes_dynamic_threshold(kTable[i].name)) o.dynamic_threshold_off = true;
  return true;
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
    std::size_t key_len = eq ? static_cast<std::size_t>(eq - text) : len;
    const char* value = eq ? eq + 1 : "1";  // a bare key means "=1"
    std::size_t value_len = eq ? len - key_len - 1 : 1;
    if (len != 0 && find_option(text, key_len) < 0) {
      bool seen = false;
      for (int i = 0; i < warned_count; ++i)
        seen |= warned_len[i] == key_len && std::strncmp(warned[i], text, key_len) == 0;
      if (!seen) {
        warn("unknown option", text, key_len, nullptr, 0);
        if (warned_count < 16) {
          warned[warned_count] = text;
          warned_len[warned_count++] = key_len;
        }
      }
    } else if (len != 0 && !set_option(o, text, key_len, value, value_len)) {
      warn("bad value for option", text, key_len, value, value_len);
    }
    if (end == nullptr) break;
    text = end + 1;
  }
}

void load_options_from_environment(Options& o) {
  apply_glibc_tunables(o);
  apply_env_number(o, "MALLOC_ARENA_MAX", "arena_max");
  apply_env_number(o, "MALLOC_MMAP_THRESHOLD_", "mmap_threshold");
  apply_env_number(o, "MALLOC_MMAP_MAX_", "mmap_max");
  apply_env_number(o, "MALLOC_TRIM_THRESHOLD_", "trim_threshold");
  apply_env_number(o, "MALLOC_TOP_PAD_", "top_pad");
  apply_option_string(o, os::get_env("MALLARD_OPTIONS"));
}

}  // namespace mallard::config
