// supervise.cpp: `mallard run --report`: fork, exec, wait, then the report. Owns the report
// directory (a private one under $TMPDIR unless --report-dir names one), signal forwarding while
// the program runs, and ending as the program ended. An ordinary program: it may allocate.
#include "cli/supervise.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

namespace mallard::cli {
namespace {

volatile sig_atomic_t g_child = 0;

// Signals sent to the tool by another process (kill, a service manager) go on to the program. Those
// the terminal sends (^C, ^\) reach the program itself, as a member of the foreground process
// group: they are not sent a second time. A signal sent by another process to the whole process
// group (kill -- -PGID) reaches the program twice (directly and from here): the sender cannot be
// told from one that signalled mallard alone (docs/observability.md).
void forward(int sig, siginfo_t* info, void*) {
  if (g_child > 0 && info != nullptr && info->si_code <= 0 && info->si_pid != g_child)
    kill(g_child, sig);
}

// While mallard waits for the descendants of a program that has ended (--children), the signals
// that would end it end the wait instead: what arrived is printed.
volatile sig_atomic_t g_stop_waiting = 0;
void stop_waiting(int) {
  g_stop_waiting = 1;
}

// Whether mallard runs in the foreground process group of its controlling terminal (job control:
// a shell waits for it and can continue it).
bool in_terminal_foreground() {
  for (int fd = 0; fd <= 2; ++fd)
    if (isatty(fd) && tcgetpgrp(fd) == getpgrp()) return true;
  return false;
}

constexpr int kForwarded[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGCONT};

void write_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    len -= static_cast<size_t>(n);
  }
}

void say(int fd, const std::string& text) {
  write_all(fd, text.data(), text.size());
}

bool copy_file_to(const std::string& path, int fd) {
  int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return false;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    write_all(fd, buf, static_cast<size_t>(n));
  }
  close(in);
  return true;
}

bool is_dash(const std::string& program) {
  std::string base =
      program.substr(program.rfind('/') == std::string::npos ? 0 : program.rfind('/') + 1);
  return base == "sh" || base == "dash";
}

std::string how_it_ended(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) +
           (name != nullptr ? std::string(" (SIG") + name + ")" : std::string()) +
           (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended with status " + std::to_string(status);
}

// Ends the tool as the program ended: its exit status, or the same signal (no second core dump).
int end_as(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (!WIFSIGNALED(status)) return 1;
  int sig = WTERMSIG(status);
  rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  raise(sig);
  return 128 + sig;  // a signal whose default is to continue or be ignored
}

void remove_tree(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
  rmdir(dir.c_str());
}

// A process record DIR/PROG.PID.proc (api/exit_report.cpp writes it: key=value lines).
struct ProcRecord {
  long pid = 0, ppid = 0;
  std::string program, state, report, cmdline, run;
  unsigned long long start_ns = 0, peak_resident = 0, bytes_in_use = 0;
};

// The records of this run's programs (run: MALLARD_REPORT_RUN): a kept directory may hold those of
// earlier runs, or of another run at the same time.
std::vector<ProcRecord> read_records(const std::string& dir, const std::string& run) {
  std::vector<ProcRecord> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 6 || name.compare(name.size() - 5, 5, ".proc") != 0) continue;
    FILE* f = fopen((dir + "/" + name).c_str(), "r");
    if (f == nullptr) continue;
    ProcRecord r;
    char line[4096];
    while (fgets(line, sizeof line, f) != nullptr) {
      std::string l = line;
      if (!l.empty() && l.back() == '\n') l.pop_back();
      std::string::size_type eq = l.find('=');
      if (eq == std::string::npos) continue;
      std::string key = l.substr(0, eq), value = l.substr(eq + 1);
      if (key == "pid") r.pid = atol(value.c_str());
      if (key == "ppid") r.ppid = atol(value.c_str());
      if (key == "program") r.program = value;
      if (key == "state") r.state = value;
      if (key == "report") r.report = value;
      if (key == "cmdline") r.cmdline = value;
      if (key == "run") r.run = value;
      if (key == "start_ns") r.start_ns = strtoull(value.c_str(), nullptr, 10);
      if (key == "peak_resident") r.peak_resident = strtoull(value.c_str(), nullptr, 10);
      if (key == "bytes_in_use") r.bytes_in_use = strtoull(value.c_str(), nullptr, 10);
    }
    fclose(f);
    if (r.pid > 0 && r.run == run) out.push_back(r);
  }
  closedir(d);
  // In the order the processes (and the programs of one process, exec by exec) started.
  std::sort(out.begin(), out.end(), [](const ProcRecord& a, const ProcRecord& b) {
    return a.start_ns != b.start_ns ? a.start_ns < b.start_ns : a.pid < b.pid;
  });
  return out;
}

// The report of process pid in this run: the file its last program's exit record names, or "".
std::string find_report(const std::string& dir, pid_t pid, const std::string& run) {
  const ProcRecord* last = nullptr;
  std::vector<ProcRecord> records = read_records(dir, run);
  for (const ProcRecord& r : records)
    if (r.pid == pid && r.state == "exited" && !r.report.empty()) last = &r;
  if (last == nullptr) return "";
  std::string path = dir + "/" + last->report;
  return access(path.c_str(), R_OK) == 0 ? path : "";
}

std::string human_bytes(unsigned long long v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = static_cast<double>(v);
  int u = 0;
  while (x >= 1024 && u < 4) {
    x /= 1024;
    ++u;
  }
  char buf[32];
  snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", x, units[u]);
  return buf;
}

std::string cut(const std::string& text, size_t most) {
  std::string t = text;
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t.size() <= most ? t : t.substr(0, most - 3) + "...";
}

// --children: one line per process of the tree, then the full report of the one whose peak RSS
// was largest (or, with --report-dir, where the reports are).
void deliver_children(const std::string& dir, bool keep, pid_t child, int status,
                      const std::string& program, const ReportPlan& plan, const std::string& run,
                      bool gave_up_waiting) {
  std::vector<ProcRecord> records = read_records(dir, run);
  if (gave_up_waiting)
    say(plan.fd,
        "mallard: stopped waiting for the descendants still running (a signal): their "
        "reports are missing\n");
  char line[512];
  say(plan.fd, "mallard: " + std::to_string(records.size()) + " program" +
                   (records.size() == 1 ? "" : "s") + " ran under Mallard (" + program + ", pid " +
                   std::to_string(child) + ", " + how_it_ended(status) + "):\n");
  snprintf(line, sizeof line, "  %7s %7s  %-16s %10s %14s  %s\n", "PID", "PPID", "PROGRAM",
           "PEAK RSS", "IN USE AT EXIT", "COMMAND LINE, OR HOW IT ENDED");
  say(plan.fd, line);
  const ProcRecord* largest = nullptr;
  bool child_seen = false;
  for (size_t i = 0; i < records.size(); ++i) {
    const ProcRecord& r = records[i];
    if (r.pid == child) child_seen = true;
    std::string peak = "-", in_use = "-", what;
    if (r.state == "exited") {
      peak = human_bytes(r.peak_resident);
      in_use = human_bytes(r.bytes_in_use);
      what = cut(r.cmdline, 60);
      if (largest == nullptr || r.peak_resident > largest->peak_resident) largest = &r;
    } else {
      const ProcRecord* next = nullptr;  // a later program of the same process: an exec
      for (size_t j = i + 1; j < records.size() && next == nullptr; ++j)
        if (records[j].pid == r.pid) next = &records[j];
      if (next != nullptr)
        what = "replaced itself by " + next->program + " (exec)";
      else if (r.pid == child)
        what = "ended without a report: it " + how_it_ended(status);
      else
        what =
            "ended without a report (_exit, a signal, or an exec of a program Mallard is "
            "not preloaded into)";
    }
    snprintf(line, sizeof line, "  %7ld %7ld  %-16s %10s %14s  ", r.pid, r.ppid,
             cut(r.program, 16).c_str(), peak.c_str(), in_use.c_str());
    say(plan.fd, line + what + "\n");
  }
  if (!child_seen) {
    say(plan.fd,
        "mallard: " + program + " (pid " + std::to_string(child) +
            ") ran without Mallard and ended without a report: it " + how_it_ended(status) +
            (plan.without_mallard.empty() ? "" : " (" + plan.without_mallard + ")") + "\n");
  }
  if (keep) {
    say(plan.fd, "mallard: reports kept in " + dir + "\n");
    return;
  }
  if (largest != nullptr) {
    say(plan.fd, "mallard: the report of " + largest->program + " (pid " +
                     std::to_string(largest->pid) + "), the largest peak RSS:\n");
    copy_file_to(dir + "/" + largest->report, plan.fd);
  }
}
}  // namespace

int run_and_report(char** argv, const ReportPlan& plan) {
  std::string dir = plan.dir;
  bool keep = !dir.empty();
  if (keep) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      fprintf(stderr, "mallard: --report-dir %s: %s\n", dir.c_str(), strerror(errno));
      return 2;
    }
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || access(dir.c_str(), W_OK) != 0) {
      fprintf(stderr, "mallard: --report-dir %s: not a writable directory\n", dir.c_str());
      return 2;
    }
    char real[PATH_MAX];
    if (realpath(dir.c_str(), real) != nullptr) dir = real;  // the program may chdir
  } else {
    const char* tmp = getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp == '/' ? tmp : "/tmp") + "/mallard-report.XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) {
      fprintf(stderr, "mallard: cannot create a report directory %s: %s\n", pattern.c_str(),
              strerror(errno));
      return 1;
    }
    dir = buf.data();
  }
  setenv("MALLARD_REPORT_DIR", dir.c_str(), 1);

  // Tells the tool whether exec failed (the pipe closes on a successful exec).
  struct sigaction sa {};
  sa.sa_sigaction = forward;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_actions[std::size(kForwarded)];
  for (size_t k = 0; k < std::size(kForwarded); ++k) {
    // A signal mallard was started with ignored (nohup, a background job) stays ignored, for the
    // program too (exec keeps ignored signals): not hooked.
    sigaction(kForwarded[k], nullptr, &old_actions[k]);
    if (old_actions[k].sa_handler != SIG_IGN) sigaction(kForwarded[k], &sa, nullptr);
  }
  // This run's token: the records of other runs in a kept directory are not this run's.
  char run[40];
  snprintf(
      run, sizeof run, "%lx%llx", static_cast<unsigned long>(getpid()),
      static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count()));
  setenv("MALLARD_REPORT_RUN", run, 1);
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    fprintf(stderr, "mallard: pipe: %s\n", strerror(errno));
    return 1;
  }
  if (plan.children) prctl(PR_SET_CHILD_SUBREAPER, 1);
  fflush(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "mallard: fork: %s\n", strerror(errno));
    if (!keep) remove_tree(dir);
    return 1;
  }
  if (pid == 0) {
    close(exec_pipe[0]);
    for (size_t k = 0; k < std::size(kForwarded); ++k)
      sigaction(kForwarded[k], &old_actions[k], nullptr);
    // Killed with mallard (kill -9 of mallard ends the program, as when mallard execs it).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);  // mallard ended before the line above
    // Only this process reports (not the programs it starts): exec keeps the pid.
    std::string options = getenv("MALLARD_OPTIONS") != nullptr ? getenv("MALLARD_OPTIONS") : "";
    if (!plan.children) {
      options +=
          (options.empty() ? "" : ",") + std::string("report_pid=") + std::to_string(getpid());
      setenv("MALLARD_OPTIONS", options.c_str(), 1);
    }
    execvp(argv[0], argv);
    int err = errno;
    write_all(exec_pipe[1], reinterpret_cast<const char*>(&err), sizeof err);
    _exit(err == ENOENT ? 127 : 126);
  }
  g_child = pid;
  close(exec_pipe[1]);
  int exec_error = 0;
  ssize_t got;
  do {
    got = read(exec_pipe[0], &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  close(exec_pipe[0]);
  int status = 0;
  for (;;) {
    if (waitpid(pid, &status, WUNTRACED) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (!WIFSTOPPED(status)) break;
    // The program stopped (^Z, SIGSTOP): in the foreground of a terminal, so does mallard, so
    // that the shell sees its job stop (fg continues both). Elsewhere (a script, a service, a
    // debugger's SIGSTOP) nobody would continue mallard: it goes on waiting.
    if (in_terminal_foreground()) {
      raise(SIGSTOP);
      kill(pid, SIGCONT);
    }
  }
  g_child = 0;
  // --children: the orphaned descendants are mallard's now (a subreaper): their reports are
  // complete once they have all ended. A signal that would end mallard ends the wait instead.
  bool gave_up_waiting = false;
  if (plan.children) {
    // SIGCHLD and the ending signals are blocked but around sigsuspend, so that a signal that
    // comes between a check and the wait is not lost; those mallard was started with ignored
    // stay ignored.
    struct sigaction stop {
    }, chld{};
    stop.sa_handler = stop_waiting;
    sigemptyset(&stop.sa_mask);
    chld.sa_handler = [](int) {};
    sigemptyset(&chld.sa_mask);
    sigset_t blocked, during_wait;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigaction(SIGCHLD, &chld, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
      struct sigaction old {};
      sigaction(sig, nullptr, &old);
      if (old.sa_handler == SIG_IGN) continue;
      sigaction(sig, &stop, nullptr);
      sigaddset(&blocked, sig);
    }
    sigprocmask(SIG_BLOCK, &blocked, &during_wait);
    for (;;) {
      int other;
      pid_t reaped;
      while ((reaped = waitpid(-1, &other, WNOHANG)) > 0) {
      }
      if (reaped < 0 && errno == ECHILD) break;  // every descendant has ended
      if (g_stop_waiting) break;
      sigsuspend(&during_wait);
    }
    sigprocmask(SIG_SETMASK, &during_wait, nullptr);
    gave_up_waiting = g_stop_waiting != 0;
  }
  for (size_t k = 0; k < std::size(kForwarded); ++k)
    sigaction(kForwarded[k], &old_actions[k], nullptr);
  if (got == static_cast<ssize_t>(sizeof exec_error)) {
    fprintf(stderr, "mallard: cannot run %s: %s\n", argv[0], strerror(exec_error));
    if (!keep) remove_tree(dir);
    return exec_error == ENOENT ? 127 : 126;
  }

  // The report goes to a descriptor whose reader may be gone: no SIGPIPE for the tool.
  struct sigaction ignore {
  }, old_pipe{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  std::string report = find_report(dir, pid, run);
  std::string program = argv[0];
  if (plan.children) {
    deliver_children(dir, keep, pid, status, program, plan, run, gave_up_waiting);
  } else if (report.empty()) {
    say(plan.fd,
        "mallard: " + program + " (pid " + std::to_string(pid) + ") ended without a report: it " +
            how_it_ended(status) +
            (!plan.without_mallard.empty()
                 ? " (it ran without Mallard: " + plan.without_mallard + ")"
             : WIFSIGNALED(status) ? ""
             : is_dash(program) ? " (dash, the sh of Debian and Ubuntu, ends with _exit: run the "
                                  "program itself, or use --children to see the programs it runs)"
                                : " (through _exit, or after an exec of a program Mallard is not "
                                  "preloaded into)") +
            "\n");
  } else if (keep) {
    say(plan.fd, "mallard: report of " + program + " (pid " + std::to_string(pid) + ") kept in " +
                     report + "\n");
  } else {
    copy_file_to(report, plan.fd);
  }
  if (!keep) remove_tree(dir);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  return end_as(status);
}

}  // namespace mallard::cli
