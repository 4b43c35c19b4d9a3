// fatal.hpp: the one-line report of a misuse of the heap, then abort(): the allocator never
// continues on a heap it cannot trust. Writes with write(2) only.
#pragma once

namespace mallard::os {

// Prints "mallard: <problem> in <call>(<pointer>)" to stderr and aborts.
[[noreturn, gnu::cold, gnu::noinline]] void report_bad_pointer(const char* problem,
                                                               const char* call,
                                                               const void* pointer);

// Whether the kernel page holding p is mapped now (by anyone, with any protection), asked with
// mincore. For the reports only: memory Mallard gave back and found mapped again is someone
// else's, so a pointer into it is not called a double free.
[[gnu::cold]] bool address_mapped(const void* p);

}  // namespace mallard::os
