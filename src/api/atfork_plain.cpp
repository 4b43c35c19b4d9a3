// atfork_plain.cpp: Mallard's fork handler registration where __register_atfork is not
// interposed (libmallard.a, sanitizer builds): pthread_atfork, at initialisation.
#include <pthread.h>

#include "api/init.hpp"

namespace mallard::api {

void register_atfork_first(void (*prepare)(), void (*parent)(), void (*child)()) {
  pthread_atfork(prepare, parent, child);
}

}  // namespace mallard::api
