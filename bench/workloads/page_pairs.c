/* page_pairs.c: page-emptying malloc/free pairs. The program holds no other block of the sizes
 * it uses: it allocates one block, touches it and frees it at once, cycling through a list of
 * sizes from 16 B to 16 KiB. So every block is the only live block of its size class, and each
 * free leaves its page (slab, run, span) empty: an allocator that returns or recycles empty
 * pages eagerly pays for it on every pair. One op = one malloc + one free. */
#include "common.h"

static const size_t sizes[] = {16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192, 16384};
enum { NSIZES = sizeof(sizes) / sizeof(sizes[0]) };

typedef bench_worker worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    unsigned long sum = 0;
    for (long n = 0; n < w->ops; n++) {
        size_t s = sizes[n % NSIZES];
        volatile char* p = (volatile char*)malloc(s);
        p[0] = (char)n;
        p[s - 1] = (char)s;
        sum += (unsigned char)p[0];
        free((void*)p);
    }
    w->checksum = sum;
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long ops = bench_scaled(4000000, a.scale);
    unsigned long sum;
    double el = run_workers(a.threads, ops, run, &sum);
    printf("result workload=page_pairs threads=%d ops=%ld elapsed_s=%.4f ns_per_op=%.2f "
           "rss_end_kb=%ld check=%lu\n",
           a.threads, ops * a.threads, el, el * 1e9 / (double)ops, rss_kb(), sum % 1000);
    return 0;
}
