/* This file implements the unit test of analyzer/suppress.c: LeakSanitizer's template matching
 * (substring unless anchored, '*' runs, '^' and '$' anchors, the cases where LSan's greedy
 * matcher gives up and ours does not), the suppression file syntax (comments, blanks, CRLF,
 * unknown types, missing colons, empty patterns, unreadable files) and matching a stack of
 * hand-built locations by function, file and module, including the dynamic-linker rule that
 * only looks at the leaf frame. Prints TAP. */
// LINK: analyzer/suppress.c analyzer/usage.c
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "suppress.h"

#define MATCH(t, s) CHECK(suppress_match(t, s), "'%s' matches '%s'", t, s)
#define NO_MATCH(t, s) CHECK(!suppress_match(t, s), "'%s' does not match '%s'", t, s)

static void test_match(void)
{
    MATCH("foo", "foo");
    MATCH("foo", "xfooy");
    NO_MATCH("foo", "fo");
    MATCH("^foo", "foobar");
    NO_MATCH("^foo", "xfoo");
    MATCH("foo$", "xfoo");
    NO_MATCH("foo$", "foox");
    MATCH("^foo$", "foo");
    NO_MATCH("^foo$", "foo2");
    MATCH("*tls_get_addr*", "__tls_get_addr");
    MATCH("*tls_get_addr*", "tls_get_addr_tail");
    MATCH("a*b", "a--b");
    MATCH("a*b", "xxa--bxx");
    NO_MATCH("a*b", "b--a");
    MATCH("^a*b$", "ab");
    NO_MATCH("^a*b$", "abc");
    /* LSan's TemplateMatch stops at the first "b" and then fails the anchor; a glob does not. */
    MATCH("a*b$", "abxb");
    MATCH("foo*$", "foobar");
    MATCH("*", "x");
    MATCH("^*$", "x");
    MATCH("std::vector<*>::push_back", "std::vector<int, std::allocator<int> >::push_back(int&&)");
    MATCH("libfoo.so", "/usr/lib/x86_64-linux-gnu/libfoo.so.1");
    MATCH("^/usr/lib/", "/usr/lib/x86_64-linux-gnu/libfoo.so.1");
    NO_MATCH("^/usr/lib/", "/opt/usr/lib/libfoo.so");
    MATCH("a$b", "xa$by");   /* '$' before the end is an ordinary character */
    NO_MATCH("foo", "");
    NO_MATCH("*", "");
    CHECK(!suppress_match("foo", NULL), "nothing matches a NULL string");
    MATCH("**a**", "a");
    NO_MATCH("aaa*aaa", "aaaaa");
    MATCH("aaa*aaa", "aaaaaa");
}

static void test_parse(void)
{
    struct suppressions s = { 0 };
    const char *text = "# comment\n\n  leak:foo  \n\tleak:^bar$\r\nleak:*baz*\n   # indented comment\nleak:x y";
    CHECK(suppressions_parse(&s, text, "f.supp") == 0 && s.nr == 4, "four suppressions (got %zu)", s.nr);
    CHECK(s.nr == 4 && !strcmp(s.v[0].pattern, "foo") && !strcmp(s.v[1].pattern, "^bar$") &&
          !strcmp(s.v[2].pattern, "*baz*") && !strcmp(s.v[3].pattern, "x y"),
          "patterns trimmed of blanks and CR, inner blanks kept");
    CHECK(s.nr == 4 && !strcmp(s.v[0].origin, "f.supp:3") && !strcmp(s.v[3].origin, "f.supp:7"),
          "origins name file and line (%s, %s)", s.nr ? s.v[0].origin : "", s.nr == 4 ? s.v[3].origin : "");
    suppressions_release(&s);

    CHECK(suppressions_parse(&s, "", "empty") == 0 && s.nr == 0, "an empty file is no suppression");
    CHECK(suppressions_parse(&s, "race:foo\n", "f") < 0, "an unknown type is an error");
    CHECK(suppressions_parse(&s, "leak:a\nfoo\n", "f") < 0, "a line without a type is an error");
    CHECK(suppressions_parse(&s, "leak:\n", "f") < 0, "an empty pattern is an error");
    CHECK(suppressions_parse(&s, "leakage:foo\n", "f") < 0, "a type must be exactly 'leak'");
    suppressions_release(&s);

    CHECK(suppressions_read(&s, "/nonexistent/x.supp") < 0, "an unreadable file is an error");
    char path[] = "/tmp/t-suppress.XXXXXX";
    int fd = mkstemp(path);
    const char body[] = "leak:from_file\n";
    CHECK(fd >= 0 && write(fd, body, sizeof body - 1) == (ssize_t)(sizeof body - 1), "temp file written");
    close(fd);
    CHECK(suppressions_read(&s, path) == 0 && s.nr == 1 && !strcmp(s.v[0].pattern, "from_file"), "a file is read");
    unlink(path);
    suppressions_release(&s);
}

static struct module_info libc = { .path = "/lib/x86_64-linux-gnu/libc.so.6" };
static struct module_info app = { .path = "/srv/app/bin/server" };
static struct module_info ld = { .path = "/lib64/ld-linux-x86-64.so.2" };

static struct location loc(struct module_info *m, struct frame *f, int n)
{
    return (struct location){ .module = m, .nframes = n, .frames = f };
}

static void test_stack(void)
{
    struct suppressions s = { 0 };
    struct frame strdup_f[] = { { "strdup", NULL, 0 } };
    struct frame inl[] = { { "inlined_helper", "/src/helper.h", 3 }, { "cache_fill", "/src/cache.c", 40 } };
    struct frame main_f[] = { { "main", "/src/main.c", 9 } };
    struct location l0 = loc(&libc, strdup_f, 1), l1 = loc(&app, inl, 2), l2 = loc(&app, main_f, 1);
    struct location *stack[] = { &l0, &l1, &l2 };

    CHECK(suppressions_parse(&s, "leak:nothing_here\nleak:inlined_helper\nleak:cache\n", "t") == 0, "parsed");
    struct suppression *x = suppressions_match_stack(&s, stack, 3);
    CHECK(x && !strcmp(x->pattern, "inlined_helper"), "an inlined frame's function matches, first pattern wins");
    suppressions_release(&s);

    suppressions_parse(&s, "leak:helper.h$\n", "t");
    CHECK(suppressions_match_stack(&s, stack, 3), "a source file matches");
    suppressions_release(&s);

    suppressions_parse(&s, "leak:^strdup$\n", "t");
    CHECK(suppressions_match_stack(&s, stack, 3), "allocator wrapper frames are matched too");
    suppressions_release(&s);

    suppressions_parse(&s, "leak:bin/server\n", "t");
    CHECK(suppressions_match_stack(&s, stack + 1, 2), "a module path matches");
    suppressions_release(&s);

    suppressions_parse(&s, "leak:^main.c\nleak:mai$\n", "t");
    CHECK(!suppressions_match_stack(&s, stack, 3), "anchors hold against whole strings");
    CHECK(!suppressions_match_stack(&s, stack, 0), "an empty stack (allocation not sampled) never matches");
    suppressions_release(&s);

    suppressions_add_defaults(&s);
    CHECK(s.nr == 2, "two built-in suppressions");
    struct frame tls_f[] = { { "tls_get_addr_tail", NULL, 0 } };
    struct location lt = loc(&ld, tls_f, 1), lm = loc(&app, main_f, 1);
    struct location *tls_stack[] = { &lm, &lt };
    x = suppressions_match_stack(&s, tls_stack, 2);
    CHECK(x && !strcmp(x->pattern, "*tls_get_addr*"), "default: *tls_get_addr* anywhere on the stack");
    struct frame dl_f[] = { { "_dl_allocate_tls", NULL, 0 } };
    struct location ldl = loc(&ld, dl_f, 1);
    struct location *dl_leaf[] = { &ldl, &lm }, *dl_caller[] = { &lm, &ldl };
    x = suppressions_match_stack(&s, dl_leaf, 2);
    CHECK(x && x->linker_leaf, "default: a block the dynamic linker allocated itself");
    CHECK(!suppressions_match_stack(&s, dl_caller, 2), "the dynamic linker further up the stack suppresses nothing");
    struct module_info musl = { .path = "/lib/ld-musl-x86_64.so.1" };
    struct location lmusl = loc(&musl, dl_f, 1);
    struct location *musl_leaf[] = { &lmusl };
    CHECK(!suppressions_match_stack(&s, musl_leaf, 1), "musl's loader (which is libc) is not the dynamic linker");
    suppressions_release(&s);
}

int main(void)
{
    test_match();
    test_parse();
    test_stack();
    return done();
}
