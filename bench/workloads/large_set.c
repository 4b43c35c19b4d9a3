/* large_set.c: large-block working set. Keeps 20 zero-filled blocks of random sizes from
 * 64 KiB to 32 MiB (log-uniform: a power of two from 64 KiB to 16 MiB, plus up to as much
 * again) and, again and again, frees one at random and allocates a new one in its place,
 * which the program zero-fills itself with memset (like a buffer that is cleared before use).
 * The kernel's page faults and the allocator's mmap/munmap or reuse decide the time; an
 * allocator that keeps freed large blocks mapped is faster and uses more memory. Reports
 * rss_end_kb after every block is freed. */
#include <string.h>

#include "common.h"

enum { WORKING_SET = 20 };

/* Zero, but read at run time: with a constant 0, gcc folds malloc + memset into calloc, which
 * skips the writes (fresh mmap pages are already zero) and leaves most pages untouched. */
static volatile int zero_byte = 0;

static char* fresh(uint64_t* seed, size_t* size_out) {
    size_t base = (size_t)(64 << 10) << (rng_next(seed) % 9); /* 64 KiB .. 16 MiB */
    size_t size = base + (size_t)(rng_next(seed) % base);     /* .. 32 MiB */
    char* p = (char*)malloc(size);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    memset(p, zero_byte, size);
    *size_out = size;
    return p;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long steps = bench_scaled(400, a.scale);
    uint64_t seed = 11;
    char* slot[WORKING_SET];
    size_t len[WORKING_SET];
    double t0 = now_s();
    for (int i = 0; i < WORKING_SET; i++) slot[i] = fresh(&seed, &len[i]);
    unsigned long sum = 0;
    size_t bytes = 0;
    for (long n = 0; n < steps; n++) {
        int i = (int)(rng_next(&seed) % WORKING_SET);
        sum += (unsigned char)slot[i][len[i] - 1] + (unsigned char)slot[i][len[i] / 2];
        free(slot[i]);
        slot[i] = fresh(&seed, &len[i]);
        bytes += len[i];
    }
    for (int i = 0; i < WORKING_SET; i++) free(slot[i]);
    double el = now_s() - t0;
    printf("result workload=large_set ops=%ld elapsed_s=%.4f mib_filled=%zu rss_end_kb=%ld check=%lu\n",
           steps, el, bytes >> 20, rss_kb(), sum % 1000);
    return 0;
}
