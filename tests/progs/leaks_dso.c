/* leaks_dso.c: the shared library that progs/leaks.c dlopens for its "dlopen" and "dso_tls"
 * cases. It allocates and keeps the blocks in its own data: a global array (a root only if
 * the heap walk scans the writable segments of modules loaded after start) and a __thread
 * variable (dynamic TLS: glibc mallocs this module's TLS block on first use, so the block is
 * reachable only through the thread's DTV). Sizes are multiples of 16 (see leaks.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *dso_kept[7];
__thread void *dso_tls_kept;
void *volatile dso_sink;

static void *fill(void *p, size_t n)
{
    if (!p) {
        fputs("leaks_dso: out of memory\n", stderr);
        exit(1);
    }
    memset(p, 0x5a, n);
    dso_sink = p;
    return p;
}

__attribute__((noinline)) void dso_keep(void)
{
    for (int i = 0; i < 7; i++)
        dso_kept[i] = fill(malloc(208), 208);
    dso_sink = NULL;
}

__attribute__((noinline)) void dso_keep_tls(void)
{
    dso_tls_kept = fill(malloc(320), 320);
    dso_sink = NULL;
}
