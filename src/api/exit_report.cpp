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

extern "C" char* program_invocation_short_name;  // glibc's, from argv[0]

namespace mallard::api {
namespace {

// Appends s to buf (capacity cap, NUL-terminated); false if it does not fit.
bool append(char* buf, std::size_t cap, std::size_t& len, const char* s) {
  std::size_t n = std::strlen(s);
  if (len + n + 1 > cap) return false;
  std::memcpy(buf + len, s, n + 1);
  len += n;
  return true;
}

bool append_number(char* buf, std::size_t cap, std::size_t& len, std::uint64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  char text[24];
  for (int i = 0; i < n; ++i) text[i] = digits[n - 1 - i];
  text[n] = '\0';
  return append(buf, cap, len, text);
}

const char* program_name() {
  const char* name = program_invocation_short_name;
  return name != nullptr && *name != '\0' && std::strchr(name, '/') == nullptr ? name : "program";
}

void write_report(int fd, long kind) {
  if (kind == 1) mallard_print_report(fd);
  if (kind == 2) mallard_print_stats_json(fd);
}

// DIR/PROG.PID.EXT through DIR/.PROG.PID.tmp; false if the file could not be written.
bool write_report_file(const char* dir, long kind) {
  char path[PATH_MAX], tmp[PATH_MAX];
  std::size_t plen = 0, tlen = 0;
  auto pid = static_cast<std::uint64_t>(getpid());
  bool ok = append(path, sizeof path, plen, dir) && append(path, sizeof path, plen, "/") &&
            append(tmp, sizeof tmp, tlen, path) && append(tmp, sizeof tmp, tlen, ".") &&
            append(path, sizeof path, plen, program_name()) &&
            append(tmp, sizeof tmp, tlen, program_name()) && append(path, sizeof path, plen, ".") &&
            append(tmp, sizeof tmp, tlen, ".") && append_number(path, sizeof path, plen, pid) &&
            append_number(tmp, sizeof tmp, tlen, pid) &&
            append(path, sizeof path, plen, kind == 2 ? ".json" : ".txt") &&
            append(tmp, sizeof tmp, tlen, ".tmp");
  if (!ok) return false;
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
