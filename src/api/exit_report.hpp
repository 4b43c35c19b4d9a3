// exit_report.hpp: the exit report of `mallard run --report` (api/exit_report.cpp).
#pragma once

namespace mallard::api {

// Writes the exit report if this process asked for one (option report, report_pid): to a file in
// MALLARD_REPORT_DIR if that is set and writable, else to report_fd. Never allocates; keeps the
// program's exit status (no SIGPIPE). Called from a destructor (api/glibc_ext.cpp).
void report_at_exit();
// If this process reports into MALLARD_REPORT_DIR: records that it started
// (DIR/PROG.PID.START.proc).
// Called once initialised and in the child of a fork (forked: a new process of the same
// program, whose parent is the process that forked).
void record_process_start(bool forked);
// Whether this process writes a report at exit (option report, report_pid this process or 0, not
// a setuid program): only such a process watches its peak (stats/peak.hpp).
bool reports_here();
// In fork()'s prepare handler: the pid the child's record names as its parent.
void note_fork_parent();

}  // namespace mallard::api
