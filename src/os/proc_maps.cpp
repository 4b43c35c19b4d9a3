// proc_maps.cpp: /proc/self/smaps streamed through a fixed buffer (no allocation; raw system
// calls, errno kept) and mincore over a range in fixed-size steps.
#include "os/proc_maps.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "os/keep_errno.hpp"
#include "os/os.hpp"

namespace mallard::os {
namespace {

std::uintptr_t parse_hex(const char*& s) {
  std::uintptr_t v = 0;
  for (;; ++s) {
    char c = *s;
    if (c >= '0' && c <= '9')
      v = v * 16 + static_cast<std::uintptr_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      v = v * 16 + static_cast<std::uintptr_t>(c - 'a' + 10);
    else
      return v;
  }
}

bool is_digit_or_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// A mapping's header line: "start-end perms offset dev inode   path".
bool parse_header(const char* line, Mapping& m) {
  if (!is_digit_or_hex(*line)) return false;
  const char* s = line;
  m.start = parse_hex(s);
  if (*s != '-') return false;
  ++s;
  m.end = parse_hex(s);
  if (*s != ' ') return false;
  ++s;
  for (int i = 0; i < 4; ++i) m.perms[i] = *s != '\0' ? *s++ : '-';
  m.perms[4] = '\0';
  // offset, dev, inode, then spaces up to the path.
  for (int field = 0; field < 3; ++field) {
    while (*s == ' ') ++s;
    while (*s != ' ' && *s != '\0') ++s;
  }
  while (*s == ' ') ++s;
  std::size_t n = 0;
  while (s[n] != '\0' && n + 1 < sizeof m.path) {
    m.path[n] = s[n];
    ++n;
  }
  m.path[n] = '\0';
  m.rss = 0;
  return true;
}

}  // namespace

bool for_each_mapping(void (*visit)(void* context, const Mapping& m), void* context) {
  KeepErrno keep;
  long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/smaps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  char line[512];
  std::size_t line_len = 0;
  Mapping current;
  bool have = false;
  auto end_line = [&]() {
    line[line_len] = '\0';
    Mapping next;
    if (parse_header(line, next)) {
      if (have) visit(context, current);
      current = next;
      have = true;
    } else if (have && std::strncmp(line, "Rss:", 4) == 0) {
      const char* s = line + 4;
      while (*s == ' ') ++s;
      std::size_t kb = 0;
      while (*s >= '0' && *s <= '9') kb = kb * 10 + static_cast<std::size_t>(*s++ - '0');
      current.rss = kb * 1024;
    }
    line_len = 0;
  };
  for (;;) {
    long n = syscall(SYS_read, fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (long i = 0; i < n; ++i) {
      char c = buf[i];
      if (c == '\n') {
        end_line();
      } else if (line_len + 1 < sizeof line) {
        line[line_len++] = c;  // the rest of a longer line (a long path) is dropped
      }
    }
  }
  if (line_len > 0) end_line();
  if (have) visit(context, current);
  syscall(SYS_close, fd);
  return true;
}

std::size_t resident_in(std::uintptr_t start, std::size_t size) {
  KeepErrno keep;
  constexpr std::size_t kStepPages = 1024;  // a granule (4 MiB) per call
  unsigned char vec[kStepPages];
  std::size_t resident = 0;
  for (std::size_t done = 0; done < size;) {
    std::size_t pages = (size - done) / kPageSize;
    if (pages > kStepPages) pages = kStepPages;
    if (pages == 0) break;
    if (mincore(reinterpret_cast<void*>(start + done), pages * kPageSize, vec) == 0) {
      for (std::size_t i = 0; i < pages; ++i) resident += (vec[i] & 1) * kPageSize;
    }
    done += pages * kPageSize;
  }
  return resident;
}

}  // namespace mallard::os
