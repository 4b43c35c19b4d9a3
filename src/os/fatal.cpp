// fatal.cpp: report_bad_pointer.
#include "os/fatal.hpp"

#include <stdlib.h>

#include <cstdint>

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

}  // namespace mallard::os
