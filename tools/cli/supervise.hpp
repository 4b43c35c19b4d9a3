// supervise.hpp: `mallard run --report`: runs the program as a child, waits for it, then delivers
// the report the library wrote into a report directory (so that nothing the program does to its
// descriptors can lose it), and ends as the program ended (its exit status, or its signal).
#pragma once

#include <string>

namespace mallard::cli {

struct ReportPlan {
  std::string dir;  // keep the reports here (--report-dir); empty: a private temporary directory
  int fd = 2;       // the tool's descriptor the report (or where it was kept) is written to
  std::string without_mallard;  // why the loader will not preload Mallard into the program, if so
  bool children = false;        // every process of the tree reports (--children)
};

// Runs argv[0] (looked up in $PATH) with argv, the environment already prepared (LD_PRELOAD,
// MALLARD_OPTIONS without report_pid, which the child adds for itself). Returns the exit status
// the tool should end with; if the program died of a signal, the tool raises that signal itself
// first. Usage errors about the directory are said on stderr and give 2.
int run_and_report(char** argv, const ReportPlan& plan);

}  // namespace mallard::cli
