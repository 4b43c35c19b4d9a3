/* mid_sizes_mt.c: few blocks per size class per thread. Each of THREADS threads keeps 200 blocks
 * of random sizes from 1 KiB to 16 KiB, writes every byte of each, and replaces a random one
 * again and again. Per class and thread that is only a handful of blocks, so what an allocator
 * holds in partly used pages (slabs, runs, spans) per class and per thread shows in the peak RSS
 * next to the 1.7 MiB per thread that is live (issue 11, part 3; the review of 763ec75 found
 * eight size classes per doubling there cost up to 20% RSS). One op = one free + one malloc. */
#include <string.h>

#include "common.h"

enum { LIVE = 200, MIN_SIZE = 1025, MAX_SIZE = 16384 };

typedef bench_worker worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    uint64_t seed = 7000 + (uint64_t)w->id;
    char* slot[LIVE];
    for (int i = 0; i < LIVE; i++) {
        size_t size = rng_range(&seed, MIN_SIZE, MAX_SIZE);
        slot[i] = (char*)malloc(size);
        memset(slot[i], i, size);
    }
    unsigned long sum = 0;
    for (long n = 0; n < w->ops; n++) {
        int i = (int)(rng_next(&seed) % LIVE);
        size_t size = rng_range(&seed, MIN_SIZE, MAX_SIZE);
        sum += (unsigned char)slot[i][0];
        free(slot[i]);
        slot[i] = (char*)malloc(size);
        memset(slot[i], (int)n, size);
    }
    for (int i = 0; i < LIVE; i++) free(slot[i]);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long ops = bench_scaled(200000, a.scale);
    unsigned long sum;
    double el = run_workers(a.threads, ops, run, &sum);
    printf(
        "result workload=mid_sizes_mt threads=%d ops=%ld elapsed_s=%.4f rss_end_kb=%ld "
        "check=%lu\n",
        a.threads, ops * a.threads, el, rss_kb(), sum % 1000);
    return 0;
}
