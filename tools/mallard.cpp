// mallard.cpp: the `mallard` command. `mallard run [--report[=json]] [--report-dir DIR]
// [--options K=V,...] -- PROGRAM ARGS...` runs any program with libmallard.so preloaded (and, with
// a report, delivers the heap report the program's exit wrote: cli/supervise.cpp); `mallard
// options` lists every option with its default and meaning; `mallard help` explains each command.
// An ordinary program: it finds the library next to itself (the build tree), in its installed
// prefix or at $MALLARD_LIB, and refuses to run anything without it. Without a report it execs the
// target; with one it runs it as a child and ends as the child ended (its exit status, or its
// signal raised again).
// Exit status: the program's; 2 for a usage error; 125 when the library cannot be found; 126 or
// 127 when the program cannot be run (as a shell).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "cli/preload_check.hpp"
#include "cli/supervise.hpp"
#include "config/options.hpp"
#include "mallard/mallard.h"
#include "os/text_writer.hpp"

// The library directory relative to the tool's in an installed prefix (GNUInstallDirs' bindir and
// libdir: ../lib, or ../lib/x86_64-linux-gnu under /usr on Debian).
#ifndef MALLARD_INSTALL_LIBDIR_FROM_BIN
#define MALLARD_INSTALL_LIBDIR_FROM_BIN "../lib"
#endif

namespace {

constexpr int kUsageError = 2;
constexpr int kNoLibrary = 125;

const char kUsage[] =
    "usage: mallard run [--report[=text|json]] [--report-fd N] [--report-dir DIR] [--children]\n"
    "                   [--options K=V,...] -- PROGRAM [ARGS...]\n"
    "       mallard options [--markdown|--man]\n"
    "       mallard lib\n"
    "       mallard help [COMMAND]\n"
    "       mallard --version\n";

const char kHelp[] =
    "Mallard: a malloc replacement; `mallard` runs programs with it.\n\n"
    "commands:\n"
    "  run [OPTIONS] -- PROGRAM [ARGS...]   run PROGRAM with libmallard.so preloaded\n"
    "  options [--markdown|--man]           list every MALLARD_OPTIONS key\n"
    "  lib                                  print the path of the library `run` preloads\n"
    "  help [COMMAND]                       this help, or a command's\n"
    "  --version                            print the version\n\n"
    "The library is found next to the tool (build tree), in its installed prefix\n"
    "(" MALLARD_INSTALL_LIBDIR_FROM_BIN
    "/libmallard.so.0 from the tool's directory), or at $MALLARD_LIB.\n"
    "See `mallard help run`, mallard(1), docs/options.md.\n";

const char kHelpRun[] =
    "usage: mallard run [OPTIONS] [--] PROGRAM [ARGS...]\n\n"
    "Run PROGRAM (looked up in $PATH) with libmallard.so preloaded (LD_PRELOAD, before any\n"
    "LD_PRELOAD already set). PROGRAM's exit status and signals are mallard's.\n\n"
    "options:\n"
    "  --report[=text|json]   print the heap report when PROGRAM exits (text by default). The\n"
    "                         library writes it to a file (MALLARD_REPORT_DIR) that mallard\n"
    "                         prints after PROGRAM ended, so it arrives even if PROGRAM closed\n"
    "                         its stderr; a PROGRAM that ended without one (_exit, a signal) is\n"
    "                         said so, with how it ended\n"
    "  --report-fd N          print the report on mallard's descriptor N (default 2, stderr)\n"
    "  --report-dir DIR       keep the report as DIR/PROGRAM.PID.json (or .txt with\n"
    "                         --report=text) and print only where it is; DIR is created if\n"
    "                         missing. Implies --report=json\n"
    "  --children             every process PROGRAM starts reports too (exec, fork): mallard\n"
    "                         waits for all of them, prints one line per process (pid, parent,\n"
    "                         program, peak RSS, bytes in use at exit, command line or how it\n"
    "                         ended without a report), then the full report of the one with the\n"
    "                         largest peak RSS. Implies --report\n"
    "  --options K=V,...      more MALLARD_OPTIONS (see `mallard options`)\n"
    "  -h, --help             this help\n\n"
    "It refuses to run PROGRAM without Mallard: if the library cannot be found or read it exits\n"
    "125 (set MALLARD_LIB to its path). It warns when the loader cannot preload it into PROGRAM\n"
    "(a static binary; a setuid or setgid binary you do not own). Exit status: PROGRAM's; 2 for a\n"
    "usage error; 126 or 127 when PROGRAM cannot be run.\n";

const char kHelpOptions[] =
    "usage: mallard options [--markdown|--man]\n\n"
    "List every MALLARD_OPTIONS key with its default, range and meaning: as text, as the\n"
    "Markdown of docs/options.md, or as the OPTIONS section of mallard(3).\n";

const char kHelpLib[] =
    "usage: mallard lib\n\n"
    "Print the absolute path of the library `mallard run` preloads: $MALLARD_LIB, else\n"
    "libmallard.so next to the tool, else " MALLARD_INSTALL_LIBDIR_FROM_BIN
    "/libmallard.so.0 (or .so) from the tool's directory.\n"
    "Exits 125 when there is none.\n";

int usage_error(const std::string& message) {
  fprintf(stderr, "mallard: %s\n%s", message.c_str(), kUsage);
  return kUsageError;
}

// `mallard help [COMMAND]`, `mallard COMMAND --help`.
int help(const char* command) {
  const char* text = command == nullptr                  ? kHelp
                     : strcmp(command, "run") == 0       ? kHelpRun
                     : strcmp(command, "options") == 0   ? kHelpOptions
                     : strcmp(command, "lib") == 0       ? kHelpLib
                     : strcmp(command, "help") == 0      ? kHelp
                     : strcmp(command, "version") == 0   ? "usage: mallard --version\n"
                     : strcmp(command, "--version") == 0 ? "usage: mallard --version\n"
                                                         : nullptr;
  if (text == nullptr)
    return usage_error(std::string("help: unknown command '") + command +
                       "' (expected run, options, lib or help)");
  fputs(text, stdout);
  return 0;
}

// A readable regular file that starts as an ELF object does: the loader would skip anything else
// with a warning, and the program would run without Mallard.
bool readable(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return false;
  if (!S_ISREG(st.st_mode)) {
    errno = EISDIR;
    return false;
  }
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[4] = {};
  bool elf = fread(magic, 1, 4, f) == 4 && memcmp(magic, "\177ELF", 4) == 0;
  fclose(f);
  if (!elf) errno = ENOEXEC;
  return elf;
}

// An absolute path to `path` whose directory is resolved but whose file name is kept: the
// versioned link libmallard.so.0 stays that link, so that processes started later by a long-running
// program still find the library after an upgrade replaced the real file.
std::string absolute(const std::string& path) {
  std::string::size_type slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  char real[PATH_MAX];
  if (realpath(dir.c_str(), real) == nullptr) return path;
  std::string out(real);
  return out + (out.back() == '/' ? "" : "/") + name;
}

// LD_PRELOAD separates its entries with spaces and colons: a path holding one cannot be preloaded.
std::optional<std::string> preloadable(std::string path) {
  if (path.find_first_of(" :\t") == std::string::npos) return path;
  fprintf(stderr,
          "mallard: cannot preload %s: LD_PRELOAD splits paths at spaces and colons (install "
          "Mallard under a path without them, or set MALLARD_LIB to a link there)\n",
          path.c_str());
  return std::nullopt;
}

// The library to preload, as an absolute path (the loader searches a bare name, and ignores a
// relative one in secure mode); nullopt, after saying why on stderr, when there is none.
std::optional<std::string> find_library() {
  if (const char* env = getenv("MALLARD_LIB"); env != nullptr && *env != '\0') {
    if (!readable(env)) {
      fprintf(stderr, "mallard: MALLARD_LIB=%s: %s\n", env, strerror(errno));
      return std::nullopt;
    }
    return preloadable(absolute(env));
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "mallard: cannot find its own path (/proc/self/exe): %s; set MALLARD_LIB\n",
            strerror(errno));
    return std::nullopt;
  }
  self[n] = '\0';
  std::string dir(self);
  dir.erase(dir.rfind('/'));
  // The build tree (next to the tool), then the installed prefix (the runtime name first: a
  // package without the development files has no libmallard.so).
  for (const char* rel : {"/libmallard.so", "/" MALLARD_INSTALL_LIBDIR_FROM_BIN "/libmallard.so.0",
                          "/" MALLARD_INSTALL_LIBDIR_FROM_BIN "/libmallard.so"}) {
    std::string candidate = dir + rel;
    if (readable(candidate)) return preloadable(absolute(candidate));
  }
  fprintf(stderr,
          "mallard: cannot find libmallard.so: not in %s (build tree) nor in "
          "%s/" MALLARD_INSTALL_LIBDIR_FROM_BIN
          " (installed prefix); set MALLARD_LIB to its path\n",
          dir.c_str(), dir.c_str());
  return std::nullopt;
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
  if (argc > 1) return usage_error("options: expected at most one of --markdown, --man");
  if (argc == 1) {
    std::string a = argv[0];
    if (a == "--markdown") {
      format = DocFormat::kMarkdown;
    } else if (a == "--man") {
      format = DocFormat::kMan;
    } else if (a == "--help" || a == "-h") {
      return help("options");
    } else {
      return usage_error("options: unknown option '" + a + "' (expected --markdown or --man)");
    }
  }
  mallard::os::TextWriter w(stdout_sink, nullptr);
  mallard::config::write_option_docs(w, format);
  return 0;
}

bool is_fd_number(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int run(int argc, char** argv) {
  std::string options;
  mallard::cli::ReportPlan plan;
  int i = 0;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    // --name=value or --name value (the value never a following "--").
    auto value = [&](const std::string& name, std::string& out) {
      if (a.rfind(name + "=", 0) == 0) {
        out = a.substr(name.size() + 1);
        return true;
      }
      if (a != name) return false;
      if (i + 1 < argc && strcmp(argv[i + 1], "--") != 0) {
        out = argv[++i];
      } else {
        out.clear();
      }
      return true;
    };
    std::string v;
    if (a == "--") {
      ++i;
      break;
    } else if (a == "-h" || a == "--help") {
      return help("run");
    } else if (a == "--report") {
      options += ",report=text";
    } else if (a.rfind("--report=", 0) == 0) {
      v = a.substr(9);
      if (v != "text" && v != "json")
        return usage_error("run: --report: expected text or json, got '" + v + "'");
      options += ",report=" + v;
    } else if (value("--report-fd", v)) {
      if (!is_fd_number(v))
        return usage_error("run: --report-fd: expected a file descriptor number, got " +
                           (v.empty() ? std::string("nothing") : "'" + v + "'"));
      plan.fd = atoi(v.c_str());
    } else if (a == "--children") {
      plan.children = true;
    } else if (value("--report-dir", v)) {
      if (v.empty()) return usage_error("run: --report-dir: expected a directory, got nothing");
      plan.dir = v;
    } else if (value("--options", v)) {
      if (v.empty())
        return usage_error("run: --options: expected KEY=VALUE[,KEY=VALUE...], got nothing");
      options += "," + v;
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error(
          "run: unknown option '" + a +
          "' (expected --report[=text|json], --report-fd N, --report-dir DIR, --children, "
          "--options K=V,... or --help)");
    } else {
      break;  // the program, without "--"
    }
  }
  if (i >= argc) return usage_error("run: expected a PROGRAM to run");
  std::optional<std::string> lib = find_library();
  if (!lib) {
    fprintf(stderr, "mallard: not running %s without Mallard\n", argv[i]);
    return kNoLibrary;
  }
  std::string program = mallard::cli::resolve_program(argv[i]);
  if (!program.empty()) {
    if (std::string why = mallard::cli::preload_obstacle(program); !why.empty()) {
      fprintf(stderr, "mallard: warning: %s will run without Mallard: %s\n", program.c_str(),
              why.c_str());
      plan.without_mallard = why;
    }
  }
  std::string preload = *lib;
  if (const char* old = getenv("LD_PRELOAD"); old != nullptr && *old != '\0')
    preload += std::string(":") + old;
  setenv("LD_PRELOAD", preload.c_str(), 1);
  // --report-dir alone asks for the report too (JSON: files are for tools).
  if (!plan.dir.empty() && options.find("report=") == std::string::npos) options += ",report=json";
  if (plan.children && options.find("report=") == std::string::npos) options += ",report=text";
  bool report = options.find("report=") != std::string::npos;
  if (!options.empty()) {
    std::string all = options.substr(1);
    if (const char* old = getenv("MALLARD_OPTIONS"); old != nullptr && *old != '\0')
      all = std::string(old) + "," + all;
    setenv("MALLARD_OPTIONS", all.c_str(), 1);
  }
  if (report) {
    if (fcntl(plan.fd, F_GETFD) < 0)
      return usage_error("run: --report-fd " + std::to_string(plan.fd) +
                         ": not an open descriptor");
    return mallard::cli::run_and_report(argv + i, plan);
  }
  execvp(argv[i], argv + i);
  int err = errno;
  fprintf(stderr, "mallard: cannot run %s: %s\n", argv[i], strerror(err));
  return err == ENOENT ? 127 : 126;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("expected a command");
  std::string cmd = argv[1];
  if (cmd == "run") return run(argc - 2, argv + 2);
  if (cmd == "options") return list_options(argc - 2, argv + 2);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    if (argc > 3) return usage_error("help: expected at most one COMMAND");
    return help(argc == 3 ? argv[2] : nullptr);
  }
  if (cmd == "--version" || cmd == "version" || cmd == "lib") {
    if (argc > 2) {
      if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) return help(cmd.c_str());
      return usage_error(cmd + ": unexpected argument '" + argv[2] + "'");
    }
    if (cmd != "lib") {
      printf("mallard %s\n", MALLARD_VERSION_STRING);
      return 0;
    }
    std::optional<std::string> lib = find_library();
    if (!lib) return kNoLibrary;
    printf("%s\n", lib->c_str());
    return 0;
  }
  if (cmd[0] == '-')
    return usage_error("unknown option '" + cmd + "' (expected --help or --version)");
  return usage_error("unknown command '" + cmd +
                     "' (expected run, options, lib, help or --version)");
}
