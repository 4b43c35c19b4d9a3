// cxx_operators.cpp: every replaceable C++ operator new and delete (plain, array, nothrow, sized,
// aligned, aligned+sized, aligned+nothrow). The one file compiled with exceptions: on failure
// `new` calls the new-handler and throws std::bad_alloc, as the standard requires.
//
// A C program that preloads Mallard must not need libstdc++. So the few C++ runtime symbols used
// here (std::get_new_handler, the bad_alloc type and the exception machinery) are weak
// references: libmallard.so has no DT_NEEDED on libstdc++; in a C++ process they resolve to the
// runtime the process already has, and in a C process nothing calls these operators.
#include <cstddef>
#include <new>

#include "api/alloc_inline.hpp"
#include "os/fatal.hpp"

// Weak references to the C++ runtime. Throwing goes through libstdc++'s own std::__throw_bad_alloc,
// so this file emits no type information of its own.
namespace std {
void __throw_bad_alloc() __attribute__((weak));  // [[noreturn]] in libstdc++
new_handler get_new_handler() noexcept __attribute__((weak));
}  // namespace std
// The exception machinery that catch (...) uses, referenced by the compiler itself: marked weak
// at the assembler level.
asm(".weak __cxa_begin_catch\n.weak __cxa_end_catch\n.weak __gxx_personality_v0\n"
    ".weak _Unwind_Resume\n.weak _ZSt9terminatev");  // clang: noexcept landing pads

// A static link takes from libmallard.a only the objects something refers to. The operators
// below are inline fast paths that refer to nothing in the object that defines malloc and free
// (alloc_api.cpp), so a C++ program that never names malloc itself would get Mallard's new and
// the C library's malloc (which libstdc++ and libc call inside): this reference brings
// Mallard's malloc in whenever its operators come.
extern "C" void* mallard_malloc(std::size_t n) noexcept;
[[gnu::used]] void* (*const mallard_link_malloc_with_new)(std::size_t) noexcept = &mallard_malloc;

namespace {

using mallard::api::aligned_inline;
using mallard::api::free_inline;
using mallard::api::malloc_inline;

// Calls the new-handler until the allocation succeeds; throws std::bad_alloc when there is none.
[[gnu::noinline, gnu::cold]] void* new_failed(std::size_t n, std::size_t alignment) {
  while (true) {
    // In a static link nothing may have pulled these in: then there is no handler, and with no
    // way to throw, the only defined answer left is to abort with a message.
    std::new_handler handler = &std::get_new_handler != nullptr ? std::get_new_handler() : nullptr;
    if (handler == nullptr) {
      if (&std::__throw_bad_alloc != nullptr) std::__throw_bad_alloc();
      mallard::os::report_bad_pointer("out of memory (no C++ runtime to throw bad_alloc)",
                                      "operator new", nullptr);
    }
    handler();
    void* p = alignment == 0 ? malloc_inline(n) : aligned_inline(alignment, n);
    if (p != nullptr) return p;
  }
}

[[gnu::noinline, gnu::cold]] void* new_failed_nothrow(std::size_t n,
                                                      std::size_t alignment) noexcept {
  try {
    return new_failed(n, alignment);
  } catch (...) {
    return nullptr;
  }
}

// Everything past the direct-table pop, out of line: with the null test after malloc_generic
// inline, every new saved and restored a register for it.
[[gnu::noinline]] void* new_generic(std::size_t n) {
  void* p = mallard::api::malloc_generic(n);
  return p != nullptr ? p : new_failed(n, 0);
}

// [[maybe_unused]]: with MALLARD_NO_STANDARD_NAMES (sanitizer builds) no operator uses them.
[[maybe_unused]] inline void* new_impl(std::size_t n) {
  void* p = mallard::api::try_malloc_direct(n);
  if (__builtin_expect(p != nullptr, 1)) return p;
  return new_generic(n);
}

[[maybe_unused]] inline void* new_aligned(std::size_t n, std::align_val_t a) {
  void* p = aligned_inline(static_cast<std::size_t>(a), n);
  return p != nullptr ? p : new_failed(n, static_cast<std::size_t>(a));
}

[[maybe_unused]] inline void* new_nothrow(std::size_t n) noexcept {
  void* p = malloc_inline(n);
  return p != nullptr ? p : new_failed_nothrow(n, 0);
}

[[maybe_unused]] inline void* new_aligned_nothrow(std::size_t n, std::align_val_t a) noexcept {
  void* p = aligned_inline(static_cast<std::size_t>(a), n);
  return p != nullptr ? p : new_failed_nothrow(n, static_cast<std::size_t>(a));
}

[[maybe_unused, gnu::always_inline]] inline void delete_impl(void* p) noexcept {
  free_inline(p, "operator delete");
}

// Sized and aligned deletes check what they are told (api/alloc_inline.hpp free_sized_inline).
[[maybe_unused, gnu::always_inline]] inline void delete_sized(void* p, std::size_t n) noexcept {
  mallard::api::free_sized_inline(p, n, "operator delete");
}

[[maybe_unused]] inline void delete_aligned(void* p, std::size_t n, std::align_val_t a) noexcept {
  mallard::api::free_sized_slow(p, n, static_cast<std::size_t>(a), "operator delete");
}

// An aligned delete without a size: only the alignment can be checked.
[[maybe_unused]] inline void delete_aligned(void* p, std::align_val_t a) noexcept {
  auto alignment = static_cast<std::size_t>(a);
  if (reinterpret_cast<std::uintptr_t>(p) % alignment != 0)
    mallard::os::report_bad_pointer("invalid size or alignment (not what it was allocated with)",
                                    "operator delete", p);
  free_inline(p, "operator delete");
}

}  // namespace

#ifndef MALLARD_NO_STANDARD_NAMES  // sanitizer builds keep the runtime's operators
#define MALLARD_CXX __attribute__((visibility("default")))

MALLARD_CXX void* operator new(std::size_t n) {
  return new_impl(n);
}
MALLARD_CXX void* operator new[](std::size_t n) {
  return new_impl(n);
}
MALLARD_CXX void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n);
}
MALLARD_CXX void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n);
}
MALLARD_CXX void* operator new(std::size_t n, std::align_val_t a) {
  return new_aligned(n, a);
}
MALLARD_CXX void* operator new[](std::size_t n, std::align_val_t a) {
  return new_aligned(n, a);
}
MALLARD_CXX void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_aligned_nothrow(n, a);
}
MALLARD_CXX void* operator new[](std::size_t n, std::align_val_t a,
                                 const std::nothrow_t&) noexcept {
  return new_aligned_nothrow(n, a);
}

MALLARD_CXX void operator delete(void* p) noexcept {
  delete_impl(p);
}
MALLARD_CXX void operator delete[](void* p) noexcept {
  delete_impl(p);
}
MALLARD_CXX void operator delete(void* p, const std::nothrow_t&) noexcept {
  delete_impl(p);
}
MALLARD_CXX void operator delete[](void* p, const std::nothrow_t&) noexcept {
  delete_impl(p);
}
MALLARD_CXX void operator delete(void* p, std::size_t n) noexcept {
  delete_sized(p, n);
}
MALLARD_CXX void operator delete[](void* p, std::size_t n) noexcept {
  delete_sized(p, n);
}
MALLARD_CXX void operator delete(void* p, std::align_val_t a) noexcept {
  delete_aligned(p, a);
}
MALLARD_CXX void operator delete[](void* p, std::align_val_t a) noexcept {
  delete_aligned(p, a);
}
MALLARD_CXX void operator delete(void* p, std::size_t n, std::align_val_t a) noexcept {
  delete_aligned(p, n, a);
}
MALLARD_CXX void operator delete[](void* p, std::size_t n, std::align_val_t a) noexcept {
  delete_aligned(p, n, a);
}
MALLARD_CXX void operator delete(void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
  delete_aligned(p, a);
}
MALLARD_CXX void operator delete[](void* p, std::align_val_t a, const std::nothrow_t&) noexcept {
  delete_aligned(p, a);
}
#endif  // MALLARD_NO_STANDARD_NAMES
