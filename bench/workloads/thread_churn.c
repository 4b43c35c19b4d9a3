/* thread_churn.c: many short-lived threads. Threads are started in waves of THREADS; each one
 * allocates a few hundred blocks (16 B..2 KiB), frees most of them, and hands the rest back to
 * the main thread, which frees them after the join (so thread caches must be torn down). */
#include "common.h"

enum { BLOCKS = 512, HANDED = 32 };

typedef struct {
    uint64_t seed;
    char* keep[HANDED];
} worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    char* b[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        size_t size = rng_range(&w->seed, 16, 2048);
        b[i] = (char*)malloc(size);
        b[i][0] = (char)i;
        b[i][size - 1] = (char)i;
    }
    for (int i = 0; i < BLOCKS; i++) {
        if (i < HANDED) w->keep[i] = b[i];
        else free(b[i]);
    }
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long total = bench_scaled(4000, a.scale);
    worker* w = (worker*)calloc((size_t)a.threads, sizeof(worker));
    long started = 0;
    unsigned long sum = 0;
    double t0 = now_s();
    while (started < total) {
        for (int i = 0; i < a.threads; i++) w[i].seed = 4000 + (uint64_t)(started + i);
        run_threads(a.threads, run, w, sizeof(worker));
        for (int i = 0; i < a.threads; i++)
            for (int k = 0; k < HANDED; k++) {
                sum += (unsigned char)w[i].keep[k][0];
                free(w[i].keep[k]);
            }
        started += a.threads;
    }
    double el = now_s() - t0;
    printf("result workload=thread_churn concurrent=%d threads_started=%ld elapsed_s=%.4f rss_end_kb=%ld check=%lu\n",
           a.threads, started, el, rss_kb(), sum % 1000);
    free(w);
    return 0;
}
