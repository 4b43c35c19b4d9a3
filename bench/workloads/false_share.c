/* false_share.c: allocator-induced false sharing (after Hoard's cache-scratch/cache-thrash).
 * The main thread allocates small blocks for all threads interleaved (block k goes to thread
 * k % THREADS) and hands them out; each thread frees its blocks, then repeatedly allocates a few
 * small blocks and writes to them in a tight loop. If the blocks of different threads share a
 * cache line (e.g. because a thread reuses blocks it was handed), the writes ping-pong it. */
#include "common.h"

enum { OBJ = 8, HANDED = 8, LIVE = 4, WRITES = 1000 };

typedef struct {
    char* handed[HANDED];
    long iters;
    unsigned long sink;
} worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    for (int k = 0; k < HANDED; k++) free(w->handed[k]);
    for (long n = 0; n < w->iters; n++) {
        volatile char* p[LIVE];
        for (int k = 0; k < LIVE; k++) {
            p[k] = (volatile char*)malloc(OBJ);
            for (int b = 0; b < OBJ; b++) p[k][b] = 0;
        }
        for (int j = 0; j < WRITES; j++) p[j % LIVE][j % OBJ] += (char)j;
        for (int k = 0; k < LIVE; k++) {
            w->sink += (unsigned char)p[k][0];
            free((void*)p[k]);
        }
    }
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    worker* w = (worker*)calloc((size_t)a.threads, sizeof(worker));
    for (int k = 0; k < HANDED; k++)
        for (int i = 0; i < a.threads; i++) w[i].handed[k] = (char*)malloc(OBJ);
    for (int i = 0; i < a.threads; i++) w[i].iters = bench_scaled(200000, a.scale);
    double t0 = now_s();
    run_threads(a.threads, run, w, sizeof(worker));
    double el = now_s() - t0;
    unsigned long sum = 0;
    for (int i = 0; i < a.threads; i++) sum += w[i].sink;
    printf("result workload=false_share threads=%d writes=%ld elapsed_s=%.4f rss_end_kb=%ld check=%lu\n",
           a.threads, w[0].iters * WRITES * a.threads, el, rss_kb(), sum % 1000);
    free(w);
    return 0;
}
