/* This file implements the HEAPWATCH_* parser. It runs once, on the first interposed call,
 * possibly before libc has finished starting, so it reads the environment array it is given
 * and never allocates. A bad value is reported once and the default kept: the traced program
 * is never made to fail because of a typo. Context: HOOKSAFE. */
#define _GNU_SOURCE
#include "options.h"

#include <signal.h>
#include <string.h>
#include "sys.h"

struct hw_options hw_opt = {
#define HW_OPT(kind, field, name, def, help) .field = def,
#include "../schema/settings.def"
#undef HW_OPT
};

static bool parse_uint(const char *s, uint64_t *out, bool suffixes)
{
    const char *digits = s;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > UINT64_MAX / 10 || (v == UINT64_MAX / 10 && d > UINT64_MAX % 10))
            return false;
        v = v * 10 + d;
    }
    if (s == digits)
        return false;  /* "K" alone is not a size */
    if (suffixes && *s) {
        int shift = 0;
        switch (*s | 0x20) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        default: return false;
        }
        s++;
        if ((*s | 0x20) == 'b' || (*s == 'i' && (s[1] | 0x20) == 'b'))
            s += *s == 'i' ? 2 : 1;
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
    }
    if (*s)
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, uint64_t *out)
{
    static const char *const yes[] = { "1", "true", "yes", "on" }, *const no[] = { "0", "false", "no", "off" };
    for (unsigned i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) { *out = 1; return true; }
        if (!strcasecmp(s, no[i])) { *out = 0; return true; }
    }
    return false;
}

static bool parse_signal(const char *s, uint64_t *out)
{
    static const struct { const char *name; int sig; } names[] = {
        { "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "USR1", SIGUSR1 },
        { "USR2", SIGUSR2 }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "PWR", SIGPWR },
        { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "URG", SIGURG }, { "XCPU", SIGXCPU },
    };
    uint64_t v;
    if (!strcasecmp(s, "off") || !strcasecmp(s, "none")) { *out = 0; return true; }
    if (parse_uint(s, &v, false)) {
        /* 32 and 33 belong to glibc (NPTL); SIGKILL and SIGSTOP cannot be caught. */
        if (v >= (uint64_t)SIGRTMAX + 1 || v == SIGKILL || v == SIGSTOP || (v > 31 && v < (uint64_t)SIGRTMIN))
            return false;
        *out = v;
        return true;
    }
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    if (!strncasecmp(s, "RTMIN", 5)) {
        uint64_t off = 0;
        if (s[5] && (s[5] != '+' || !parse_uint(s + 6, &off, false)))
            return false;
        if (off > (uint64_t)(SIGRTMAX - SIGRTMIN))
            return false;
        *out = (uint64_t)SIGRTMIN + off;
        return true;
    }
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name)) { *out = (uint64_t)names[i].sig; return true; }
    return false;
}

/* Semantic limits beyond the syntax. */
static bool in_range(const char *name, uint64_t v)
{
    if (!strcmp(name, "STACK_DEPTH"))
        return v >= 1 && v <= HW_MAX_DEPTH;
    if (!strcmp(name, "INTERVAL"))
        return v <= 86400 * 365;
    if (!strcmp(name, "SAMPLE_RATE"))
        return v <= (1ull << 40);
    return true;
}

#define KIND_SIZE 0
#define KIND_UINT 1
#define KIND_BOOL 2
#define KIND_SIGNAL 3
#define KIND_STRING 4

/* String settings are copied: a program may rewrite its environment block (nginx does, to
 * set its process title), and a pointer into it would then name another file. */
#define STRING_MAX 4096
#define HW_OPT(kind, field, name, def, help) static char copy_##field[KIND_##kind == KIND_STRING ? STRING_MAX : 1];
#include "../schema/settings.def"
#undef HW_OPT

static bool copy_string(char *dst, const char *value, const char **out)
{
    size_t len = strlen(value);
    if (len >= STRING_MAX)
        return false;
    memcpy(dst, value, len + 1);
    *out = dst;
    return true;
}

static bool set_option(const char *name, const char *value)
{
    uint64_t v = 0;
    const char *str = NULL;
#define HW_OPT(kind, field, oname, def, help)                                                   \
    if (!strcmp(name, oname)) {                                                                \
        bool ok;                                                                               \
        switch (KIND_##kind) {                                                                 \
        case KIND_SIZE: ok = parse_uint(value, &v, true) && in_range(oname, v); break;         \
        case KIND_UINT: ok = parse_uint(value, &v, false) && in_range(oname, v); break;        \
        case KIND_BOOL: ok = parse_bool(value, &v); break;                                     \
        case KIND_SIGNAL: ok = parse_signal(value, &v); break;                                 \
        default: ok = *value != '\0' && copy_string(copy_##field, value, &str); break;           \
        }                                                                                      \
        if (!ok) {                                                                             \
            hw_log("ignoring HEAPWATCH_%s='%s': %s; using the default", oname, value, help);   \
            return true;                                                                       \
        }                                                                                      \
        if (KIND_##kind == KIND_STRING) memcpy(&hw_opt.field, &str, sizeof str);               \
        else memcpy(&hw_opt.field, &v, sizeof v);                                              \
        return true;                                                                           \
    }
#include "../schema/settings.def"
#undef HW_OPT
    return false;
}

void hw_options_parse(char **envp)
{
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "HEAPWATCH_", 10))
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        char name[64];
        size_t len = (size_t)(eq - (*e + 10));
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, *e + 10, len);
        name[len] = '\0';
        if (!strcmp(name, "LIB") || !strcmp(name, "SUPPRESSIONS"))  /* the analyzer's, not ours */
            continue;
        if (!set_option(name, eq + 1))
            hw_log("ignoring unknown variable HEAPWATCH_%s", name);
    }
}

void hw_options_render(char *buf, size_t size)
{
    size_t n = 0;
    if (!size)
        return;
    buf[0] = '\0';
#define HW_OPT(kind, field, oname, def, help)                                                  \
    if (n < size) {                                                                           \
        if (KIND_##kind == KIND_STRING) {                                                     \
            const char *s; memcpy(&s, &hw_opt.field, sizeof s);                               \
            n += hw_fmt(buf + n, size - n, "%s=%s\n", oname, s);                              \
        } else {                                                                              \
            uint64_t v; memcpy(&v, &hw_opt.field, sizeof v);                                  \
            n += hw_fmt(buf + n, size - n, "%s=%llu\n", oname, (unsigned long long)v);        \
        }                                                                                     \
    }
#include "../schema/settings.def"
#undef HW_OPT
}
