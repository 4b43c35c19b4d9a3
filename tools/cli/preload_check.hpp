// preload_check.hpp: can the dynamic loader preload a library into a program? (`mallard run`
// warns when it cannot instead of running the program silently without Mallard.)
#pragma once

#include <string>

namespace mallard::cli {

// The file execvp(3) would run for `name`: `name` itself when it holds a '/', else the first
// executable regular file of that name in $PATH (default "/bin:/usr/bin"); "" when none.
std::string resolve_program(const std::string& name);

// Why LD_PRELOAD cannot reach the program at `path` (an executable file), as one phrase for a
// warning, or "" when nothing prevents it or the file is not understood:
// - an ELF without PT_INTERP (static or static-pie): no dynamic loader runs in it;
// - a setuid or setgid file the caller does not own (secure-execution mode: the loader ignores
//   LD_PRELOAD entries with a '/').
// A "#!" script is judged by its interpreter.
std::string preload_obstacle(const std::string& path);

}  // namespace mallard::cli
