/* quickexit.c: a process that ends through _exit (or _Exit) at once, as a shell's `exit`
 * builtin, a forked worker or a signal handler does, while the shim's helper may still be
 * creating its database (the event log makes it at start-up). `quickexit [_Exit]`: a few
 * allocations, then _exit(3) (or _Exit(3)). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *volatile sink;

int main(int argc, char **argv)
{
    for (int i = 0; i < 64; i++) {
        char *p = malloc(32 + (size_t)i);
        memset(p, i, 32);
        sink = p;
        free(p);
    }
    if (argc > 1 && !strcmp(argv[1], "_Exit"))
        _Exit(3);
    _exit(3);
}
