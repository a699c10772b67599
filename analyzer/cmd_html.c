/* This file implements `heapwatch html`: one self-contained HTML file with the reports of a
 * snapshot (flame graphs of every sample type, top, leaks, the snapshot list, growth, owners,
 * types, the timeline when there is an event log, and the diff against --base). The page
 * (analyzer/html/report.html, embedded at build time) lays out the analyzer's own --json
 * output of each report: this command runs them (as child processes of this same binary, so
 * each is exactly what `heapwatch REPORT --json` prints) and puts their output in the page,
 * gzip'd and base64'd when it is large. A report that cannot be made (no event log, a
 * snapshot without a heap walk) leaves its view with the reason. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include "cmd.h"
#include "db.h"
#include "options.h"
#include "usage.h"

extern char **environ;
extern const char hw_report_html[];

#define COMPRESS_ABOVE (1u << 20)   /* data larger than this goes gzip'd and base64'd */

static const struct cmd_usage usage_html = {
    "html", "[SNAP]", "Write one self-contained HTML file (no network, opens from file://) with the reports of a\n"
    "snapshot: flame graphs of every sample type (search, click to zoom), top, leaks, the\n"
    "snapshot list, growth, owners, types, the event log's timeline, and with --base the diff\n"
    "of two snapshots as a differential flame graph. The numbers are the reports' --json.",
    SNAP_OPERAND_HELP, NULL,
};

struct buf {
    char *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *s, size_t n)
{
    ALLOC_GROW(b->p, b->n + n + 1, b->cap);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* Run `heapwatch ARGS...` (this binary), its standard output into *out; its first line of
 * standard error into *why when it fails. True when it exits 0. */
static bool run_report(char *const args[], struct buf *out, char **why)
{
    int pipefd[2];
    FILE *err = tmpfile();
    if (!err || pipe2(pipefd, O_CLOEXEC) < 0)
        die(EXIT_SYSTEM, "cannot run a report: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fileno(err), STDERR_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc)
        die(EXIT_SYSTEM, "cannot run a report: %s", strerror(rc));
    char chunk[65536];
    ssize_t r;
    out->n = 0;
    while ((r = read(pipefd[0], chunk, sizeof chunk)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0)
            put(out, chunk, (size_t)r);
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && out->n;
    if (!ok) {
        char line[1024] = "";
        rewind(err);
        if (!fgets(line, sizeof line, err))
            snprintf(line, sizeof line, "exit status %d", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
        line[strcspn(line, "\n")] = '\0';
        const char *msg = strncmp(line, "heapwatch: error: ", 18) ? line : line + 18;
        *why = xstrdup(msg);
    }
    fclose(err);
    return ok;
}

/* A JSON string of s. */
static void put_json_string(struct buf *b, const char *s)
{
    puts_(b, "\"");
    for (; *s; s++) {
        char esc[8];
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\', esc[1] = *s, esc[2] = '\0';
            puts_(b, esc);
        } else if ((unsigned char)*s < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned char)*s);
            puts_(b, esc);
        } else {
            put(b, s, 1);
        }
    }
    puts_(b, "\"");
}

struct report {
    const char *key;
    char *args[12];
};

/* Gzip (RFC 1952) of in, base64'd, as {"gzip":"..."}. */
static void put_compressed(struct buf *b, const struct buf *in)
{
    z_stream zs = { 0 };
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die(EXIT_SYSTEM, "cannot compress the report's data");
    uLong cap = deflateBound(&zs, (uLong)in->n);
    unsigned char *z = xmalloc(cap);
    zs.next_in = (Bytef *)in->p;
    zs.avail_in = (uInt)in->n;
    zs.next_out = z;
    zs.avail_out = (uInt)cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        die(EXIT_SYSTEM, "cannot compress the report's data");
    size_t n = zs.total_out;
    deflateEnd(&zs);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    puts_(b, "{\"gzip\":\"");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)z[i] << 16 | (i + 1 < n ? (unsigned)z[i + 1] << 8 : 0) | (i + 2 < n ? z[i + 2] : 0);
        char q[4] = { b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=', i + 2 < n ? b64[v & 63] : '=' };
        put(b, q, 4);
    }
    puts_(b, "\"}");
    free(z);
}

int cmd_html(int argc, char **argv)
{
    const char *output = NULL, *base = NULL;
    const struct opt opts[] = {
        OPT_STRING('o', "output", &output, "FILE", "write to FILE (default: standard output, unless a terminal)"),
        OPT_STRING(0, "base", &base, "SNAP", "also the diff from SNAP to this one (a differential flame graph)"),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_html, 0);
    if (argc > 1)
        die_with_usage(opts, &usage_html, "too many arguments");
    bool to_stdout = !output || !strcmp(output, "-");
    if (to_stdout && isatty(STDOUT_FILENO))
        die(EXIT_USAGE, "not writing HTML to a terminal: use -o FILE");
    /* Resolve the snapshots here, so that a bad name is one message, and every report names
     * the same database and ids. */
    int64_t snap, base_snap = 0;
    struct hwdb *db = db_open_snapshot_spec(argc ? argv[0] : "latest", &snap);
    char *path = xstrdup(db->path);
    db_close(db);
    char *spec = xasprintf("%s:%lld", path, (long long)snap), *base_spec = NULL;
    if (base) {
        struct hwdb *bdb = db_open_snapshot_spec(base, &base_snap);
        base_spec = xasprintf("%s:%lld", bdb->path, (long long)base_snap);
        db_close(bdb);
    }
    struct report reports[] = {
        { "ls", { "heapwatch", "ls", path, "--json", NULL } },
        { "profile", { "heapwatch", "export", "-f", "tree", spec, NULL } },
        { "top", { "heapwatch", "top", spec, "--by", "function", "--json", NULL } },
        { "leaks", { "heapwatch", "leaks", spec, "--json", NULL } },
        { "growth", { "heapwatch", "growth", path, "--all", "--json", NULL } },
        { "owners", { "heapwatch", "owners", spec, "--json", NULL } },
        { "types", { "heapwatch", "types", spec, "--json", NULL } },
        { "timeline", { "heapwatch", "timeline", path, "--points", "200", "--json", NULL } },
        { "diff", { "heapwatch", "diff", base_spec, spec, "--by", "function", "--json", NULL } },
        { "base_profile", { "heapwatch", "export", "-f", "tree", base_spec, NULL } },
    };
    struct buf data = { 0 }, errors = { 0 }, out = { 0 };
    puts_(&data, "{\"db\":");
    put_json_string(&data, path);
    for (size_t i = 0; i < sizeof reports / sizeof reports[0]; i++) {
        struct report *r = &reports[i];
        if ((!strcmp(r->key, "diff") || !strcmp(r->key, "base_profile")) && !base_spec)
            continue;
        char *why = NULL;
        if (run_report(r->args, &out, &why)) {
            puts_(&data, ",\"");
            puts_(&data, r->key);
            puts_(&data, "\":");
            put(&data, out.p, out.n);
        } else {
            puts_(&errors, errors.n ? ",\"" : "\"");
            puts_(&errors, r->key);
            puts_(&errors, "\":");
            put_json_string(&errors, why);
            free(why);
        }
    }
    puts_(&data, ",\"errors\":{");
    if (errors.n)
        put(&data, errors.p, errors.n);
    puts_(&data, "}}");
    struct buf embed = { 0 };
    if (data.n > COMPRESS_ABOVE)
        put_compressed(&embed, &data);
    else
        put(&embed, data.p, data.n);
    /* Inside <script>, "</script" or "<!--" would end or bend the element: JSON has '<' only
     * in strings, where \u003c means the same. */
    struct buf safe = { 0 };
    for (size_t i = 0; i < embed.n; i++) {
        if (embed.p[i] == '<')
            puts_(&safe, "\\u003c");
        else
            put(&safe, embed.p + i, 1);
    }
    const char *mark = strstr(hw_report_html, "/*DATA*/");
    if (!mark)
        BUG("the report page has no data mark");
    FILE *f = to_stdout ? stdout : fopen(output, "w");
    if (!f)
        die(EXIT_SYSTEM, "cannot write '%s': %s", output, strerror(errno));
    fwrite(hw_report_html, 1, (size_t)(mark - hw_report_html), f);
    fwrite(safe.p, 1, safe.n, f);
    fputs(mark + strlen("/*DATA*/"), f);
    if (fflush(f) || ferror(f) || (!to_stdout && fclose(f)))
        die(EXIT_SYSTEM, "cannot write '%s': %s", to_stdout ? "standard output" : output, strerror(errno));
    if (!to_stdout)
        fprintf(stderr, "heapwatch: wrote %s (%zu KiB): open it in a browser\n", output, (safe.n + 1023) / 1024);
    free(data.p);
    free(errors.p);
    free(out.p);
    free(embed.p);
    free(safe.p);
    free(spec);
    free(base_spec);
    free(path);
    return 0;
}
