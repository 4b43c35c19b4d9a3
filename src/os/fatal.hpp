// fatal.hpp: the one-line report of a misuse of the heap, then abort(): the allocator never
// continues on a heap it cannot trust. Writes with write(2) only.
#pragma once

namespace mallard::os {

// Prints "mallard: <problem> in <call>(<pointer>)" to stderr and aborts.
[[noreturn, gnu::cold, gnu::noinline]] void report_bad_pointer(const char* problem,
                                                               const char* call,
                                                               const void* pointer);

}  // namespace mallard::os
