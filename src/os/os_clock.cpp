// os_clock.cpp: the monotonic clock (now_ms, now_ns), read through the kernel's vDSO directly.
// Owns the vDSO symbol lookup; must never allocate and never call libc's clock_gettime.
//
// Why not libc's clock_gettime: it is a thin wrapper around the same vDSO function, but it lives
// in a part of libc's text a program that only allocates does not otherwise run, and the kernel
// maps file pages 64 KiB at a time around each fault ("fault-around"): that one call made 64 KiB
// of libc resident in every process (docs/design.md, "Base RSS"). The lookup below is the one the
// kernel documents for the vDSO (Documentation/ABI/stable/vdso, tools/testing/selftests/vDSO/
// parse_vdso.c): AT_SYSINFO_EHDR gives the vDSO's ELF image; its DT_HASH table gives the number of
// dynamic symbols; the function's name and version are the architecture's (kVdsoClock below, as
// the kernel's arch/*/vdso linker scripts export them; tools/testing/selftests/vDSO/vdso_config.h
// lists the same). Without a vDSO (some kernels, valgrind, a seccomp sandbox may hide it), without
// DT_HASH, or on an architecture not listed, the raw system call.
#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "os/os.hpp"

namespace mallard::os {
namespace {

using ClockGettime = int (*)(clockid_t, timespec*);

// The vDSO's clock_gettime: its name and symbol version on each architecture (the kernel's
// arch/{x86/entry,arm64/kernel,riscv/kernel}/vdso/vdso.lds.S).
struct VdsoSymbol {
  const char* name;
  const char* version;
};
#if defined(__x86_64__)
constexpr VdsoSymbol kVdsoClock{"__vdso_clock_gettime", "LINUX_2.6"};
#elif defined(__aarch64__)
constexpr VdsoSymbol kVdsoClock{"__kernel_clock_gettime", "LINUX_2.6.39"};
#elif defined(__riscv) && __riscv_xlen == 64
constexpr VdsoSymbol kVdsoClock{"__vdso_clock_gettime", "LINUX_4.15"};
#else
// Elsewhere the system call. Not listed on purpose: i386 (the vDSO's timespec is 32-bit time),
// ppc64 (its vDSO returns errors in a condition register, not as a C function does), s390x (its
// hash table has 64-bit entries, which this lookup does not read).
constexpr VdsoSymbol kVdsoClock{nullptr, nullptr};
#endif

int clock_by_syscall(clockid_t id, timespec* ts) {
  return static_cast<int>(syscall(SYS_clock_gettime, id, ts));
}

// The ELF version name a dynamic symbol is defined with, or nullptr when it has none.
const char* symbol_version(const ElfW(Versym) * versym, const ElfW(Verdef) * verdef,
                           const char* strtab, std::size_t index) {
  if (versym == nullptr || verdef == nullptr) return nullptr;
  ElfW(Half) want = versym[index] & 0x7fff;
  for (const ElfW(Verdef)* d = verdef;;) {
    if ((d->vd_flags & VER_FLG_BASE) == 0 && (d->vd_ndx & 0x7fff) == want) {
      const auto* aux =
          reinterpret_cast<const ElfW(Verdaux)*>(reinterpret_cast<const char*>(d) + d->vd_aux);
      return strtab + aux->vda_name;
    }
    if (d->vd_next == 0) return nullptr;
    d = reinterpret_cast<const ElfW(Verdef)*>(reinterpret_cast<const char*>(d) + d->vd_next);
  }
}

}  // namespace

const char* vdso_clock_name() {
  return kVdsoClock.name;
}
const char* vdso_clock_version() {
  return kVdsoClock.version;
}

void* find_vdso_symbol(const char* name, const char* version) {
  std::uintptr_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return nullptr;
  const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  constexpr unsigned char kClass = sizeof(void*) == 8 ? ELFCLASS64 : ELFCLASS32;
  if (name == nullptr || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != kClass)
    return nullptr;
  const auto* ph = reinterpret_cast<const ElfW(Phdr)*>(base + eh->e_phoff);
  std::uintptr_t bias = 0;  // what to add to a virtual address of the image
  bool have_load = false;
  const ElfW(Dyn)* dyn = nullptr;
  for (unsigned i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type == PT_LOAD && !have_load) {
      bias = base + ph[i].p_offset - ph[i].p_vaddr;
      have_load = true;
    } else if (ph[i].p_type == PT_DYNAMIC) {
      dyn = reinterpret_cast<const ElfW(Dyn)*>(base + ph[i].p_offset);
    }
  }
  if (!have_load || dyn == nullptr) return nullptr;
  const char* strtab = nullptr;
  const ElfW(Sym)* symtab = nullptr;
  const Elf32_Word* hash = nullptr;
  const ElfW(Versym)* versym = nullptr;
  const ElfW(Verdef)* verdef = nullptr;
  for (; dyn->d_tag != DT_NULL; ++dyn) {
    auto at = bias + dyn->d_un.d_ptr;
    switch (dyn->d_tag) {
      case DT_STRTAB:
        strtab = reinterpret_cast<const char*>(at);
        break;
      case DT_SYMTAB:
        symtab = reinterpret_cast<const ElfW(Sym)*>(at);
        break;
      case DT_HASH:
        hash = reinterpret_cast<const Elf32_Word*>(at);
        break;
      case DT_VERSYM:
        versym = reinterpret_cast<const ElfW(Versym)*>(at);
        break;
      case DT_VERDEF:
        verdef = reinterpret_cast<const ElfW(Verdef)*>(at);
        break;
      default:
        break;
    }
  }
  if (strtab == nullptr || symtab == nullptr || hash == nullptr) return nullptr;
  std::size_t count = hash[1];  // nchain: one entry per dynamic symbol
  for (std::size_t i = 0; i < count; ++i) {
    const ElfW(Sym)& s = symtab[i];
    unsigned type = ELF64_ST_TYPE(s.st_info), bind = ELF64_ST_BIND(s.st_info);  // as ELF32_
    if (type != STT_FUNC || (bind != STB_GLOBAL && bind != STB_WEAK) || s.st_shndx == SHN_UNDEF)
      continue;
    if (std::strcmp(strtab + s.st_name, name) != 0) continue;
    const char* v = symbol_version(versym, verdef, strtab, i);
    if (version != nullptr && (v == nullptr || std::strcmp(v, version) != 0)) continue;
    return reinterpret_cast<void*>(bias + s.st_value);
  }
  return nullptr;
}

namespace {

// Looked up at the first call. Threads racing there store the same value; a fork child inherits
// the parent's vDSO at the same address.
std::atomic<ClockGettime> g_clock{nullptr};

ClockGettime clock_function() {
  ClockGettime f = g_clock.load(std::memory_order_relaxed);
  if (f == nullptr) {
    f = reinterpret_cast<ClockGettime>(find_vdso_symbol(kVdsoClock.name, kVdsoClock.version));
    if (f == nullptr) f = clock_by_syscall;
    g_clock.store(f, std::memory_order_relaxed);
  }
  return f;
}

std::uint64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_function()(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000 +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

bool clock_uses_vdso() {
  return clock_function() != clock_by_syscall;
}

std::uint64_t now_ns() {
  return clock_ns(CLOCK_MONOTONIC);
}

std::uint64_t now_ms() {
  return clock_ns(CLOCK_MONOTONIC_COARSE) / 1000000;
}

}  // namespace mallard::os
