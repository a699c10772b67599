/* usage.h: diagnostics, exit codes and checked allocation for the heapwatch command.
 *
 * Exit codes (also in README.md):
 *   0 success (findings included, unless --exit-code)   1 findings with --exit-code
 *   2 usage: unknown command or option, bad argument     3 input: database missing, unreadable,
 *   4 output/system: cannot write, out of memory           foreign or too new; unknown snapshot
 *   134 BUG() */
#ifndef HW_USAGE_H
#define HW_USAGE_H

#include <stdarg.h>
#include <stddef.h>

enum {
    EXIT_FINDINGS = 1,
    EXIT_USAGE = 2,
    EXIT_INPUT = 3,
    EXIT_SYSTEM = 4,
};

/* "heapwatch: error: ..." on stderr, then exit(code). */
__attribute__((noreturn, format(printf, 2, 3))) void die(int code, const char *fmt, ...);
/* "heapwatch: error: ..." on stderr; returns -1 for `return error(...)`. */
__attribute__((format(printf, 1, 2))) int error(const char *fmt, ...);
/* error() with a va_list, for wrappers that print more after the message (die_usage). */
__attribute__((format(printf, 1, 0))) void verror(const char *fmt, va_list ap);
__attribute__((format(printf, 1, 2))) void warning(const char *fmt, ...);
#define BUG(...) bug_at(__FILE__, __LINE__, __VA_ARGS__)
__attribute__((noreturn, format(printf, 3, 4))) void bug_at(const char *file, int line, const char *fmt, ...);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
__attribute__((format(printf, 1, 2))) char *xasprintf(const char *fmt, ...);

/* Grow array p (of *alloc elements) so that it holds at least nr elements. */
#define ALLOC_GROW(p, nr, alloc)                                                   \
    do {                                                                           \
        if ((size_t)(nr) > (size_t)(alloc)) {                                      \
            size_t alloc_ = (size_t)(alloc) * 2 + 16;                              \
            if (alloc_ < (size_t)(nr))                                             \
                alloc_ = (size_t)(nr);                                             \
            (p) = xrealloc((p), alloc_ * sizeof(*(p)));                            \
            (alloc) = alloc_;                                                      \
        }                                                                          \
    } while (0)

#endif
