// visibility.hpp: MALLARD_HIDDEN, for declarations of the library's own global variables.
// -fvisibility=hidden hides what the library defines, but a declaration (`extern T x;` in a
// header) still reads as "maybe in another module" to the compiler, which then loads the address
// from the GOT: one more instruction, and one more dependent load, for each global a fast path
// reads. Declared hidden, the global is reached relative to the instruction pointer. Only the
// API's exported functions have default visibility.
#pragma once

#define MALLARD_HIDDEN __attribute__((visibility("hidden")))
