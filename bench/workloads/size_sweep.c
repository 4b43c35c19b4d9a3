/* size_sweep.c: fixed-size malloc/free pairs for each power of two from 16 B to 64 KiB,
 * reporting nanoseconds per pair for each size (ns_<size>=...). A few blocks of the size stay
 * live during its loop, so the measured pair is not also the one that empties a page. */
#include "common.h"

enum { MIN_SHIFT = 4, MAX_SHIFT = 16, LIVE = 16 };

typedef struct {
    long pairs;
    double ns[MAX_SHIFT + 1];
    unsigned long sink;
} worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    for (int s = MIN_SHIFT; s <= MAX_SHIFT; s++) {
        size_t size = (size_t)1 << s;
        void* live[LIVE];
        for (int k = 0; k < LIVE; k++) live[k] = malloc(size);
        double t0 = now_s();
        for (long n = 0; n < w->pairs; n++) {
            volatile char* p = (volatile char*)malloc(size);
            p[0] = (char)n;
            w->sink += (unsigned char)p[0];
            free((void*)p);
        }
        w->ns[s] = (now_s() - t0) * 1e9 / (double)w->pairs;
        for (int k = 0; k < LIVE; k++) free(live[k]);
    }
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    worker* w = (worker*)calloc((size_t)a.threads, sizeof(worker));
    for (int i = 0; i < a.threads; i++) w[i].pairs = bench_scaled(2000000, a.scale);
    run_threads(a.threads, run, w, sizeof(worker));
    printf("result workload=size_sweep threads=%d pairs_per_size=%ld ops=%ld", a.threads, w[0].pairs,
           w[0].pairs * (MAX_SHIFT - MIN_SHIFT + 1) * a.threads);
    for (int s = MIN_SHIFT; s <= MAX_SHIFT; s++) {
        double ns = 0;
        for (int i = 0; i < a.threads; i++) ns += w[i].ns[s];
        printf(" ns_%d=%.2f", 1 << s, ns / a.threads);
    }
    printf(" rss_end_kb=%ld\n", rss_kb());
    free(w);
    return 0;
}
