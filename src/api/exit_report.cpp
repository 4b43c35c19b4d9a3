// exit_report.cpp: the exit report of `mallard run --report` (options report=text|json,
// report_fd, report_pid; environment variable MALLARD_REPORT_DIR): which process writes it and
// where. With MALLARD_REPORT_DIR (set by `mallard run`), the report is a file DIR/PROG.PID.json
// (or .txt), written under a hidden temporary name in DIR and renamed, so that nothing the program
// does to its descriptors can lose it and a reader never sees half of it; otherwise it goes to
// report_fd. Must never allocate, raise SIGPIPE or block in a cancellation point.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "api/exit_report.hpp"

#include "api/init.hpp"
#include "config/options.hpp"
#include "mallard/mallard.h"
#include "os/os.hpp"
#include "os/text_writer.hpp"

extern "C" char* program_invocation_short_name;  // glibc's, from argv[0]

namespace mallard::api {
namespace {

const char* program_name() {
  const char* name = program_invocation_short_name;
  return name != nullptr && *name != '\0' && std::strchr(name, '/') == nullptr ? name : "program";
}

void write_report(int fd, long kind) {
  if (kind == 1) mallard_print_report(fd);
  if (kind == 2) mallard_print_stats_json(fd);
}

// Formats DIR/PREFIX PROG.PID SUFFIX into out (NUL-terminated); false if it does not fit.
bool report_path(char (&out)[PATH_MAX], const char* dir, const char* prefix, const char* suffix) {
  // The writer's buffer (2 KiB) truncates: a longer path is refused before.
  if (std::strlen(dir) + std::strlen(program_name()) + 64 >= 2048) return false;
  os::TextWriter w(-1);
  w.str(dir).ch('/').str(prefix).str(program_name()).ch('.');
  w.u(static_cast<std::uint64_t>(getpid())).str(suffix);
  std::memcpy(out, w.data(), w.size());
  out[w.size()] = '\0';
  return true;
}

// DIR/PROG.PID.EXT through DIR/.PROG.PID.tmp; false if the file could not be written.
bool write_report_file(const char* dir, long kind) {
  char path[PATH_MAX], tmp[PATH_MAX];
  if (!report_path(path, dir, "", kind == 2 ? ".json" : ".txt") ||
      !report_path(tmp, dir, ".", ".tmp"))
    return false;
  int fd = os::create_new_file(tmp);
  if (fd < 0) {
    os::remove_file(tmp);  // left by an earlier process with this pid
    fd = os::create_new_file(tmp);
    if (fd < 0) return false;
  }
  write_report(fd, kind);
  os::close_fd(fd);
  if (os::rename_file(tmp, path)) return true;
  os::remove_file(tmp);
  return false;
}

}  // namespace

void report_at_exit() {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  long only_pid = config::options().report_pid;
  if (only_pid != 0 && only_pid != static_cast<long>(getpid())) return;
  long kind = config::options().report;
  if (kind != 1 && kind != 2) return;
  // A setuid program ignores the environment (config::load_options_from_environment does too).
  const char* dir = config::secure_execution() ? nullptr : os::get_env("MALLARD_REPORT_DIR");
  if (dir != nullptr && *dir != '\0' && write_report_file(dir, kind)) return;
  // To a descriptor, the report must not change how the program ends: written to a pipe whose
  // reader is gone (`mallard run --report -- prog 2>&1 | head -1`), it would raise SIGPIPE and turn
  // the exit status into 141. SIGPIPE is blocked while writing and a SIGPIPE the write raised
  // discarded.
  sigset_t pipe_set, old_mask, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  write_report(static_cast<int>(config::options().report_fd), kind);
  sigpending(&pending);
  if (!was_pending && sigismember(&pending, SIGPIPE) == 1) {
    timespec zero{0, 0};
    // The raw system call: glibc's sigtimedwait is a cancellation point.
    while (syscall(SYS_rt_sigtimedwait, &pipe_set, nullptr, &zero, _NSIG / 8) < 0 &&
           errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
}

}  // namespace mallard::api
