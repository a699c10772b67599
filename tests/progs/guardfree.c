/* guardfree.c: a block recorded by the shim, then freed by glibc from inside the shim's own
 * code. dlopen of a missing library leaves glibc's error message in a malloc'd block; the
 * program's first pthread_create makes the shim look up the real function with dlsym, under
 * its guard, and that dlsym frees the old message. The block must be forgotten, not left in
 * the shadow map as a phantom (which a heap walk reported as a direct leak from _dlerror_run,
 * and whose size it read from memory no longer a block). tests/t1500-shadow.sh runs it. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include "heapwatch.h"

static void *run(void *arg)
{
    return arg;
}

int main(void)
{
    void *h = dlopen("/nonexistent/libheapwatch-test-nothing.so", RTLD_NOW);
    pthread_t t;
    pthread_create(&t, NULL, run, NULL);
    pthread_join(t, NULL);
    HEAPWATCH_SNAPSHOT("after");
    printf("guardfree: dlopen %s\n", h ? "succeeded" : "failed");
    return 0;
}
