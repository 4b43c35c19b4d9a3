#!/usr/bin/env bash
# run-robustness.sh: the robustness battery as CI runs it (docs/robustness.md):
#   1. the ubsan and tsan presets: build, then ctest (unit tests through the prefixed API and
#      tests/robustness: bad input, injected OS failures, foreign sbrk, soak, corpus replay);
#   2. the differential fuzzer for FUZZ_SECONDS (60), then a replay of the seed corpus and of
#      what the run added (skipped, with a message, without clang's libFuzzer runtime);
#   3. the fault-injection sweep over every failure point of FAULT_SEEDS (16) workloads;
#   4. the soak for SOAK_SECONDS (60) under UBSan and again under TSan.
# Exits non-zero on the first failure. Installs nothing, except clang and its runtime with
# apt-get when run as root and they are missing. About 7 minutes on 2 cores from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
fuzz_seconds=${FUZZ_SECONDS:-60}
soak_seconds=${SOAK_SECONDS:-60}
fault_seeds=${FAULT_SEEDS:-16}
t0=$SECONDS
step() { printf '\n=== %s  [%d s]\n' "$*" $((SECONDS - t0)); }

have_fuzzer_runtime() {
  local dir
  dir=$(clang++ -print-resource-dir 2>/dev/null) || return 1
  ls "$dir"/lib/linux/libclang_rt.fuzzer-x86_64.a "$dir"/lib/*/libclang_rt.fuzzer.a \
    >/dev/null 2>&1
}

# The presets build with clang; libFuzzer comes with clang's runtime package.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  command -v clang++ >/dev/null 2>&1 || apt-get install -y -qq clang >/dev/null ||
    echo "run-robustness: could not install clang"
  if command -v clang++ >/dev/null 2>&1 && ! have_fuzzer_runtime; then
    major=$(clang++ -dumpversion | cut -d. -f1)
    apt-get install -y -qq "libclang-rt-$major-dev" >/dev/null ||
      echo "run-robustness: could not install libclang-rt-$major-dev"
  fi
fi
command -v clang++ >/dev/null 2>&1 || { echo "run-robustness: clang++ is required" >&2; exit 1; }

for preset in ubsan tsan; do
  step "$preset: configure and build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  step "$preset: ctest"
  ctest --preset "$preset" -j "$jobs"
done

step "fuzzer: ${fuzz_seconds} s"
fuzzer=build/ubsan/mallard_fuzzer
if [ -x "$fuzzer" ]; then
  work=build/ubsan/fuzz-corpus
  mkdir -p "$work"
  # New inputs go to the work corpus; the committed seeds are only read. A crash leaves its
  # input in build/ubsan/fuzz-crash-* (replay: $fuzzer FILE).
  "$fuzzer" -max_total_time="$fuzz_seconds" -max_len=4096 -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix=build/ubsan/fuzz- "$work" tests/fuzz/corpus
  step "fuzzer: replay of the seed corpus and of the inputs the run kept"
  "$fuzzer" -runs=0 tests/fuzz/corpus "$work"
else
  echo "SKIPPED: the fuzzer was not built: clang's libFuzzer runtime (libclang_rt.fuzzer," \
    "package libclang-rt-<version>-dev) is not available"
fi

step "fault injection: every failure point of $fault_seeds workloads (UBSan build)"
build/ubsan/rb_fault_injection 1 250 "$fault_seeds"

step "soak: ${soak_seconds} s, UBSan build"
build/ubsan/rb_soak "$soak_seconds" 4
step "soak: ${soak_seconds} s, TSan build"
TSAN_OPTIONS="halt_on_error=1:suppressions=$PWD/tests/robustness/tsan.supp" \
  build/tsan/rb_soak "$soak_seconds" 4

step "robustness battery passed"
