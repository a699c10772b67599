/* This file implements the analyzer's diagnostics (git's die/error/warning/BUG shape) and
 * allocation wrappers that die cleanly instead of returning NULL. */
#define _GNU_SOURCE
#include "usage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report(const char *prefix, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "heapwatch: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("error: ", fmt, ap);
    va_end(ap);
    exit(code);
}

int error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("error: ", fmt, ap);
    va_end(ap);
    return -1;
}

void verror(const char *fmt, va_list ap)
{
    report("error: ", fmt, ap);
}

void warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("warning: ", fmt, ap);
    va_end(ap);
}

void bug_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "BUG: %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static void *check(void *p, size_t n)
{
    if (!p && n)
        die(EXIT_SYSTEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *xmalloc(size_t n) { return check(malloc(n ? n : 1), n ? n : 1); }
void *xcalloc(size_t n, size_t size) { return check(calloc(n ? n : 1, size ? size : 1), n * size + 1); }
void *xrealloc(void *p, size_t n) { return check(realloc(p, n ? n : 1), n ? n : 1); }
char *xstrdup(const char *s) { return check(strdup(s), strlen(s) + 1); }
char *xstrndup(const char *s, size_t n) { return check(strndup(s, n), strnlen(s, n) + 1); }

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        die(EXIT_SYSTEM, "out of memory formatting a string");
    return s;
}
