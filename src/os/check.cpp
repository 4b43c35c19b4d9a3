// check.cpp: the report of a failed internal check (check.hpp). Writes with the raw write
// system call only; never allocates.
#include "os/check.hpp"

#include <stdlib.h>

#include "os/text_writer.hpp"

namespace mallard::os {

void check_failed(const char* condition, const char* file, int line) {
  TextWriter(2)
      .str("mallard: internal check failed: ")
      .str(condition)
      .str(" (")
      .str(file)
      .str(":")
      .u(static_cast<std::uint64_t>(line))
      .str(")\n");
  abort();
}

}  // namespace mallard::os
