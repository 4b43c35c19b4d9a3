// preload_check.cpp: resolve a program like execvp(3) and read its ELF program headers.
#include "preload_check.hpp"

#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace mallard::cli {
namespace {

bool is_executable_file(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

bool read_at(int fd, void* buf, std::size_t len, off_t offset) {
  return pread(fd, buf, len, offset) == static_cast<ssize_t>(len);
}

// Whether the ELF file open at fd has a PT_INTERP program header; -1 if it is not a readable ELF.
template <typename Ehdr, typename Phdr>
int has_interp(int fd) {
  Ehdr eh;
  if (!read_at(fd, &eh, sizeof eh, 0) || eh.e_phentsize != sizeof(Phdr)) return -1;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    if (!read_at(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * sizeof ph))) return -1;
    if (ph.p_type == PT_INTERP) return 1;
  }
  return 0;
}

std::string setid_obstacle(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "";
  // After exec the effective id becomes the file's; the loader is in secure mode when it differs
  // from the real id.
  if ((st.st_mode & S_ISUID) && st.st_uid != getuid())
    return "it is setuid and you are not its owner (the loader ignores LD_PRELOAD then)";
  if ((st.st_mode & S_ISGID) && st.st_gid != getgid())
    return "it is setgid to a group that is not yours (the loader ignores LD_PRELOAD then)";
  return "";
}

std::string obstacle(const std::string& path, int depth) {
  if (std::string why = setid_obstacle(path); !why.empty()) return why;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  unsigned char ident[EI_NIDENT] = {};
  std::string why;
  if (read_at(fd, ident, 2, 0) && ident[0] == '#' && ident[1] == '!' && depth < 4) {
    char line[256] = {};
    ssize_t n = pread(fd, line, sizeof line - 1, 2);
    std::string interp(line, n > 0 ? static_cast<std::size_t>(n) : 0);
    std::size_t start = interp.find_first_not_of(" \t");
    if (start != std::string::npos) {
      interp = interp.substr(start, interp.find_first_of(" \t\n", start) - start);
      if (!interp.empty() && interp[0] == '/') {
        why = obstacle(interp, depth + 1);
        if (!why.empty()) why = "its interpreter " + interp + ": " + why;
      }
    }
  } else if (read_at(fd, ident, EI_NIDENT, 0) && std::memcmp(ident, ELFMAG, SELFMAG) == 0) {
    int interp = ident[EI_CLASS] == ELFCLASS64   ? has_interp<Elf64_Ehdr, Elf64_Phdr>(fd)
                 : ident[EI_CLASS] == ELFCLASS32 ? has_interp<Elf32_Ehdr, Elf32_Phdr>(fd)
                                                 : -1;
    if (interp == 0) why = "it is statically linked (link it with libmallard.a instead)";
  }
  close(fd);
  return why;
}

}  // namespace

std::string resolve_program(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return name;
  const char* env = getenv("PATH");
  std::string path = env != nullptr ? env : "/bin:/usr/bin";
  std::size_t begin = 0;
  while (true) {
    std::size_t end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? end : end - begin);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    if (end == std::string::npos) return "";
    begin = end + 1;
  }
}

std::string preload_obstacle(const std::string& path) {
  return obstacle(path, 0);
}

}  // namespace mallard::cli
