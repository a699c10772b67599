/* owners_dso.c: the library progs/owners.c dlopens: a global and a __thread variable of a
 * dlopen'd module (its TLS is dynamic: a block glibc mallocs per thread, reached through the
 * thread's DTV). */
#include <stdlib.h>
#include <string.h>

struct dso_rec { long id; char name[56]; };   /* 64 bytes */
struct dso_rec *dso_held;
__thread char *dso_tls_held;

__attribute__((noinline)) void dso_hold(void)
{
    dso_held = malloc(sizeof *dso_held);
    memset(dso_held, 0, sizeof *dso_held);
}

__attribute__((noinline)) void dso_hold_tls(void)
{
    dso_tls_held = malloc(720);
    memset(dso_tls_held, 1, 720);
}
