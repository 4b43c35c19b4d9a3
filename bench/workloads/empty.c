/* empty.c: a program that makes one small allocation and exits: its peak RSS is the floor every
 * other case's peak RSS is measured above ("peak RSS above an empty program", issue 11, part 5).
 * Result: elapsed_s. */
#include "common.h"

int main(int argc, char** argv) {
    bench_args a = bench_parse(argc, argv);
    (void)a;
    double t0 = now_s();
    char* volatile p = (char*)malloc(64);
    p[0] = 1;
    free(p);
    printf("result workload=empty elapsed_s=%.6f\n", now_s() - t0);
    return 0;
}
