/* prodcons_idle.c: memory freed by another thread while its owner idles (issue 11, part 5). A
 * producer thread allocates N blocks of 1 KiB (200k at scale 1) and writes them; the main thread
 * frees them all while the producer stays alive and makes no further allocator call. RSS (from
 * /proc/self/statm) before, at the peak, right after the last free, after 2 s of idling, and
 * after malloc_trim(0) from the main thread (not the owner). THREADS is ignored (one producer).
 * Result: elapsed_s (allocation and frees), rss_base_kb, rss_peak_kb, rss_after_free_kb,
 * rss_idle_kb, rss_after_trim_kb. */
#include <string.h>

#include "common.h"

static void** g_blocks;
static long g_count;
static pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static int g_stage; /* 1: allocated; 2: the producer may exit */

static void* producer(void* arg) {
    (void)arg;
    for (long i = 0; i < g_count; i++) {
        g_blocks[i] = malloc(1024);
        memset(g_blocks[i], (int)(i & 0x7f) | 1, 1024);
    }
    pthread_mutex_lock(&g_mutex);
    g_stage = 1;
    pthread_cond_broadcast(&g_cond);
    while (g_stage != 2) pthread_cond_wait(&g_cond, &g_mutex); /* idle: no allocator call */
    pthread_mutex_unlock(&g_mutex);
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    g_count = bench_scaled(200000, a.scale);
    g_blocks = (void**)calloc((size_t)g_count, sizeof(void*));
    long base = rss_kb();
    double t0 = now_s();
    pthread_t t;
    if (pthread_create(&t, NULL, producer, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }
    pthread_mutex_lock(&g_mutex);
    while (g_stage != 1) pthread_cond_wait(&g_cond, &g_mutex);
    pthread_mutex_unlock(&g_mutex);
    long peak = rss_kb();
    unsigned long sum = 0;
    for (long i = 0; i < g_count; i++) {
        sum += ((unsigned char*)g_blocks[i])[i % 1024];
        free(g_blocks[i]);
    }
    double el = now_s() - t0;
    bench_return ret = bench_measure_return();
    pthread_mutex_lock(&g_mutex);
    g_stage = 2;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_mutex);
    pthread_join(t, NULL);
    printf(
        "result workload=prodcons_idle elapsed_s=%.4f rss_base_kb=%ld rss_peak_kb=%ld "
        "rss_after_free_kb=%ld rss_idle_kb=%ld rss_after_trim_kb=%ld check=%lu\n",
        el, base, peak, ret.after_free_kb, ret.idle_kb, ret.after_trim_kb, sum % 1000);
    return 0;
}
