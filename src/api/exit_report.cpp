// exit_report.cpp: the exit report of `mallard run --report` (options report=text|json,
// report_fd, report_pid; environment variable MALLARD_REPORT_DIR): which process writes it and
// where. With MALLARD_REPORT_DIR (set by `mallard run`), the report is a file DIR/PROG.PID.json
// (or .txt), written under a hidden temporary name in DIR and renamed, so that nothing the program
// does to its descriptors can lose it and a reader never sees half of it; otherwise it goes to
// report_fd. Every reporting process also keeps a record DIR/PROG.PID.proc (key=value lines: pid,
// ppid, program, state started|exited, at exit its figures, last its command line), written when
// it starts (or is forked) and again at exit, so that `mallard run --children` can list the
// processes that ended without a report. Must never allocate, raise SIGPIPE or block in a
// cancellation point.
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "api/exit_report.hpp"

#include "api/init.hpp"
#include "config/options.hpp"
#include "mallard/mallard.h"
#include "os/os.hpp"
#include "os/text_writer.hpp"

namespace mallard::api {
namespace {

// The program's name as it goes into file names and records: at most kNameMax bytes (a name of
// 250 bytes would make the file name longer than NAME_MAX), control characters as '_'.
constexpr std::size_t kNameMax = 64;
void write_safe_name(os::TextWriter& w) {
  const char* name = os::program_name();
  for (std::size_t i = 0; name[i] != '\0' && i < kNameMax; ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    w.ch(c < 0x20 || c == 0x7f ? '_' : static_cast<char>(c));
  }
}

// The pid of the process that forks, kept by fork's prepare handler for the child's record
// (getppid() in the child may already name init or mallard, if the parent has ended). Every
// thread of one process writes the same value.
std::atomic<pid_t> g_pid_before_fork{0};
// This process's parent as its records name it: set when it starts (or is forked).
pid_t g_record_ppid = 0;

// Whether the options ask this process for a report: report=text|json, report_pid this process
// or 0 (to report_fd even in secure execution, where only a call of the program itself can set
// them).
bool asked_for_report() {
  long kind = config::options().report;
  long only_pid = config::options().report_pid;
  return (kind == 1 || kind == 2) && (only_pid == 0 || only_pid == static_cast<long>(getpid()));
}

// MALLARD_REPORT_DIR if this process reports into it (report set, report_pid this process or 0,
// not a setuid program: config::load_options_from_environment ignores the environment too).
const char* report_dir() {
  if (!reports_here()) return nullptr;
  const char* dir = os::get_env("MALLARD_REPORT_DIR");
  return dir != nullptr && *dir != '\0' ? dir : nullptr;
}

void write_report(int fd, long kind) {
  if (kind == 1) mallard_print_report(fd);
  if (kind == 2) mallard_print_stats_json(fd);
}

// When this process (or program, after an exec) started: CLOCK_MONOTONIC nanoseconds, which
// order the records of one pid (the programs it went through by exec) and tell them apart.
std::uint64_t g_start_ns = 0;

// Paths of report files: small, because the exit report may run on a thread with a 16 KiB
// stack; a MALLARD_REPORT_DIR longer than kPathMax - 160 bytes is not used (report_fd is).
constexpr std::size_t kPathMax = 1024;

// Formats DIR/PREFIX PROG.PID SUFFIX into out (NUL-terminated); false if it does not fit.
[[gnu::cold]] bool report_path(char (&out)[kPathMax], const char* dir, const char* prefix,
                               const char* suffix) {
  if (std::strlen(dir) + std::strlen(prefix) + kNameMax + 24 + std::strlen(suffix) >= kPathMax)
    return false;
  os::TextWriter w(-1);
  w.str(dir).ch('/').str(prefix);
  write_safe_name(w);
  w.ch('.').u(static_cast<std::uint64_t>(getpid())).str(suffix);
  std::memcpy(out, w.data(), w.size());
  out[w.size()] = '\0';
  return true;
}

// Writes DIR/PROG.PID<suffix> through DIR/.PROG.PID<suffix>.tmp with write(fd); false if the
// file could not be written.
template <typename Write>
bool write_atomically(const char* dir, const char* suffix, Write write) {
  char path[kPathMax], tmp[kPathMax];
  char tmp_suffix[48];
  std::size_t n = std::strlen(suffix);
  if (n + 5 > sizeof tmp_suffix) return false;
  std::memcpy(tmp_suffix, suffix, n);
  std::memcpy(tmp_suffix + n, ".tmp", 5);
  if (!report_path(path, dir, "", suffix) || !report_path(tmp, dir, ".", tmp_suffix)) return false;
  int fd = os::create_new_file(tmp);
  if (fd < 0) {
    os::remove_file(tmp);  // left by an earlier process with this pid
    fd = os::create_new_file(tmp);
    if (fd < 0) return false;
  }
  write(fd);
  os::close_fd(fd);
  if (os::rename_file(tmp, path)) return true;
  os::remove_file(tmp);
  return false;
}

// The process record DIR/PROG.PID.START.proc (START: g_start_ns, so that the programs one pid
// goes through by exec, even of the same name, have one record each); at exit with the figures
// and the report's file name.
[[gnu::cold]] void write_process_record(const char* dir, bool at_exit, long kind) {
  char suffix[40];
  {
    os::TextWriter name(-1);
    name.ch('.').u(g_start_ns).str(".proc");
    std::memcpy(suffix, name.data(), name.size());
    suffix[name.size()] = '\0';
  }
  write_atomically(dir, suffix, [&](int fd) {
    os::TextWriter w(fd);
    w.str("pid=").u(static_cast<std::uint64_t>(getpid())).ch('\n');
    pid_t parent = g_record_ppid != 0 ? g_record_ppid : getppid();
    w.str("ppid=").u(static_cast<std::uint64_t>(parent)).ch('\n');
    // The run of `mallard run` this process belongs to (MALLARD_REPORT_RUN): a directory kept and
    // shared by several runs holds the records of all of them.
    w.str("run=");
    const char* run = os::get_env("MALLARD_REPORT_RUN");
    for (int i = 0; run != nullptr && run[i] != '\0' && i < 32; ++i)
      if ((run[i] >= '0' && run[i] <= '9') || (run[i] >= 'a' && run[i] <= 'z')) w.ch(run[i]);
    w.ch('\n');
    w.str("program=");
    write_safe_name(w);
    w.ch('\n');
    w.str("state=").str(at_exit ? "exited" : "started").ch('\n');
    w.str("start_ns=").u(g_start_ns).ch('\n');
    if (at_exit) {
      static mallard_stats s;  // 2 KiB, off the stack of the thread that exits (written once)
      mallard_get_stats(&s);
      w.str("peak_resident=").u(s.peak_resident).ch('\n');
      w.str("resident=").u(s.bytes_resident).ch('\n');
      w.str("bytes_in_use=").u(s.bytes_in_use).ch('\n');
      w.str("bytes_mapped=").u(s.bytes_mapped).ch('\n');
      w.str("report=");
      write_safe_name(w);
      w.ch('.').u(static_cast<std::uint64_t>(getpid()));
      w.str(kind == 2 ? ".json" : ".txt").ch('\n');
    }
    // The command line, its arguments separated by spaces (last: it may be long, and is cut).
    char cmdline[1024];
    os::read_cmdline(cmdline, sizeof cmdline);
    w.str("cmdline=");
    for (const char* c = cmdline; *c != '\0'; ++c) w.ch(*c == '\n' ? ' ' : *c);
    w.ch('\n');
  });
}

}  // namespace

void note_fork_parent() {
  g_pid_before_fork.store(getpid(), std::memory_order_relaxed);
}

bool reports_here() {
  return asked_for_report() && !config::secure_execution();
}

void record_process_start(bool forked) {
  if (g_init_state.load(std::memory_order_acquire) != 2) return;
  g_start_ns = os::now_ns();
  g_record_ppid = forked ? g_pid_before_fork.load(std::memory_order_relaxed) : getppid();
  if (const char* dir = report_dir()) write_process_record(dir, false, config::options().report);
}

void report_at_exit() {
  if (g_init_state.load(std::memory_order_acquire) != 2 || !asked_for_report()) return;
  long kind = config::options().report;
  if (const char* dir = report_dir()) {
    bool written = write_atomically(dir, kind == 2 ? ".json" : ".txt",
                                    [&](int fd) { write_report(fd, kind); });
    if (written) {
      write_process_record(dir, true, kind);
      return;
    }
  }
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
