/* This file implements the unit test of preload/options.c: the HEAPWATCH_* parser. Sizes with
 * K/M/G suffixes, plain numbers, range limits, bools, signals by number, name and SIGRTMIN+n,
 * strings, unknown names, and the rule that a bad value keeps the default and prints exactly
 * one "heapwatch: " line on stderr (captured by putting a temp file over fd 2). Also
 * hw_options_render. Prints TAP. */
// LINK: preload/options.c preload/sys.c
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"
#include "options.h"

static struct hw_options defaults;
static char err[4096];  /* what the last parse printed on stderr */
static int err_lines;

/* Parse envp from the defaults, capturing stderr into err. */
static void parse(char **envp)
{
    hw_opt = defaults;
    char path[] = "/tmp/t-options.XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    if (fd < 0 || saved < 0) {
        diag("cannot capture stderr");
        exit(1);
    }
    unlink(path);
    dup2(fd, 2);
    hw_options_parse(envp);
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, err, sizeof err - 1, 0);
    close(fd);
    err[n > 0 ? n : 0] = '\0';
    err_lines = 0;
    for (const char *p = err; *p; p++)
        err_lines += *p == '\n';
}

/* Parse one NAME=value. */
static void parse1(const char *var)
{
    char *envp[] = { (char *)var, NULL };
    parse(envp);
}

/* err is exactly one line, starting "heapwatch: " and mentioning `what`. */
static bool one_warning(const char *what)
{
    size_t len = strlen(err);
    return err_lines == 1 && !strncmp(err, "heapwatch: ", 11) && len && err[len - 1] == '\n' &&
           strstr(err, what) != NULL;
}

static void show_err(void)
{
    if (err[0])
        diag("stderr: %.*s", (int)strcspn(err, "\n"), err);
}

/* NAME=value parses to `want` in `field`, silently. */
#define ACCEPT(var, field, want)                                                               \
    do {                                                                                       \
        parse1(var);                                                                           \
        CHECK(hw_opt.field == (want) && !err[0], "%s -> %llu (got %llu)", var,                 \
              (unsigned long long)(want), (unsigned long long)hw_opt.field);                   \
        show_err();                                                                            \
    } while (0)

/* NAME=value is refused: the field keeps its default and one warning names the variable. */
#define REJECT(var, field)                                                                     \
    do {                                                                                       \
        char name_[64];                                                                        \
        snprintf(name_, sizeof name_, "%.*s", (int)strcspn(var, "="), var);                    \
        parse1(var);                                                                           \
        CHECK(hw_opt.field == defaults.field && one_warning(name_),                            \
              "%s refused: default kept, one warning (%d lines)", var, err_lines);             \
        if (err_lines != 1) show_err();                                                        \
    } while (0)

static void test_defaults(void)
{
    defaults = hw_opt;
    CHECK(hw_opt.sample_rate == 524288 && hw_opt.signal == SIGUSR2 && hw_opt.interval == 0 &&
          hw_opt.at_exit == 1 && hw_opt.children == 1 && hw_opt.objects == 1 &&
          hw_opt.stack_depth == 64 && hw_opt.seed == 0 && hw_opt.root_pid == 0 &&
          !strcmp(hw_opt.out, "heapwatch.%p.db"),
          "defaults from settings.def");

    parse(NULL);
    CHECK(!memcmp(&hw_opt, &defaults, sizeof defaults) && !err[0], "NULL envp: nothing changes");
    char *empty[] = { NULL };
    parse(empty);
    CHECK(!memcmp(&hw_opt, &defaults, sizeof defaults) && !err[0], "empty envp: nothing changes");
    char *others[] = { "PATH=/bin", "HEAPWATCHX=1", "HEAPWATCH", "HEAPWATCH_SEED", "heapwatch_seed=3",
                       "HEAPWATCH_LIB=/x/libheapwatch.so", "HEAPWATCH_SUPPRESSIONS=/x/supp.txt",
                       "X_HEAPWATCH_SEED=4", NULL };
    parse(others);
    CHECK(!memcmp(&hw_opt, &defaults, sizeof defaults) && !err[0],
          "other variables, the analyzer's HEAPWATCH_LIB and HEAPWATCH_SUPPRESSIONS, and names without '=' are ignored silently");
    show_err();
}

static void test_sizes(void)
{
    ACCEPT("HEAPWATCH_SAMPLE_RATE=4096", sample_rate, 4096);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=0", sample_rate, 0);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=1", sample_rate, 1);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=007", sample_rate, 7);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=16K", sample_rate, 16384);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=16k", sample_rate, 16384);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=16KB", sample_rate, 16384);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=16kb", sample_rate, 16384);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=16KiB", sample_rate, 16384);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=2M", sample_rate, 2u << 20);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=2m", sample_rate, 2u << 20);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=3MiB", sample_rate, 3u << 20);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=1G", sample_rate, 1u << 30);
    ACCEPT("HEAPWATCH_SAMPLE_RATE=1024G", sample_rate, 1ull << 40);  /* the limit */
    ACCEPT("HEAPWATCH_SAMPLE_RATE=1099511627776", sample_rate, 1ull << 40);

    REJECT("HEAPWATCH_SAMPLE_RATE=1025G", sample_rate);  /* over 2^40 */
    REJECT("HEAPWATCH_SAMPLE_RATE=1099511627777", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=99999999999999999999", sample_rate);  /* overflows 64 bits */
    REJECT("HEAPWATCH_SAMPLE_RATE=17179869184G", sample_rate);          /* overflows the shift */
    REJECT("HEAPWATCH_SAMPLE_RATE=", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=abc", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=12x", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=1.5M", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=-1", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=+1", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE= 16", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=16 ", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=16KK", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=16T", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=16Ki", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=16KBB", sample_rate);
    REJECT("HEAPWATCH_SAMPLE_RATE=0x10", sample_rate);

    /* A suffix with no number in front. */
    parse1("HEAPWATCH_SAMPLE_RATE=K");
    CHECK(hw_opt.sample_rate == defaults.sample_rate && one_warning("SAMPLE_RATE"),
               "HEAPWATCH_SAMPLE_RATE=K refused (got %llu)", (unsigned long long)hw_opt.sample_rate);
    parse1("HEAPWATCH_SAMPLE_RATE=MB");
    CHECK(hw_opt.sample_rate == defaults.sample_rate && one_warning("SAMPLE_RATE"),
               "HEAPWATCH_SAMPLE_RATE=MB refused (got %llu)", (unsigned long long)hw_opt.sample_rate);
}

static void test_uints(void)
{
    ACCEPT("HEAPWATCH_INTERVAL=10", interval, 10);
    ACCEPT("HEAPWATCH_INTERVAL=31536000", interval, 31536000);  /* one year, the limit */
    REJECT("HEAPWATCH_INTERVAL=31536001", interval);
    REJECT("HEAPWATCH_INTERVAL=10K", interval);  /* no suffixes on plain numbers */
    REJECT("HEAPWATCH_INTERVAL=10s", interval);

    ACCEPT("HEAPWATCH_STACK_DEPTH=1", stack_depth, 1);
    ACCEPT("HEAPWATCH_STACK_DEPTH=16", stack_depth, 16);
    ACCEPT("HEAPWATCH_STACK_DEPTH=128", stack_depth, 128);
    REJECT("HEAPWATCH_STACK_DEPTH=0", stack_depth);
    REJECT("HEAPWATCH_STACK_DEPTH=129", stack_depth);
    REJECT("HEAPWATCH_STACK_DEPTH=1000", stack_depth);
    REJECT("HEAPWATCH_STACK_DEPTH=-3", stack_depth);
    REJECT("HEAPWATCH_STACK_DEPTH=4294967360", stack_depth);  /* 2^32 + 64: no truncation */

    ACCEPT("HEAPWATCH_SEED=12345", seed, 12345);
    ACCEPT("HEAPWATCH_SEED=18446744073709551609", seed, 18446744073709551609ull);
    REJECT("HEAPWATCH_SEED=18446744073709551616", seed);  /* 2^64 */
    parse1("HEAPWATCH_SEED=18446744073709551615");
    CHECK(hw_opt.seed == UINT64_MAX && !err[0],
               "HEAPWATCH_SEED=18446744073709551615 (UINT64_MAX) accepted");
    ACCEPT("HEAPWATCH_ROOT_PID=4242", root_pid, 4242);
}

static void test_bools(void)
{
    static const char *const yes[] = { "1", "true", "yes", "on", "TRUE", "Yes", "oN" };
    static const char *const no[] = { "0", "false", "no", "off", "FALSE", "No", "OFF" };
    char var[64];
    for (unsigned i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        snprintf(var, sizeof var, "HEAPWATCH_OBJECTS=%s", no[i]);
        ACCEPT(var, objects, 0);
    }
    for (unsigned i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        defaults.objects = 0;  /* so that a 1 is a change */
        snprintf(var, sizeof var, "HEAPWATCH_OBJECTS=%s", yes[i]);
        ACCEPT(var, objects, 1);
        defaults.objects = 1;
    }
    ACCEPT("HEAPWATCH_AT_EXIT=0", at_exit, 0);
    ACCEPT("HEAPWATCH_CHILDREN=no", children, 0);
    REJECT("HEAPWATCH_AT_EXIT=2", at_exit);
    REJECT("HEAPWATCH_AT_EXIT=", at_exit);
    REJECT("HEAPWATCH_AT_EXIT=y", at_exit);
    REJECT("HEAPWATCH_AT_EXIT=enable", at_exit);
    REJECT("HEAPWATCH_CHILDREN=truee", children);
    REJECT("HEAPWATCH_CHILDREN= on", children);
}

static void test_signals(void)
{
    char var[64];
    ACCEPT("HEAPWATCH_SIGNAL=10", signal, 10);
    ACCEPT("HEAPWATCH_SIGNAL=USR1", signal, SIGUSR1);
    ACCEPT("HEAPWATCH_SIGNAL=SIGUSR1", signal, SIGUSR1);
    ACCEPT("HEAPWATCH_SIGNAL=sigusr1", signal, SIGUSR1);
    ACCEPT("HEAPWATCH_SIGNAL=PROF", signal, SIGPROF);
    ACCEPT("HEAPWATCH_SIGNAL=SIGWINCH", signal, SIGWINCH);
    ACCEPT("HEAPWATCH_SIGNAL=SIGRTMIN", signal, (unsigned)SIGRTMIN);
    ACCEPT("HEAPWATCH_SIGNAL=SIGRTMIN+3", signal, (unsigned)SIGRTMIN + 3);
    ACCEPT("HEAPWATCH_SIGNAL=rtmin+0", signal, (unsigned)SIGRTMIN);
    snprintf(var, sizeof var, "HEAPWATCH_SIGNAL=SIGRTMIN+%d", SIGRTMAX - SIGRTMIN);
    ACCEPT(var, signal, (unsigned)SIGRTMAX);
    snprintf(var, sizeof var, "HEAPWATCH_SIGNAL=%d", SIGRTMAX);
    ACCEPT(var, signal, (unsigned)SIGRTMAX);
    ACCEPT("HEAPWATCH_SIGNAL=off", signal, 0);
    ACCEPT("HEAPWATCH_SIGNAL=OFF", signal, 0);
    ACCEPT("HEAPWATCH_SIGNAL=none", signal, 0);
    ACCEPT("HEAPWATCH_SIGNAL=0", signal, 0);

    REJECT("HEAPWATCH_SIGNAL=9", signal);  /* SIGKILL */
    REJECT("HEAPWATCH_SIGNAL=19", signal); /* SIGSTOP */
    snprintf(var, sizeof var, "HEAPWATCH_SIGNAL=%d", SIGRTMAX + 1);
    REJECT(var, signal);
    snprintf(var, sizeof var, "HEAPWATCH_SIGNAL=SIGRTMIN+%d", SIGRTMAX - SIGRTMIN + 1);
    REJECT(var, signal);
    REJECT("HEAPWATCH_SIGNAL=SIGRTMIN+", signal);
    REJECT("HEAPWATCH_SIGNAL=SIGRTMIN-1", signal);
    REJECT("HEAPWATCH_SIGNAL=SIGRTMINX", signal);
    REJECT("HEAPWATCH_SIGNAL=SIGRTMIN+1x", signal);
    REJECT("HEAPWATCH_SIGNAL=KILL", signal);
    REJECT("HEAPWATCH_SIGNAL=SIGFOO", signal);
    REJECT("HEAPWATCH_SIGNAL=SIG", signal);
    REJECT("HEAPWATCH_SIGNAL=", signal);
    REJECT("HEAPWATCH_SIGNAL=-1", signal);
    REJECT("HEAPWATCH_SIGNAL=USR2 ", signal);

    /* An offset so large that SIGRTMIN + n wraps around 2^64 to 9 (SIGKILL). */
    snprintf(var, sizeof var, "HEAPWATCH_SIGNAL=SIGRTMIN+%llu",
             (unsigned long long)(UINT64_MAX - (uint64_t)SIGRTMIN + 1 + SIGKILL));
    parse1(var);
    CHECK(hw_opt.signal == defaults.signal && one_warning("SIGNAL"),
               "%s refused (got %llu)", var, (unsigned long long)hw_opt.signal);
}

static void test_strings_and_names(void)
{
    /* nginx rewrites its environment block to set its process title: settings are copies. */
    char var[] = "HEAPWATCH_OUT=/tmp/x.%p.db", snap[] = "HEAPWATCH_SNAPSHOT=inplace";
    char *envp[] = { var, snap, NULL };
    parse(envp);
    memset(var, 'x', sizeof var - 1);
    memset(snap, 0, sizeof snap);
    CHECK(!strcmp(hw_opt.out, "/tmp/x.%p.db") && !strcmp(hw_opt.snapshot, "inplace") && !err[0],
          "string settings are copied: rewriting the environment block changes nothing");
    static char toolong[5000];
    memcpy(toolong, "HEAPWATCH_OUT=", 14);
    memset(toolong + 14, 'a', sizeof toolong - 15);
    parse1(toolong);
    CHECK(!strcmp(hw_opt.out, defaults.out) && one_warning("HEAPWATCH_OUT"),
          "a path longer than 4 KiB is refused, default kept");
    parse1("HEAPWATCH_OUT=");
    CHECK(!strcmp(hw_opt.out, defaults.out) && one_warning("HEAPWATCH_OUT"),
          "empty HEAPWATCH_OUT refused, default kept");
    char *eq[] = { "HEAPWATCH_OUT=a=b", NULL };
    parse(eq);
    CHECK(!strcmp(hw_opt.out, "a=b") && !err[0], "a value may contain '='");

    parse1("HEAPWATCH_FOO=1");
    CHECK(!memcmp(&hw_opt, &defaults, sizeof defaults) && one_warning("HEAPWATCH_FOO"),
          "unknown HEAPWATCH_FOO: one warning, nothing changes");
    show_err();
    parse1("HEAPWATCH_seed=5");
    CHECK(hw_opt.seed == 0 && one_warning("HEAPWATCH_seed"), "names are case-sensitive");
    parse1("HEAPWATCH_=5");
    CHECK(one_warning("HEAPWATCH_"), "HEAPWATCH_=5 is an unknown (empty) name");
    char longvar[300];
    memset(longvar, 'A', sizeof longvar);
    memcpy(longvar, "HEAPWATCH_", 10);
    strcpy(longvar + 250, "=1");
    parse1(longvar);
    CHECK(one_warning("HEAPWATCH_AAAA") && strlen(err) < 200,
          "a 240-character unknown name: one bounded warning");
    char sample_long[300];
    snprintf(sample_long, sizeof sample_long, "HEAPWATCH_SAMPLE_RATE%0200d=1", 0);
    parse1(sample_long);
    CHECK(hw_opt.sample_rate == defaults.sample_rate && one_warning("HEAPWATCH_SAMPLE_RATE0"),
          "a long name starting with a known one is not that one");

    /* Several variables: the last one wins, each bad one warns once, good ones still apply. */
    char *many[] = { "HEAPWATCH_SEED=1", "HEAPWATCH_SEED=2", "HEAPWATCH_BAR=x",
                     "HEAPWATCH_STACK_DEPTH=999", "HEAPWATCH_INTERVAL=5", "HEAPWATCH_AT_EXIT=maybe",
                     "HEAPWATCH_SAMPLE_RATE=1M", NULL };
    parse(many);
    CHECK(hw_opt.seed == 2 && hw_opt.interval == 5 && hw_opt.sample_rate == (1u << 20) &&
          hw_opt.stack_depth == 64 && hw_opt.at_exit == 1,
          "mixed envp: good values applied, bad ones keep the defaults");
    CHECK(err_lines == 3 && strstr(err, "HEAPWATCH_BAR") && strstr(err, "HEAPWATCH_STACK_DEPTH") &&
          strstr(err, "HEAPWATCH_AT_EXIT"), "one warning line for each of the 3 bad variables");
    bool prefixed = true;
    for (const char *p = err; *p; p = strchr(p, '\n') + 1)
        prefixed = prefixed && !strncmp(p, "heapwatch: ", 11);
    CHECK(prefixed, "every warning line starts with \"heapwatch: \"");
}

static void test_render(void)
{
    hw_opt = defaults;
    char buf[1024];
    hw_options_render(buf, sizeof buf);
    CHECK(!strcmp(buf, "SAMPLE_RATE=524288\nOUT=heapwatch.%p.db\nSIGNAL=12\nINTERVAL=0\n"
                       "AT_EXIT=1\nCHILDREN=1\nEVENTS=0\nOBJECTS=1\nBLOCKS=auto\nSNAPSHOT=fork\nSTACK_DEPTH=64\nSEED=0\nROOT_PID=0\nMANIFEST=\n"),
          "render of the defaults");
    if (strncmp(buf, "SAMPLE_RATE", 11))
        diag("got: %s", buf);
    size_t full = strlen(buf);
    unsigned bad = 0;
    for (size_t size = 1; size <= full + 2; size++) {
        char small[1100];
        memset(small, '#', sizeof small);
        hw_options_render(small, size);
        size_t len = strnlen(small, size);
        if (len != (full < size - 1 ? full : size - 1) || strncmp(small, buf, len) ||
            small[size] != '#')
            bad++;
    }
    CHECK(!bad, "render truncates at every size, NUL-terminated, no overrun (%u bad)", bad);
}

int main(void)
{
    test_defaults();
    test_sizes();
    test_uints();
    test_bools();
    test_signals();
    test_strings_and_names();
    test_render();
    return done();
}
