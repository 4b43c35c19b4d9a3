// mallard.cpp: the `mallard` command. `mallard run [--report[=json]] [--options K=V,...] --
// PROGRAM ARGS...` runs any program with libmallard.so preloaded (and prints the heap report at
// its exit); `mallard options` lists every option with its default and meaning. An ordinary
// program: it finds the library next to itself (or in ../lib) and execs the target.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "config/options.hpp"
#include "mallard/mallard.h"
#include "os/text_writer.hpp"

// The library directory relative to the tool's in an installed prefix (GNUInstallDirs' bindir and
// libdir: ../lib, or ../lib/x86_64-linux-gnu under /usr on Debian).
#ifndef MALLARD_INSTALL_LIBDIR_FROM_BIN
#define MALLARD_INSTALL_LIBDIR_FROM_BIN "../lib"
#endif

namespace {

int usage() {
  fprintf(stderr,
          "usage: mallard run [--report[=text|json]] [--report-fd N] [--options K=V,...] -- "
          "PROGRAM [ARGS...]\n"
          "       mallard options [--markdown|--man]   list the MALLARD_OPTIONS keys\n"
          "       mallard lib          print the path of libmallard.so\n"
          "       mallard --version    print the version\n");
  return 2;
}

std::string find_library() {
  if (const char* env = getenv("MALLARD_LIB")) return env;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "libmallard.so";
  self[n] = '\0';
  std::string dir(self);
  dir.erase(dir.rfind('/'));
  // The build tree (next to the tool), then the installed prefix (the runtime name first: a
  // package without the development files has no libmallard.so).
  for (const char* rel : {"/libmallard.so", "/" MALLARD_INSTALL_LIBDIR_FROM_BIN "/libmallard.so.0",
                          "/" MALLARD_INSTALL_LIBDIR_FROM_BIN "/libmallard.so"}) {
    std::string candidate = dir + rel;
    if (access(candidate.c_str(), R_OK) == 0) {
      char real[PATH_MAX];
      return realpath(candidate.c_str(), real) ? std::string(real) : candidate;
    }
  }
  return "libmallard.so";
}

// `mallard options` (text), `mallard options --markdown` (docs/options.md) or `mallard options
// --man` (the OPTIONS section of mallard(3), generated at build time): the library's own generator
// (config::write_option_docs), so tests/unit/options_test.cpp can compare the doc.
void stdout_sink(void*, const char* data, std::size_t len) {
  fwrite(data, 1, len, stdout);
}

int list_options(int argc, char** argv) {
  using mallard::config::DocFormat;
  DocFormat format = DocFormat::kText;
  if (argc > 0 && std::string(argv[0]) == "--markdown") {
    format = DocFormat::kMarkdown;
  } else if (argc > 0 && std::string(argv[0]) == "--man") {
    format = DocFormat::kMan;
  } else if (argc > 0) {
    return usage();
  }
  mallard::os::TextWriter w(stdout_sink, nullptr);
  mallard::config::write_option_docs(w, format);
  return 0;
}

int run(int argc, char** argv) {
  std::string options;
  int i = 0;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    } else if (a == "--report" || a == "--report=text") {
      options += ",report=text";
    } else if (a == "--report=json") {
      options += ",report=json";
    } else if (a == "--report-fd" && i + 1 < argc) {
      options += std::string(",report_fd=") + argv[++i];
    } else if (a == "--options" && i + 1 < argc) {
      options += std::string(",") + argv[++i];
    } else if (a[0] == '-') {
      return usage();
    } else {
      break;  // the program, without "--"
    }
  }
  if (i >= argc) return usage();
  std::string lib = find_library();
  std::string preload = lib;
  if (const char* old = getenv("LD_PRELOAD"); old != nullptr && *old != '\0')
    preload += std::string(":") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  if (options.find("report=") != std::string::npos) {
    options += ",report_pid=" + std::to_string(getpid());  // exec keeps the pid
  }
  if (!options.empty()) {
    std::string all = options.substr(1);
    if (const char* old = getenv("MALLARD_OPTIONS"); old != nullptr && *old != '\0')
      all = std::string(old) + "," + all;
    setenv("MALLARD_OPTIONS", all.c_str(), 1);
  }
  execvp(argv[i], argv + i);
  fprintf(stderr, "mallard: cannot run %s: %s\n", argv[i], strerror(errno));
  return 127;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  if (cmd == "run") return run(argc - 2, argv + 2);
  if (cmd == "options") return list_options(argc - 2, argv + 2);
  if (cmd == "--version" || cmd == "version") {
    printf("mallard %s\n", MALLARD_VERSION_STRING);
    return 0;
  }
  if (cmd == "lib") {
    printf("%s\n", find_library().c_str());
    return 0;
  }
  return usage();
}
