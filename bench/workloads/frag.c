/* frag.c: fragmentation. In each phase, long-lived and short-lived blocks are allocated
 * interleaved (1 in 8 is long-lived), with a size range that shifts from phase to phase; the
 * previous phase's short-lived blocks are freed after the next phase is allocated. Reports RSS
 * (from /proc/self/statm) at its peak, after all short-lived blocks are freed, and after
 * malloc_trim(0), next to the bytes still live. */
#include <malloc.h>

#include "common.h"

enum { PHASES = 12, LONG_EVERY = 8 };

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long per_phase = bench_scaled(100000, a.scale);
    long short_cap = per_phase;
    char** keep = (char**)malloc(sizeof(char*) * (size_t)per_phase * PHASES);
    char** shorts[2] = {(char**)malloc(sizeof(char*) * (size_t)short_cap),
                        (char**)malloc(sizeof(char*) * (size_t)short_cap)};
    long nshort[2] = {0, 0}, nkeep = 0;
    size_t live_bytes = 0;
    long peak = 0;
    uint64_t seed = 8;
    double t0 = now_s();
    for (int ph = 0; ph < PHASES; ph++) {
        int cur = ph & 1;
        frag_phase(ph, per_phase, LONG_EVERY, &seed, keep, &nkeep, &live_bytes, shorts[cur],
                   &nshort[cur]);
        long rss = rss_kb();
        if (rss > peak) peak = rss;
        for (long i = 0; i < nshort[!cur]; i++) free(shorts[!cur][i]); /* previous phase */
        nshort[!cur] = 0;
    }
    for (int c = 0; c < 2; c++) {
        for (long i = 0; i < nshort[c]; i++) free(shorts[c][i]);
        nshort[c] = 0;
    }
    long after_free = rss_kb();
    malloc_trim(0);
    long after_trim = rss_kb();
    double el = now_s() - t0;
    unsigned long sum = 0;
    for (long i = 0; i < nkeep; i++) sum += (unsigned char)keep[i][0];
    printf("result workload=frag elapsed_s=%.4f live_kb=%zu rss_peak_kb=%ld rss_after_free_kb=%ld "
           "rss_after_trim_kb=%ld check=%lu\n",
           el, live_bytes / 1024, peak, after_free, after_trim, sum % 1000);
    return 0;
}
