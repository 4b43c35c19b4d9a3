/* which_malloc.c: print the shared object that provides the malloc (and malloc_trim) this
 * process calls, so the runner can check that a preloaded allocator really is in use. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

static const char* provider(const char* symbol) {
    Dl_info info;
    void* f = dlsym(RTLD_DEFAULT, symbol);
    if (!f || !dladdr(f, &info) || !info.dli_fname) return "none";
    return info.dli_fname;
}

int main(void) {
    printf("malloc=%s malloc_trim=%s\n", provider("malloc"), provider("malloc_trim"));
    return 0;
}
