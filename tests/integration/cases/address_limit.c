/* address_limit.c: under an address-space limit (ulimit -v) Mallard's fast map (32 MiB of
 * read-only address space) must not take what the program could need: it is reserved only when
 * the limit is at least 64 times its size. Prints whether anonymous read-only mappings of nearly
 * 32 MiB in all exist after allocating and freeing (the map's pages made writable split it), then
 * RESULT: PASS if every call worked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fast_map_present(void) {
    FILE* f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned long read_only = 0;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        int path = 0;
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &lo, &hi, perms, &path) < 3) continue;
        int anonymous = line[path] == '\n' || line[path] == '\0';
        if (strcmp(perms, "r--p") == 0 && anonymous) read_only += hi - lo;
    }
    fclose(f);
    return read_only >= (28ul << 20);
}

int main(void) {
    void* blocks[4096];
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 4096; i++) {
            blocks[i] = malloc((size_t)(i % 700) * 16 + 1);
            if (!blocks[i]) {
                puts("RESULT: FAIL (malloc)");
                return 1;
            }
        }
        for (int i = 0; i < 4096; i++) free(blocks[i]);
    }
    printf("fast map: %s\n", fast_map_present() ? "present" : "absent");
    puts("RESULT: PASS");
    return 0;
}
