// fatal.cpp: report_bad_pointer, and the mapping probe the reports use.
#include "os/fatal.hpp"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <cstdint>

#include "os/keep_errno.hpp"
#include "os/os.hpp"
#include "os/text_writer.hpp"

namespace mallard::os {

void report_bad_pointer(const char* problem, const char* call, const void* pointer) {
  {
    TextWriter w(2);
    w.str("mallard: ").str(problem).str(" in ").str(call).ch('(');
    w.hex(reinterpret_cast<std::uintptr_t>(pointer)).str(")\n");
  }
  abort();
}

bool address_mapped(const void* p) {
  KeepErrno keep;
  unsigned char resident;
  auto page = reinterpret_cast<void*>(page_floor(reinterpret_cast<std::uintptr_t>(p)));
  // ENOMEM: the page is not mapped. Any other answer (mapped, or an error that tells nothing)
  // counts as mapped: the caller then claims less.
  return mincore(page, 1, &resident) == 0 || errno != ENOMEM;
}

}  // namespace mallard::os
