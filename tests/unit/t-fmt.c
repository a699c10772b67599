/* This file implements the unit test of preload/sys.c: the allocation-free formatter hw_fmt
 * (every conversion it documents, compared with snprintf; truncation at every buffer size),
 * hw_log's one-line "heapwatch: " output, hw_map, and the mmap-backed hw_vec. Prints TAP. */
// LINK: preload/sys.c
#define _GNU_SOURCE
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include "harness.h"
#include "sys.h"

/* hw_vfmt without the printf format attribute, for formats gcc would refuse. */
static size_t fmt_raw(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = hw_vfmt(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* Format with hw_fmt and snprintf; both results must match, length included. */
#define SAME(fmt, ...)                                                                      \
    do {                                                                                    \
        char a_[256], b_[256];                                                              \
        size_t na_ = hw_fmt(a_, sizeof a_, fmt, __VA_ARGS__);                               \
        int nb_ = snprintf(b_, sizeof b_, fmt, __VA_ARGS__);                                \
        CHECK(!strcmp(a_, b_) && na_ == (size_t)nb_, "hw_fmt(\"%s\") = \"%s\" (want \"%s\")", \
              fmt, a_, b_);                                                                 \
    } while (0)

static void test_conversions(void)
{
    SAME("%s", "hello");
    SAME("[%s|%s]", "", "x");
    SAME("%d", 0);
    SAME("%d", 42);
    SAME("%d", -42);
    SAME("%d %d", INT_MAX, INT_MIN);
    SAME("%u", 0u);
    SAME("%u", UINT_MAX);
    SAME("%ld %ld", LONG_MAX, LONG_MIN);
    SAME("%lu", ULONG_MAX);
    SAME("%lld %lld", LLONG_MAX, LLONG_MIN);
    SAME("%llu", ULLONG_MAX);
    SAME("%zu", (size_t)SIZE_MAX);
    SAME("%zu", (size_t)0);
    SAME("%zd %zd", (ssize_t)-5, (ssize_t)SSIZE_MAX);
    SAME("%x", 0u);
    SAME("%x", 0xdeadbeefu);
    SAME("%lx", 0xfedcba9876543210ul);
    SAME("%llx", 0x0123456789abcdefull);
    SAME("%c%c%c", 'a', 'B', '!');
    SAME("100%% of %d%%", 7);
    SAME("%p", (void *)0x1234);
    SAME("%p", (void *)UINTPTR_MAX);
    SAME("pid=%d name=%s size=%zu at %p (%c) %llu%%", 1234, "prog", (size_t)4096,
         (void *)0x7fff0000, 'x', 99ull);

    char buf[64];
    hw_fmt(buf, sizeof buf, "%p", (void *)0);
    CHECK(!strcmp(buf, "0x0"), "%%p of NULL is 0x0 (got \"%s\")", buf);
    fmt_raw(buf, sizeof buf, "[%s]", (const char *)NULL);
    CHECK(!strcmp(buf, "[(null)]"), "%%s of NULL is (null) (got \"%s\")", buf);
    size_t n = hw_fmt(buf, sizeof buf, "no conversions");
    CHECK(n == 14 && !strcmp(buf, "no conversions"), "plain text copied, length returned");
    n = hw_fmt(buf, sizeof buf, "%s", "");
    CHECK(n == 0 && buf[0] == '\0', "empty result is an empty string");

    /* Undocumented conversions are echoed, a trailing '%' is dropped, nothing crashes. */
    n = fmt_raw(buf, sizeof buf, "a%qb");
    CHECK(!strcmp(buf, "a%qb") && n == 4, "unknown conversion echoed (got \"%s\")", buf);
    n = fmt_raw(buf, sizeof buf, "abc%");
    CHECK(!strcmp(buf, "abc") && n == 3, "trailing %% ignored (got \"%s\")", buf);
    n = fmt_raw(buf, sizeof buf, "abc%l");
    CHECK(!strcmp(buf, "abc") && n == 3, "trailing %%l ignored (got \"%s\")", buf);
}

/* At every buffer size the output is the NUL-terminated prefix of the full text, the return
 * value its length, and nothing past `size` is written. */
static void test_truncation(void)
{
    const char *full = "x=-12345 y=ffff s=abcdef p=0xbeef 50%";
    size_t len = strlen(full);
    char ref[128];
    hw_fmt(ref, sizeof ref, "x=%d y=%x s=%s p=%p %d%%", -12345, 0xffffu, "abcdef", (void *)0xbeef, 50);
    CHECK(!strcmp(ref, full), "reference text (got \"%s\")", ref);

    int bad = 0;
    for (size_t size = 0; size <= len + 3; size++) {
        char buf[128];
        memset(buf, '#', sizeof buf);
        size_t n = hw_fmt(buf, size, "x=%d y=%x s=%s p=%p %d%%", -12345, 0xffffu, "abcdef",
                          (void *)0xbeef, 50);
        size_t want = size == 0 ? 0 : (len < size - 1 ? len : size - 1);
        bool ok = n == want;
        if (size) {
            ok = ok && buf[want] == '\0' && !memcmp(buf, full, want);
        }
        for (size_t i = size; i < sizeof buf; i++)
            ok = ok && buf[i] == '#';
        if (!ok && bad++ < 5)
            diag("size %zu: returned %zu, want %zu, text \"%.*s\"", size, n, want, (int)want, buf);
    }
    CHECK(!bad, "truncation at every size 0..%zu: prefix, NUL-terminated, no overrun", len + 3);

    char one[2] = { 'A', 'B' };
    size_t n = hw_fmt(one, 1, "%s", "xyz");
    CHECK(n == 0 && one[0] == '\0' && one[1] == 'B', "size 1 gives an empty string");
    n = hw_fmt(one, 0, "%s", "xyz");
    CHECK(n == 0 && one[0] == '\0' && one[1] == 'B', "size 0 writes nothing");

    /* A conversion cut in the middle of a number. */
    char buf[6];
    n = hw_fmt(buf, sizeof buf, "%llu", 18446744073709551615ull);
    CHECK(n == 5 && !strcmp(buf, "18446"), "number cut to \"%s\"", buf);
}

/* hw_log writes exactly one line "heapwatch: ...\n" on fd 2, even when too long. */
static void test_log(void)
{
    char path[] = "/tmp/t-fmt.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file for stderr");
    if (fd < 0)
        return;
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    hw_log("value %d of %s", 7, "x");
    char big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hw_log("%s", big);
    dup2(saved, 2);
    close(saved);

    char got[8192];
    ssize_t n = pread(fd, got, sizeof got - 1, 0);
    close(fd);
    got[n > 0 ? n : 0] = '\0';
    const char *first = "heapwatch: value 7 of x\n";
    CHECK(!strncmp(got, first, strlen(first)), "hw_log line: \"%.*s\"", (int)strlen(first) - 1, got);
    const char *second = got + strlen(first);
    const char *nl = strchr(second, '\n');
    CHECK(!strncmp(second, "heapwatch: zzz", 14) && nl && nl[1] == '\0' && nl - second <= 1023,
          "an over-long message is truncated to one line of %d bytes", nl ? (int)(nl - second + 1) : -1);
}

static void test_map(void)
{
    size_t len = (size_t)1 << 30;
    char *p = hw_map(len);
    CHECK(p != NULL, "hw_map of 1 GiB (NORESERVE)");
    if (p) {
        CHECK(p[0] == 0 && p[len - 1] == 0, "mapping is zeroed");
        p[12345] = 1;
        hw_unmap(p, len);
    }
    hw_unmap(NULL, 4096);
    CHECK(1, "hw_unmap(NULL) is a no-op");
}

static void vec_fill(size_t elem, size_t count)
{
    struct hw_vec v = { .elem = elem };
    bool pushed = true;
    for (size_t i = 0; i < count && pushed; i++) {
        unsigned char *e = hw_vec_push(&v);
        pushed = e != NULL && e == (unsigned char *)v.data + i * elem;
        if (pushed)
            memset(e, (int)(i * 7 + 1), elem);
    }
    CHECK(pushed && v.nr == count && v.alloc >= count, "hw_vec elem %zu: %zu pushes (alloc %zu)",
          elem, count, v.alloc);
    bool intact = true;
    for (size_t i = 0; i < v.nr && intact; i++) {
        const unsigned char *e = (const unsigned char *)v.data + i * elem;
        intact = e[0] == (unsigned char)(i * 7 + 1) && e[elem - 1] == (unsigned char)(i * 7 + 1);
    }
    CHECK(intact, "hw_vec elem %zu: contents survive growth", elem);

    char *data = v.data;
    size_t alloc = v.alloc;
    hw_vec_clear(&v);
    CHECK(v.nr == 0 && v.data == data && v.alloc == alloc, "hw_vec_clear keeps the mapping");
    CHECK(hw_vec_push(&v) == data, "push after clear reuses the start");
    hw_vec_release(&v);
    CHECK(v.data == NULL && v.nr == 0 && v.alloc == 0, "hw_vec_release resets");
    CHECK(hw_vec_push(&v) != NULL && v.nr == 1, "push after release maps again");
    hw_vec_release(&v);
}

int main(void)
{
    test_conversions();
    test_truncation();
    test_log();
    test_map();
    vec_fill(1, 200000);
    vec_fill(24, 100000);
    vec_fill(4096, 100);
    vec_fill(100000, 20);
    return done();
}
