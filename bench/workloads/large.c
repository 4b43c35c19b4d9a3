/* large.c: large and huge blocks. Phase 1 keeps a small working set of blocks of 64 KiB..32 MiB
 * (log-uniform sizes), replacing a random one each step and touching every page of the new
 * block. Phase 2 grows buffers vector-style with realloc (doubling from 64 B to 32 MiB),
 * touching each page of the newly added part. */
#include "common.h"

enum { WORKING_SET = 8, PAGE = 4096, GROW_BUFFERS = 4 };
#define MAX_BLOCK ((size_t)32 << 20)

static unsigned long touch(char* p, size_t from, size_t to) {
    unsigned long sum = 0;
    for (size_t i = from; i < to; i += PAGE) {
        p[i] = (char)i;
        sum += (unsigned char)p[i];
    }
    p[to - 1] = 1;
    return sum;
}

static unsigned long blocks_phase(uint64_t* seed, long steps) {
    char* slot[WORKING_SET] = {0};
    unsigned long sum = 0;
    for (long n = 0; n < steps; n++) {
        int i = (int)(rng_next(seed) % WORKING_SET);
        size_t base = (size_t)(64 << 10) << (rng_next(seed) % 9); /* 64 KiB .. 16 MiB */
        size_t size = base + (size_t)(rng_next(seed) % base);     /* .. 32 MiB */
        free(slot[i]);
        slot[i] = (char*)malloc(size);
        sum += touch(slot[i], 0, size);
    }
    for (int i = 0; i < WORKING_SET; i++) free(slot[i]);
    return sum;
}

static unsigned long grow_phase(long rounds) {
    unsigned long sum = 0;
    for (long r = 0; r < rounds; r++) {
        char* buf[GROW_BUFFERS] = {0};
        size_t cap = 0;
        for (size_t size = 64; size <= MAX_BLOCK; size *= 2) {
            for (int b = 0; b < GROW_BUFFERS; b++) {
                buf[b] = (char*)realloc(buf[b], size);
                sum += touch(buf[b], cap, size);
            }
            cap = size;
        }
        for (int b = 0; b < GROW_BUFFERS; b++) free(buf[b]);
    }
    return sum;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    uint64_t seed = 5;
    double t0 = now_s();
    unsigned long sum = blocks_phase(&seed, bench_scaled(600, a.scale));
    sum += grow_phase(bench_scaled(12, a.scale));
    double el = now_s() - t0;
    printf("result workload=large elapsed_s=%.4f rss_end_kb=%ld check=%lu\n", el, rss_kb(), sum % 1000);
    return 0;
}
