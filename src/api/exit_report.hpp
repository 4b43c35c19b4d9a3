// exit_report.hpp: the exit report of `mallard run --report` (api/exit_report.cpp).
#pragma once

namespace mallard::api {

// Writes the exit report if this process asked for one (option report, report_pid): to a file in
// MALLARD_REPORT_DIR if that is set and writable, else to report_fd. Never allocates; keeps the
// program's exit status (no SIGPIPE). Called from a destructor (api/glibc_ext.cpp).
void report_at_exit();

}  // namespace mallard::api
