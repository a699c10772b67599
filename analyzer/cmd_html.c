/* This file implements `heapwatch html` and `heapwatch web` (which serves the same page): one self-contained HTML file with the reports of a
 * snapshot (flame graphs of every sample type, top, leaks, the snapshot list, growth, owners,
 * types, the timeline when there is an event log, and the diff against --base). The page
 * (analyzer/html/report.html, embedded at build time) lays out the analyzer's own --json
 * output of each report: this command runs them (as child processes of this same binary, so
 * each is exactly what `heapwatch REPORT --json` prints) and puts their output in the page,
 * gzip'd and base64'd when it is large. A report that cannot be made (no event log, a
 * snapshot without a heap walk) leaves its view with the reason. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/* The page of snapshot `spec` ("DB:ID") of database `path`, with the diff from `base_spec`
 * (NULL: none), into *page. */
static void build_page(const char *path, const char *spec, const char *base_spec, struct buf *page)
{
    struct report reports[] = {
        { "ls", { "heapwatch", "ls", (char *)path, "--json", NULL } },
        { "profile", { "heapwatch", "export", "-f", "tree", (char *)spec, NULL } },
        { "top", { "heapwatch", "top", (char *)spec, "--by", "function", "--json", NULL } },
        { "leaks", { "heapwatch", "leaks", (char *)spec, "--json", NULL } },
        { "growth", { "heapwatch", "growth", (char *)path, "--all", "--json", NULL } },
        { "owners", { "heapwatch", "owners", (char *)spec, "--json", NULL } },
        { "types", { "heapwatch", "types", (char *)spec, "--json", NULL } },
        { "timeline", { "heapwatch", "timeline", (char *)path, "--points", "200", "--json", NULL } },
        { "diff", { "heapwatch", "diff", (char *)base_spec, (char *)spec, "--by", "function", "--json", NULL } },
        { "base_profile", { "heapwatch", "export", "-f", "tree", (char *)base_spec, NULL } },
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
    const char *mark = strstr(hw_report_html, "/*DATA*/");
    if (!mark)
        BUG("the report page has no data mark");
    page->n = 0;
    put(page, hw_report_html, (size_t)(mark - hw_report_html));
    /* Inside <script>, "</script" or "<!--" would end or bend the element: JSON has '<' only
     * in strings, where \u003c means the same. */
    for (size_t i = 0, from = 0; i <= embed.n; i++) {
        if (i == embed.n || embed.p[i] == '<') {
            put(page, embed.p + from, i - from);
            if (i < embed.n)
                puts_(page, "\\u003c");
            from = i + 1;
        }
    }
    puts_(page, mark + strlen("/*DATA*/"));
    free(data.p);
    free(errors.p);
    free(out.p);
    free(embed.p);
}

/* Resolve a snapshot name to "DB:ID" (dies on a bad one); the database's path in *path. */
static char *resolve(const char *name, char **path)
{
    int64_t snap;
    struct hwdb *db = db_open_snapshot_spec(name, &snap);
    char *spec = xasprintf("%s:%lld", db->path, (long long)snap);
    if (path)
        *path = xstrdup(db->path);
    db_close(db);
    return spec;
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
    /* Resolved here, so that a bad name is one message and every report names the same
     * database and ids. */
    char *path, *spec = resolve(argc ? argv[0] : "latest", &path), *base_spec = base ? resolve(base, NULL) : NULL;
    struct buf page = { 0 };
    build_page(path, spec, base_spec, &page);
    FILE *f = to_stdout ? stdout : fopen(output, "w");
    if (!f)
        die(EXIT_SYSTEM, "cannot write '%s': %s", output, strerror(errno));
    fwrite(page.p, 1, page.n, f);
    if (fflush(f) || ferror(f) || (!to_stdout && fclose(f)))
        die(EXIT_SYSTEM, "cannot write '%s': %s", to_stdout ? "standard output" : output, strerror(errno));
    if (!to_stdout)
        fprintf(stderr, "heapwatch: wrote %s (%zu KiB): open it in a browser\n", output, (page.n + 1023) / 1024);
    free(page.p);
    free(spec);
    free(base_spec);
    free(path);
    return 0;
}

/* ---- heapwatch web ------------------------------------------------------------------------ */

static const struct cmd_usage usage_web = {
    "web", "[DB]", "Serve the html report on 127.0.0.1, as go tool pprof -http does: the page offers every\n"
    "snapshot and a base to diff against, and each choice asks this server for that page. A\n"
    "random free port unless --port; prints the URL; stops on Ctrl-C.",
    "DB defaults to the newest heapwatch.*.db in the current directory.", NULL,
};

/* The snapshot a query value names in db ("7", "latest", "first", "-2"), as "DB:ID", or NULL
 * when there is none (the server answers 404, never exits). */
static char *query_snapshot(struct hwdb *db, const char *v)
{
    size_t nr;
    int64_t *ids = db_snapshot_ids(db, &nr), id = 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (nr && !strcmp(v, "latest"))
        id = ids[nr - 1];
    else if (nr && !strcmp(v, "first"))
        id = ids[0];
    else if (*v && !*end && n < 0 && (size_t)-n < nr)
        id = ids[nr - 1 + (size_t)n];
    else if (*v && !*end)
        for (size_t i = 0; i < nr; i++)
            if (ids[i] == n)
                id = n;
    free(ids);
    return id ? xasprintf("%s:%lld", db->path, (long long)id) : NULL;
}

/* The value of key in a query string ("snap=3&base=1"), copied into out; false if absent. */
static bool query_value(const char *q, const char *key, char *out, size_t size)
{
    size_t k = strlen(key);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (!strncmp(p, key, k) && p[k] == '=') {
            size_t n = strcspn(p + k + 1, "& ");
            if (n >= size)
                return false;
            memcpy(out, p + k + 1, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

static void respond(int fd, int code, const char *type, const char *body, size_t n)
{
    char head[256];
    int h = snprintf(head, sizeof head, "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n", code, code == 200 ? "OK" : "Not Found", type, n);
    for (const char *p = head, *e = head + h; p < e;) {
        ssize_t w = write(fd, p, (size_t)(e - p));
        if (w <= 0)
            return;
        p += w;
    }
    for (const char *p = body, *e = body + n; p < e;) {
        ssize_t w = write(fd, p, (size_t)(e - p));
        if (w <= 0)
            return;
        p += w;
    }
}

static void serve_one(int fd, struct hwdb *db)
{
    char req[8192] = "";
    size_t got = 0;
    while (got < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = read(fd, req + got, sizeof req - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        req[got] = '\0';
    }
    req[got] = '\0';
    char path[2048] = "";
    if (sscanf(req, "GET %2047s", path) != 1) {
        respond(fd, 404, "text/plain", "only GET\n", 9);
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q++ = '\0';
    if (strcmp(path, "/")) {
        respond(fd, 404, "text/plain", "not found\n", 10);
        return;
    }
    char snap[64] = "latest", base[64] = "";
    if (q) {
        query_value(q, "snap", snap, sizeof snap);
        query_value(q, "base", base, sizeof base);
    }
    char *spec = query_snapshot(db, snap), *base_spec = *base ? query_snapshot(db, base) : NULL;
    if (!spec || (*base && !base_spec)) {
        char msg[256];
        int n = snprintf(msg, sizeof msg, "no such snapshot in %s: %s\n", db->path, spec ? base : snap);
        respond(fd, 404, "text/plain", msg, (size_t)n);
    } else {
        struct buf page = { 0 };
        build_page(db->path, spec, base_spec, &page);
        respond(fd, 200, "text/html; charset=utf-8", page.p, page.n);
        free(page.p);
    }
    free(spec);
    free(base_spec);
}

static const char *parse_port(const struct opt *opt, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);
    if (end == arg || *end || v < 0 || v > 65535)
        return xasprintf("--port: expected 0 to 65535, not '%s'", arg);
    *(int *)opt->value = (int)v;
    return NULL;
}

int cmd_web(int argc, char **argv)
{
    int port = 0;
    const struct opt opts[] = {
        OPT_CALLBACK(0, "port", &port, "N", "port on 127.0.0.1 (default: a free one)", parse_port),
        OPT_END(),
    };
    argc = parse_options(argc, argv, opts, &usage_web, 0);
    struct hwdb *db = open_db_operand(argc, argv, opts, &usage_web);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };   /* never another interface */
    socklen_t len = sizeof a;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 ||
        listen(s, 16) < 0 || getsockname(s, (struct sockaddr *)&a, &len) < 0)
        die(EXIT_SYSTEM, "cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    printf("heapwatch: serving %s on http://127.0.0.1:%d/ (Ctrl-C stops)\n", db->path, ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        int fd = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            die(EXIT_SYSTEM, "cannot accept a connection: %s", strerror(errno));
        }
        struct timeval tv = { 5, 0 };   /* a client that sends nothing does not hold the server */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        serve_one(fd, db);
        close(fd);
    }
}
