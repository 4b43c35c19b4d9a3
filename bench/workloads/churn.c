/* churn.c: same-thread churn. Each thread holds a working set of blocks (8 B..1 KiB, random
 * sizes) and repeatedly frees a random slot and allocates a new block in its place. */
#include <string.h>

#include "common.h"

enum { SLOTS = 4096 };

typedef bench_worker worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    uint64_t seed = 1000 + (uint64_t)w->id;
    char* slot[SLOTS];
    for (int i = 0; i < SLOTS; i++) {
        slot[i] = (char*)malloc(rng_range(&seed, 8, 1024));
        slot[i][0] = (char)i;
    }
    unsigned long sum = 0;
    for (long n = 0; n < w->ops; n++) {
        uint64_t r = rng_next(&seed);
        int i = (int)(r % SLOTS);
        size_t size = 8 + (size_t)((r >> 32) % 1017);
        sum += (unsigned char)slot[i][0];
        free(slot[i]);
        slot[i] = (char*)malloc(size);
        slot[i][0] = (char)n;
        slot[i][size - 1] = (char)n;
    }
    for (int i = 0; i < SLOTS; i++) free(slot[i]);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long ops = bench_scaled(20000000, a.scale);
    unsigned long sum;
    double el = run_workers(a.threads, ops, run, &sum);
    printf("result workload=churn threads=%d ops=%ld elapsed_s=%.4f rss_end_kb=%ld check=%lu\n",
           a.threads, ops * a.threads, el, rss_kb(), sum % 1000);
    return 0;
}
