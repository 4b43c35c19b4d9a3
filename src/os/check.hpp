// check.hpp: the internal assertions of the checked build (preset `checked`, which defines
// MALLARD_CHECKED): each conversion that could lose a value and each invariant of the heap's
// structures (free lists, counts, page states, lock ownership). In other builds MALLARD_CHECK
// compiles to nothing and its condition is not evaluated, so a check must never have side
// effects. A failed check prints one line, "mallard: internal check failed: <condition>
// (<file>:<line>)", and aborts. Never allocates.
#pragma once

namespace mallard::os {

[[noreturn, gnu::cold, gnu::noinline]] void check_failed(const char* condition, const char* file,
                                                         int line);

#ifdef MALLARD_CHECKED
inline constexpr bool kChecked = true;
#else
inline constexpr bool kChecked = false;
#endif

}  // namespace mallard::os

#ifdef MALLARD_CHECKED
#define MALLARD_CHECK(cond)                                                                   \
  do {                                                                                        \
    if (__builtin_expect(!(cond), 0)) ::mallard::os::check_failed(#cond, __FILE__, __LINE__); \
  } while (0)
#else
#define MALLARD_CHECK(cond) \
  do {                      \
  } while (0)
#endif
