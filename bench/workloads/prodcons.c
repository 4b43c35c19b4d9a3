/* prodcons.c: producer/consumer. THREADS producer/consumer pairs; each producer allocates
 * blocks (16..512 B) in batches and hands the batches over a bounded queue to its consumer,
 * which reads and frees them, so nearly every free is a cross-thread free. Up to 4 pairs, each
 * pair moves the same number of blocks; beyond 4 (8 and 16 pairs oversubscribe a small machine:
 * a robustness check) the 4-pair total is split among the pairs, so the run does not grow.
 * One op = one block allocated by a producer and freed by a consumer. */
#include "common.h"

enum { BATCH = 256, DEPTH = 16, FULL_WORK_PAIRS = 4 };

typedef struct {
    char* block[BATCH];
} batch;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    batch* ring[DEPTH];
    int head, count;
    long batches;
    int id;
    unsigned long checksum;
} channel;

static void put(channel* c, batch* b) {
    pthread_mutex_lock(&c->lock);
    while (c->count == DEPTH) pthread_cond_wait(&c->changed, &c->lock);
    c->ring[(c->head + c->count) % DEPTH] = b;
    c->count++;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

static batch* take(channel* c) {
    pthread_mutex_lock(&c->lock);
    while (c->count == 0) pthread_cond_wait(&c->changed, &c->lock);
    batch* b = c->ring[c->head];
    c->head = (c->head + 1) % DEPTH;
    c->count--;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    return b;
}

static void* produce(void* arg) {
    channel* c = (channel*)arg;
    uint64_t seed = 2000 + (uint64_t)c->id;
    for (long n = 0; n < c->batches; n++) {
        batch* b = (batch*)malloc(sizeof(batch));
        for (int i = 0; i < BATCH; i++) {
            size_t size = rng_range(&seed, 16, 512);
            b->block[i] = (char*)malloc(size);
            b->block[i][0] = (char)i;
            b->block[i][size - 1] = (char)n;
        }
        put(c, b);
    }
    return NULL;
}

static void* consume(void* arg) {
    channel* c = (channel*)arg;
    unsigned long sum = 0;
    for (long n = 0; n < c->batches; n++) {
        batch* b = take(c);
        for (int i = 0; i < BATCH; i++) {
            sum += (unsigned char)b->block[i][0];
            free(b->block[i]);
        }
        free(b);
    }
    c->checksum = sum;
    return NULL;
}

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    long batches = bench_scaled(36000, a.scale);
    if (a.threads > FULL_WORK_PAIRS) batches = bench_scaled(batches * FULL_WORK_PAIRS / a.threads, 1);
    channel* ch = (channel*)calloc((size_t)a.threads, sizeof(channel));
    pthread_t* t = (pthread_t*)malloc(sizeof(pthread_t) * 2 * (size_t)a.threads);
    double t0 = now_s();
    for (int i = 0; i < a.threads; i++) {
        pthread_mutex_init(&ch[i].lock, NULL);
        pthread_cond_init(&ch[i].changed, NULL);
        ch[i].batches = batches;
        ch[i].id = i;
        pthread_create(&t[2 * i], NULL, produce, &ch[i]);
        pthread_create(&t[2 * i + 1], NULL, consume, &ch[i]);
    }
    for (int i = 0; i < 2 * a.threads; i++) pthread_join(t[i], NULL);
    double el = now_s() - t0;
    unsigned long sum = 0;
    for (int i = 0; i < a.threads; i++) sum += ch[i].checksum;
    printf("result workload=prodcons pairs=%d blocks=%ld ops=%ld elapsed_s=%.4f rss_end_kb=%ld check=%lu\n",
           a.threads, batches * BATCH * a.threads, batches * BATCH * a.threads, el, rss_kb(), sum % 1000);
    free(t);
    free(ch);
    return 0;
}
