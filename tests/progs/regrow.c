/* regrow.c: one buffer grown by realloc a page at a time to 80 MB, and 64 buffers grown and
 * shrunk at random: glibc grows a big block in place or with mremap, and so must the shim
 * (t1500: in sampled mode nearly every such realloc is sampled; copying the buffer whole each
 * time made this take minutes instead of a fraction of a second). Prints "regrow N". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    size_t n = 0;
    char *p = NULL;
    for (int i = 0; i < 20000; i++) {
        n += 4096;
        p = realloc(p, n);
        if (!p)
            return 1;
        p[n - 1] = 1;
    }
    free(p);
    char *b[64] = { 0 };
    size_t m[64] = { 0 };
    for (int i = 0; i < 100000; i++) {
        int k = (i * 7) % 64;
        m[k] = m[k] > 3000000 ? 16 : m[k] + 1 + (size_t)(i % 5000);
        b[k] = realloc(b[k], m[k]);
        if (!b[k])
            return 1;
        memset(b[k], 1, m[k] < 64 ? m[k] : 64);
    }
    for (int k = 0; k < 64; k++)
        free(b[k]);
    printf("regrow %zu\n", n);
    return 0;
}
