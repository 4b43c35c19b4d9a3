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

namespace {

int usage() {
  fprintf(stderr,
          "usage: mallard run [--report[=text|json]] [--report-fd N] [--options K=V,...] -- "
          "PROGRAM [ARGS...]\n"
          "       mallard options      list the MALLARD_OPTIONS keys\n"
          "       mallard lib          print the path of libmallard.so\n");
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
  for (const char* rel : {"/libmallard.so", "/../lib/libmallard.so"}) {
    std::string candidate = dir + rel;
    if (access(candidate.c_str(), R_OK) == 0) {
      char real[PATH_MAX];
      return realpath(candidate.c_str(), real) ? std::string(real) : candidate;
    }
  }
  return "libmallard.so";
}

int list_options() {
  std::size_t count = 0;
  const mallard::config::OptionInfo* table = mallard::config::option_table(&count);
  for (std::size_t i = 0; i < count; ++i) {
    const auto& o = table[i];
    if (o.kind == mallard::config::OptionKind::kEnum) {
      std::string names = o.enum_names;
      std::string def = names.substr(0, names.find('|'));
      for (long k = 0; k < o.default_value; ++k) {
        names.erase(0, names.find('|') + 1);
        def = names.substr(0, names.find('|'));
      }
      printf("%-18s default %-10s (%s)\n    %s\n", o.name, def.c_str(), o.enum_names, o.doc);
    } else {
      printf("%-18s default %-10ld\n    %s\n", o.name, o.default_value, o.doc);
    }
  }
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
  if (cmd == "options") return list_options();
  if (cmd == "lib") {
    printf("%s\n", find_library().c_str());
    return 0;
  }
  return usage();
}
