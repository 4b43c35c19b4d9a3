/* common.h: shared helpers for the benchmark workloads (argument parsing, seeded RNG, clock,
 * RSS from /proc/self/statm, thread fan-out). Every workload is run as `prog THREADS SCALE`
 * and prints exactly one line starting with "result ". Plain C, usable from C++. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int threads;
    double scale;
} bench_args;

static inline bench_args bench_parse(int argc, char** argv) {
    bench_args a = {1, 1.0};
    if (argc > 1) a.threads = atoi(argv[1]);
    if (argc > 2) a.scale = atof(argv[2]);
    if (a.threads < 1) a.threads = 1;
    if (a.scale <= 0) a.scale = 1.0;
    return a;
}

/* base * scale, at least 1. */
static inline long bench_scaled(long base, double scale) {
    long n = (long)((double)base * scale);
    return n < 1 ? 1 : n;
}

/* splitmix64: small, fast, fully determined by the seed. */
static inline uint64_t rng_next(uint64_t* s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(uint64_t* s, size_t lo, size_t hi) {
    return lo + (size_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident set size in KiB, from /proc/self/statm (second field, in pages). */
static inline long rss_kb(void) {
    long size = 0, resident = 0;
    FILE* f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Seconds the memory cases idle before their "after 2 s idle" figure: 2, or BENCH_IDLE_S (the
 * smoke test sets 0). */
static inline unsigned bench_idle_s(void) {
    const char* v = getenv("BENCH_IDLE_S");
    return v != NULL && *v != '\0' ? (unsigned)atoi(v) : 2u;
}

/* RSS (KiB) right after a workload's frees, after bench_idle_s() seconds without allocator
 * calls, and after malloc_trim(0). */
typedef struct {
    long after_free_kb, idle_kb, after_trim_kb;
} bench_return;
static inline bench_return bench_measure_return(void) {
    bench_return r;
    r.after_free_kb = rss_kb();
    sleep(bench_idle_s());
    r.idle_kb = rss_kb();
    malloc_trim(0);
    r.after_trim_kb = rss_kb();
    return r;
}

/* One phase of frag's pattern: per_phase blocks of sizes drifting with the phase, 1 in
 * long_every kept (appended to keep[], their bytes added to *live), the others appended to
 * shorts[]. */
static inline void frag_phase(int phase, long per_phase, int long_every, uint64_t* seed,
                              char** keep, long* nkeep, size_t* live, char** shorts, long* nshort) {
    size_t lo = 16 + (size_t)phase * 40, hi = lo * 4; /* size classes drift each phase */
    for (long i = 0; i < per_phase; i++) {
        size_t size = rng_range(seed, lo, hi);
        char* p = (char*)malloc(size);
        p[0] = (char)i;
        p[size - 1] = (char)i;
        if (i % long_every == 0) {
            keep[(*nkeep)++] = p;
            *live += size;
        } else {
            shorts[(*nshort)++] = p;
        }
    }
}

/* Run fn(i) on n threads (i = 0..n-1) and wait for all of them. */
typedef void* (*bench_thread_fn)(void*);
static inline void run_threads(int n, bench_thread_fn fn, void* args, size_t arg_size) {
    pthread_t* t = (pthread_t*)malloc(sizeof(pthread_t) * (size_t)n);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&t[i], NULL, fn, (char*)args + (size_t)i * arg_size) != 0) {
            perror("pthread_create");
            exit(1);
        }
    }
    for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
    free(t);
}

/* A worker of the workloads that run `ops` operations on each thread and fold what they read
 * into a checksum (so that no read is optimised away). */
typedef struct {
    int id;
    long ops;
    unsigned long checksum;
} bench_worker;

/* Runs fn on n bench_workers (id i, `ops` operations each) and waits for them. Returns the
 * elapsed seconds; *checksum gets the sum of their checksums. */
static inline double run_workers(int n, long ops, bench_thread_fn fn, unsigned long* checksum) {
    bench_worker* w = (bench_worker*)calloc((size_t)n, sizeof(bench_worker));
    for (int i = 0; i < n; i++) w[i] = (bench_worker){i, ops, 0};
    double t0 = now_s();
    run_threads(n, fn, w, sizeof(bench_worker));
    double el = now_s() - t0;
    unsigned long sum = 0;
    for (int i = 0; i < n; i++) sum += w[i].checksum;
    free(w);
    *checksum = sum;
    return el;
}

#endif
