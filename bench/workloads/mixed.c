/* mixed.c: same-thread malloc/free loop over mixed small sizes. Each thread keeps a background
 * of long-lived blocks (1 B..1 KiB, random sizes, so the pages of the small classes stay in
 * use) and then, again and again, allocates a short burst of 1..8 blocks of random sizes
 * 1 B..1 KiB, touches them and frees them newest first. Unlike churn (which replaces random
 * slots of a large working set), every block here dies young, and consecutive requests
 * rarely share a size class. One op = one malloc + one free. */
#include "common.h"

enum { BACKGROUND = 512, BURST = 8, SIZES = 4096 };

typedef bench_worker worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    uint64_t seed = 7000 + (uint64_t)w->id;
    /* Sizes come from a table filled up front, so the loop spends little time in the RNG. */
    unsigned short* size = (unsigned short*)malloc(sizeof(unsigned short) * SIZES);
    for (int i = 0; i < SIZES; i++) size[i] = (unsigned short)rng_range(&seed, 1, 1024);
    char* background[BACKGROUND];
    for (int i = 0; i < BACKGROUND; i++) {
        background[i] = (char*)malloc(size[(i * 7) % SIZES]);
        background[i][0] = (char)i;
    }
    unsigned long sum = 0;
    unsigned k = 0;
    long done = 0;
    while (done < w->ops) {
        char* burst[BURST];
        int n = 1 + (int)(rng_next(&seed) % BURST);
        if (n > w->ops - done) n = (int)(w->ops - done);
        for (int i = 0; i < n; i++) {
            size_t s = size[k++ % SIZES];
            burst[i] = (char*)malloc(s);
            burst[i][0] = (char)i;
            burst[i][s - 1] = (char)s;
        }
        for (int i = n - 1; i >= 0; i--) {
            sum += (unsigned char)burst[i][0];
            free(burst[i]);
        }
        done += n;
    }
    for (int i = 0; i < BACKGROUND; i++) free(background[i]);
    free(size);
    w->checksum = sum;
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long ops = bench_scaled(10000000, a.scale);
    unsigned long sum;
    double el = run_workers(a.threads, ops, run, &sum);
    printf("result workload=mixed threads=%d ops=%ld elapsed_s=%.4f ns_per_op=%.2f rss_end_kb=%ld "
           "check=%lu\n",
           a.threads, ops * a.threads, el, el * 1e9 / (double)ops, rss_kb(), sum % 1000);
    return 0;
}
