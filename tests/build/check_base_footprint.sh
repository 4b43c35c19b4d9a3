#!/bin/sh
# check_base_footprint.sh LIB COMPILER_ID: the properties that keep what libmallard.so makes
# resident in a program that only allocates small (docs/design.md, "Base RSS"). The kernel maps
# file pages 64 KiB at a time around each fault (fault-around), so what matters is which parts of
# the text ever run, not how many bytes of it do:
#  1. no import of a libc function that sits apart from what any program runs (each costs 64 KiB
#     of libc's text): clock_gettime (os_clock.cpp reads the vDSO), sched_getaffinity and
#     __sched_cpucount (os_system.cpp: the raw system call and its own bit count);
#  2. no dynamic initializer (a _GLOBAL__sub_I_ function): zeroing a large global at load touches
#     its pages of .bss (the report's 6 KiB scratch did), where a constant initializer costs none;
#  3. (GCC) the diagnostics marked [[gnu::cold]] (reports, heap check, option docs, warnings) lie
#     together below every function a program runs, so that their pages are not faulted in.
lib=$1
compiler=$2
bad=0

for f in clock_gettime sched_getaffinity __sched_cpucount; do
  if nm -D --undefined-only "$lib" | grep -q " $f@"; then
    echo "libmallard imports $f: its part of libc's text becomes resident in every program"
    bad=1
  fi
done

if nm "$lib" | grep -q '_GLOBAL__sub_I_'; then
  echo "dynamic initializers (they write their globals at load): $(nm "$lib" | grep -o '_GLOBAL__sub_I_[A-Za-z0-9_.]*' | tr '\n' ' ')"
  bad=1
fi

if [ "$compiler" = "GNU" ]; then
  syms=$(nm -C --defined-only "$lib" | grep -E '^[0-9a-f]+ [tT] ')
  addr() { echo "$syms" | grep -E " $1(\(|$)" | awk '{print $1}' | head -1; }
  highest_cold=0
  for f in 'mallard::stats::write_report_text' 'mallard::stats::write_report_json' \
      'mallard::stats::write_malloc_info' 'mallard::stats::check_arena_locked' \
      'mallard::config::write_option_docs' 'mallard::stats::split_rss'; do
    a=$(addr "$f")
    if [ -z "$a" ]; then echo "no symbol $f"; bad=1; continue; fi
    [ $((0x$a)) -gt $highest_cold ] && highest_cold=$((0x$a))
  done
  for f in malloc free calloc realloc 'mallard::ThreadHeap::malloc_refill' 'mallard::os::map_aligned' \
      'mallard::config::load_options_from_environment' 'mallard::os::now_ms' \
      'mallard::api::initialize_slow' 'mallard::free_slow'; do
    a=$(addr "$f")
    if [ -z "$a" ]; then echo "no symbol $f"; bad=1; continue; fi
    if [ $((0x$a)) -le $highest_cold ]; then
      echo "$f (0x$a) lies among the cold diagnostics (the highest at $(printf 0x%x $highest_cold))"
      bad=1
    fi
  done
fi

[ $bad = 0 ] && echo "base footprint ok"
exit $bad
