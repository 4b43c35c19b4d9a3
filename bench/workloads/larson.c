/* larson.c: server simulation (Larson-like). Threads replace random slots of one shared table
 * of blocks (16..1024 B) for a fixed time; the block a thread frees was usually allocated by
 * another thread. Reports ops_per_sec (one op = one malloc + one free). */
#include <stdatomic.h>

#include "common.h"

enum { SLOTS_PER_THREAD = 8192, CHECK_EVERY = 256 };

static _Atomic(char*)* table;
static long slots;
static atomic_int stop;

typedef struct {
    int id;
    long ops;
} worker;

static void* run(void* arg) {
    worker* w = (worker*)arg;
    uint64_t seed = 3000 + (uint64_t)w->id;
    long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int k = 0; k < CHECK_EVERY; k++) {
            uint64_t r = rng_next(&seed);
            size_t size = 16 + (size_t)((r >> 40) % 1009);
            char* p = (char*)malloc(size);
            p[0] = (char)k;
            p[size - 1] = (char)k;
            char* old = atomic_exchange_explicit(&table[r % (uint64_t)slots], p, memory_order_acq_rel);
            free(old);
        }
        ops += CHECK_EVERY;
    }
    w->ops = ops;
    return NULL;
}

static void* timer(void* arg) {
    double seconds = *(double*)arg;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    double seconds = 1.0 * a.scale;
    slots = (long)SLOTS_PER_THREAD * a.threads;
    table = (_Atomic(char*)*)calloc((size_t)slots, sizeof(*table));
    uint64_t seed = 3;
    for (long i = 0; i < slots; i++) atomic_store(&table[i], (char*)malloc(rng_range(&seed, 16, 1024)));

    worker* w = (worker*)calloc((size_t)a.threads, sizeof(worker));
    for (int i = 0; i < a.threads; i++) w[i].id = i;
    pthread_t tt;
    double t0 = now_s();
    pthread_create(&tt, NULL, timer, &seconds);
    run_threads(a.threads, run, w, sizeof(worker));
    double el = now_s() - t0;
    pthread_join(tt, NULL);

    long ops = 0;
    for (int i = 0; i < a.threads; i++) ops += w[i].ops;
    long rss = rss_kb();
    for (long i = 0; i < slots; i++) free(atomic_load(&table[i]));
    printf("result workload=larson threads=%d ops=%ld elapsed_s=%.4f ops_per_sec=%.0f rss_end_kb=%ld\n",
           a.threads, ops, el, (double)ops / el, rss);
    free(w);
    free(table);
    return 0;
}
