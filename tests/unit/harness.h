/* harness.h: the unit tests' TAP harness (after microsoft/mimalloc:test/testhelper.h).
 *
 *   CHECK(cond, "what %d", x);       prints "ok N - what" or "not ok N - what" + file:line
 *   CHECK_TODO(cond, "why", "what")  a known bug: "... # TODO why", never fails the run
 *   diag("fmt", ...);                prints "# ..."
 *   return done();                   prints the plan "1..N" (TAP allows it last), exit status
 * Everything goes to stdout, flushed per line, so it interleaves with nothing. */
#ifndef HW_TEST_HARNESS_H
#define HW_TEST_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int t_count, t_failed;

static __attribute__((format(printf, 5, 6), unused)) bool
t_check(bool cond, const char *todo, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    printf("%sok %d - ", cond ? "" : "not ", ++t_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (todo)
        printf(" # TODO %s", todo);
    putchar('\n');
    if (!cond && !todo) {
        t_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define CHECK(cond, ...) t_check(!!(cond), NULL, __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_TODO(cond, why, ...) t_check(!!(cond), (why), __FILE__, __LINE__, __VA_ARGS__)

static __attribute__((format(printf, 1, 2), unused)) void diag(const char *fmt, ...)
{
    va_list ap;
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static __attribute__((unused)) int done(void)
{
    printf("1..%d\n", t_count);
    fflush(stdout);
    return t_failed ? 1 : 0;
}

#endif
