/* frag_mt.c: memory the way users see it, with THREADS threads (issue 11, part 5). Each thread
 * runs frag's pattern on its own: in each phase it allocates blocks of a size range that drifts
 * from phase to phase, 1 in 8 of them long-lived, and frees the previous phase's short-lived
 * blocks; the total work is split between the threads. Then, with every thread alive and idle
 * and only the long-lived blocks live, the main thread reads the RSS right after the frees and
 * again after 2 s (BENCH_IDLE_S) without any allocator call (what a purge policy returns without
 * help), then after malloc_trim(0). RSS from /proc/self/statm; the peak is sampled after every
 * phase. Result: elapsed_s (the phases only), live_kb, rss_base_kb (before), rss_peak_kb,
 * rss_after_free_kb, rss_idle_kb, rss_after_trim_kb. */
#include <stdatomic.h>

#include "common.h"

enum { PHASES = 12, LONG_EVERY = 8 };

static long g_per_phase;
static atomic_long g_peak_kb;
static atomic_size_t g_live_bytes;
static pthread_barrier_t g_done, g_measured;

static void note_rss(void) {
    long rss = rss_kb();
    long peak = atomic_load(&g_peak_kb);
    while (rss > peak && !atomic_compare_exchange_weak(&g_peak_kb, &peak, rss)) {
    }
}

static void* worker(void* arg) {
    bench_worker* w = (bench_worker*)arg;
    long per_phase = g_per_phase;
    char** keep = (char**)malloc(sizeof(char*) * (size_t)(per_phase / LONG_EVERY + 1) * PHASES);
    char** shorts[2] = {(char**)malloc(sizeof(char*) * (size_t)per_phase),
                        (char**)malloc(sizeof(char*) * (size_t)per_phase)};
    long nshort[2] = {0, 0}, nkeep = 0;
    size_t live = 0;
    uint64_t seed = 8 + (uint64_t)w->id * 7919;
    for (int ph = 0; ph < PHASES; ph++) {
        int cur = ph & 1;
        frag_phase(ph, per_phase, LONG_EVERY, &seed, keep, &nkeep, &live, shorts[cur],
                   &nshort[cur]);
        note_rss();
        for (long i = 0; i < nshort[!cur]; i++) free(shorts[!cur][i]);
        nshort[!cur] = 0;
    }
    for (int c = 0; c < 2; c++) {
        for (long i = 0; i < nshort[c]; i++) free(shorts[c][i]);
        nshort[c] = 0;
    }
    atomic_fetch_add(&g_live_bytes, live);
    pthread_barrier_wait(&g_done);     /* only the long-lived blocks are live now */
    pthread_barrier_wait(&g_measured); /* idle (no allocator call) until main has measured */
    unsigned long sum = 0;
    for (long i = 0; i < nkeep; i++) {
        sum += (unsigned char)keep[i][0];
        free(keep[i]);
    }
    free(keep);
    free(shorts[0]);
    free(shorts[1]);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    g_per_phase = bench_scaled(100000, a.scale) / a.threads;
    if (g_per_phase < LONG_EVERY) g_per_phase = LONG_EVERY;
    long base = rss_kb();
    pthread_barrier_init(&g_done, NULL, (unsigned)a.threads + 1);
    pthread_barrier_init(&g_measured, NULL, (unsigned)a.threads + 1);
    bench_worker* w = (bench_worker*)calloc((size_t)a.threads, sizeof(bench_worker));
    pthread_t* t = (pthread_t*)malloc(sizeof(pthread_t) * (size_t)a.threads);
    double t0 = now_s();
    for (int i = 0; i < a.threads; i++) {
        w[i] = (bench_worker){i, g_per_phase, 0};
        if (pthread_create(&t[i], NULL, worker, &w[i]) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    pthread_barrier_wait(&g_done);
    double el = now_s() - t0;
    bench_return ret = bench_measure_return();
    pthread_barrier_wait(&g_measured);
    unsigned long sum = 0;
    for (int i = 0; i < a.threads; i++) {
        pthread_join(t[i], NULL);
        sum += w[i].checksum;
    }
    printf(
        "result workload=frag_mt threads=%d elapsed_s=%.4f live_kb=%zu rss_base_kb=%ld "
        "rss_peak_kb=%ld rss_after_free_kb=%ld rss_idle_kb=%ld rss_after_trim_kb=%ld "
        "check=%lu\n",
        a.threads, el, atomic_load(&g_live_bytes) / 1024, base, atomic_load(&g_peak_kb),
        ret.after_free_kb, ret.idle_kb, ret.after_trim_kb, sum % 1000);
    return 0;
}
