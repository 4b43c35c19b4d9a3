/* static_glibc_program.c: a fully static program with glibc's own malloc: the loader cannot
 * preload Mallard into it (`mallard run` warns, and its report says it ended without one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char* p = malloc(100);
  if (p == NULL) return 1;
  strcpy(p, "static_glibc_program: ok");
  puts(p);
  free(p);
  return 0;
}
