// bad_pointer_report.h: what the death tests of bad pointers expect. Mallard reports a bad
// pointer on one line, "mallard: <problem> in <call>(<pointer>)", then aborts; these build the
// regular expression of that whole stderr, and hide pointers from the compiler.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace test_reports {

// Values the compiler cannot see through (no folding of malloc(SIZE_MAX) == NULL, no
// -Wfree-nonheap-object on deliberately bad pointers).
template <class T>
T opaque(T v) {
  volatile T x = v;
  return x;
}
inline void* hide(void* p) {
  return opaque(p);
}

inline std::string hex(const void* p) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%lx", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p)));
  return buf;
}

// The whole of stderr: one line naming the problem, the call and the pointer.
inline std::string one_line(const std::string& problem, const char* call, const void* p) {
  return "^mallard: " + problem + " in " + call + "\\(" + hex(p) + "\\)\n$";
}

}  // namespace test_reports
