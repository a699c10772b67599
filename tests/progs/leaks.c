/* leaks.c: ground truth for the heap walk. `leaks CASE` builds one heap state whose
 * reachability is known exactly, calls HEAPWATCH_SNAPSHOT("CASE") and exits 0, leaving the
 * state in place so that LeakSanitizer's and valgrind's checks at exit see the same thing.
 * tests/t5000-leaks.sh knows the cases, their functions and their numbers.
 *
 * Each case allocates from its own function, so a leak report row is found by the name of
 * its innermost frame. Counts and sizes differ between cases, and every size is a multiple
 * of 16: glibc puts the next chunk's header in the last 8 bytes of a block of 16k+8 bytes,
 * and a pointer to that header (main_arena's top, a bin) would then point into the block.
 * Every block is filled (no stale free-list pointers inside), and no pointer to a leaked
 * block is left in main's locals, in a register or in a dead stack slot when the snapshot is
 * taken (run_deep, clear_stack), so a conservative scan has no excuse to find one.
 *
 *   direct    leak_direct            37 x 48 bytes, pointers dropped: 37 direct leaks
 *   indirect  leak_list              a list head (64) and its 23 nodes (80): head direct,
 *                                    nodes indirect
 *   cycle2    leak_cycle2            2 x 96 bytes pointing at each other, unreachable
 *   cycle3    leak_cycle3            3 x 112 bytes in a ring, unreachable
 *   global    keep_global            1 x 128 held by a global pointer
 *   static    keep_static            1 x 144 held by a static local
 *   array     keep_array             19 x 160 held by a global array
 *   field     keep_field             1 x 176 held by a field of a global struct
 *   tls       keep_tls               1 x 192 held by the main thread's __thread variable
 *   dlopen    dso_keep               7 x 208 held by a dlopen'd library's global array
 *   dso_tls   dso_keep_tls           1 x 320 held by a dlopen'd library's __thread variable
 *                                    (dynamic TLS: glibc mallocs the module's TLS block)
 *   blocked   keep_on_blocked_stack  5 x 224 held by the locals of a thread blocked in
 *                                    read() on a pipe (still blocked at exit)
 *   exited    leak_on_exited_stack   3 x 240 held only by the locals of a thread that has
 *                                    exited and been joined: 3 direct leaks
 *   interior  keep_interior          1 x 256 held only by a pointer 100 bytes into it
 *   chain     keep_chain             global -> A (272) -> B (288) -> C (304)
 *
 * The dlopen'd library is leaks_dso<SUFFIX>.so next to the executable leaks<SUFFIX> (so
 * leaks-O2 loads leaks_dso-O2.so), or the path given as argv[2]. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clear_stack.h"
#include "heapwatch.h"

/* Not inlined, not cloned (a clone would be named leak_direct.constprop.0), no
 * interprocedural assumptions: each case function stays a frame of its own. */
#ifdef __clang__
#define CASEFN __attribute__((noinline, used))
#else
#define CASEFN __attribute__((noipa, used))
#endif

/* Every new block goes through here once: filled, and published to a volatile global so
 * that no compiler may elide the allocation; the case function clears the sink before it
 * returns. The fill byte makes no pointer (0x5a5a5a5a5a5a5a5a is not canonical). */
void *volatile hw_sink;

static void *fill(void *p, size_t n)
{
    if (!p) {
        fputs("leaks: out of memory\n", stderr);
        exit(1);
    }
    memset(p, 0x5a, n);
    hw_sink = p;
    return p;
}
#define NEW(n) fill(malloc(n), (n))

/* ---- leaks ---- */

#define DIRECT_N 37
#define DIRECT_SIZE 48

CASEFN void leak_direct(void)
{
    for (int i = 0; i < DIRECT_N; i++)
        NEW(DIRECT_SIZE);
    hw_sink = NULL;
}

#define LIST_NODES 23
struct node { struct node *next; char payload[72]; };          /* 80 bytes */
struct list { struct node *first; long count; char pad[48]; }; /* 64 bytes */
_Static_assert(sizeof(struct node) == 80, "node size");
_Static_assert(sizeof(struct list) == 64, "list size");

CASEFN void leak_list(void)
{
    struct list *head = NEW(sizeof *head);
    head->first = NULL;
    head->count = 0;
    for (int i = 0; i < LIST_NODES; i++) {
        struct node *n = NEW(sizeof *n);
        n->next = head->first;
        head->first = n;
        head->count++;
    }
    hw_sink = NULL;
}

struct ring2 { struct ring2 *other; char pad[88]; };  /* 96 bytes */
struct ring3 { struct ring3 *next; char pad[104]; };  /* 112 bytes */
_Static_assert(sizeof(struct ring2) == 96, "ring2 size");
_Static_assert(sizeof(struct ring3) == 112, "ring3 size");

CASEFN void leak_cycle2(void)
{
    struct ring2 *a = NEW(sizeof *a);
    struct ring2 *b = NEW(sizeof *b);
    a->other = b;
    b->other = a;
    hw_sink = NULL;
}

CASEFN void leak_cycle3(void)
{
    struct ring3 *a = NEW(sizeof *a);
    struct ring3 *b = NEW(sizeof *b);
    struct ring3 *c = NEW(sizeof *c);
    a->next = b;
    b->next = c;
    c->next = a;
    hw_sink = NULL;
}

/* A leak whose allocation a suppression names, holding a list allocated elsewhere: with
 * `leak:suppressed_owner`, neither the owner nor what it holds is a leak (LeakSanitizer
 * reruns its check treating suppressed blocks as roots). */
#define HELD_NODES 11
struct held { struct held *next; char pad[216]; };   /* 224 bytes */
struct owner { struct held *first; char pad[200]; }; /* 208 bytes */
_Static_assert(sizeof(struct held) == 224, "held size");
_Static_assert(sizeof(struct owner) == 208, "owner size");

CASEFN struct owner *suppressed_owner(void)
{
    struct owner *o = NEW(sizeof *o);
    o->first = NULL;
    return o;
}

CASEFN void leak_held(void)
{
    struct owner *o = suppressed_owner();
    for (int i = 0; i < HELD_NODES; i++) {
        struct held *h = NEW(sizeof *h);
        h->next = o->first;
        o->first = h;
    }
    hw_sink = NULL;
}

/* ---- kept: each root kind ---- */

void *g_kept;                   /* global pointer */
void *g_array[19];              /* global array */
struct holder {
    long id;
    char name[24];
    void *payload;              /* offset 32: the only pointer */
    long tail;
} g_holder = { 42, "holder", NULL, 7 };
__thread void *t_kept;          /* main thread's static TLS */
char *g_interior;               /* points 100 bytes into its block */
void *g_chain;                  /* -> A -> B -> C */

CASEFN void keep_global(void)
{
    g_kept = NEW(128);
    hw_sink = NULL;
}

CASEFN void keep_static(void)
{
    /* volatile: a static that is only written would be removed with its stores */
    static void *volatile kept __attribute__((used));
    kept = NEW(144);
    hw_sink = NULL;
}

CASEFN void keep_array(void)
{
    for (int i = 0; i < 19; i++)
        g_array[i] = NEW(160);
    hw_sink = NULL;
}

CASEFN void keep_field(void)
{
    g_holder.payload = NEW(176);
    hw_sink = NULL;
}

CASEFN void keep_tls(void)
{
    t_kept = NEW(192);
    hw_sink = NULL;
}

CASEFN void keep_interior(void)
{
    char *p = NEW(256);
    g_interior = p + 100;
    hw_sink = NULL;
}

struct link { struct link *next; char pad[8]; };  /* header of A, B and C */

CASEFN void keep_chain(void)
{
    struct link *a = NEW(272), *b = NEW(288), *c = NEW(304);
    a->next = b;
    b->next = c;
    c->next = NULL;
    g_chain = a;
    hw_sink = NULL;
}

/* ---- dlopen'd library ---- */

static const char *dso_path;

static void *load_dso(void)
{
    char exe[PATH_MAX], path[PATH_MAX + 32];
    if (!dso_path) {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) {
            perror("leaks: /proc/self/exe");
            exit(1);
        }
        exe[n] = 0;
        char *base = strrchr(exe, '/') + 1;
        if (strncmp(base, "leaks", 5) != 0) {
            fprintf(stderr, "leaks: cannot derive the library's name from %s\n", base);
            exit(1);
        }
        *(base - 1) = 0;
        snprintf(path, sizeof path, "%s/leaks_dso%s.so", exe, base + 5);
        dso_path = path;
    }
    void *h = dlopen(dso_path, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "leaks: %s\n", dlerror());
        exit(1);
    }
    dso_path = NULL;
    return h;
}

static void call_dso(const char *fn)
{
    void (*f)(void);
    *(void **)&f = dlsym(load_dso(), fn);
    if (!f) {
        fprintf(stderr, "leaks: %s\n", dlerror());
        exit(1);
    }
    f();
}

/* ---- threads ---- */

#define BLOCKED_N 5
#define EXITED_N 3
static int ready_pipe[2], wake_pipe[2];

/* Allocates, keeps the pointers only in its own stack frame, says it is ready and blocks in
 * read() until woken: nobody wakes it, the process exits with it still blocked. */
CASEFN void *keep_on_blocked_stack(void *arg)
{
    void *volatile slot[BLOCKED_N];
    char c = 'r';
    (void)arg;
    for (int i = 0; i < BLOCKED_N; i++)
        slot[i] = NEW(224);
    hw_sink = NULL;
    if (write(ready_pipe[1], &c, 1) != 1)
        abort();
    while (read(wake_pipe[0], &c, 1) < 0)
        ;
    for (int i = 0; i < BLOCKED_N; i++)
        free(slot[i]);
    return NULL;
}

/* Allocates, keeps the pointers only in its own stack frame, and exits. */
CASEFN void *leak_on_exited_stack(void *arg)
{
    void *volatile slot[EXITED_N];
    (void)arg, (void)slot;
    for (int i = 0; i < EXITED_N; i++)
        slot[i] = NEW(240);
    hw_sink = NULL;
    return NULL;
}

static void start_blocked(void)
{
    pthread_t t;
    char c;
    if (pipe(ready_pipe) || pipe(wake_pipe) || pthread_create(&t, NULL, keep_on_blocked_stack, NULL))
        abort();
    pthread_detach(t);
    if (read(ready_pipe[0], &c, 1) != 1)  /* it holds its blocks and is about to block */
        abort();
}

static void run_exited(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, leak_on_exited_stack, NULL) || pthread_join(t, NULL))
        abort();
}

/* ---- driver ---- */

static void case_dlopen(void) { call_dso("dso_keep"); }
static void case_dso_tls(void) { call_dso("dso_keep_tls"); }

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    { "direct", leak_direct },
    { "indirect", leak_list },
    { "cycle2", leak_cycle2 },
    { "cycle3", leak_cycle3 },
    { "global", keep_global },
    { "static", keep_static },
    { "array", keep_array },
    { "field", keep_field },
    { "tls", keep_tls },
    { "dlopen", case_dlopen },
    { "dso_tls", case_dso_tls },
    { "blocked", start_blocked },
    { "exited", run_exited },
    { "interior", keep_interior },
    { "chain", keep_chain },
    { "held", leak_held },
};

/* Runs a case below a padding of 512 bytes: every stack slot the case used is then well
 * inside the buffer that clear_stack wipes, not in the few slots at the top of clear_stack's
 * frame that it leaves unwritten (alignment, saved registers). Those slots are where the
 * snapshot call's own frame lies next, and that frame is scanned: at -O0, without this, a
 * dead copy of leak_cycle2's pointer sat in an unwritten slot of heapwatch_snapshot's frame
 * and made the cycle reachable. */
CASEFN void run_deep(void (*run)(void))
{
    volatile char pad[512];
    pad[0] = 0;
    run();
    pad[sizeof pad - 1] = 0;
}

int main(int argc, char **argv)
{
    size_t i, ncases = sizeof cases / sizeof cases[0];
    for (i = 0; argc >= 2 && i < ncases; i++)
        if (strcmp(argv[1], cases[i].name) == 0)
            break;
    if (argc < 2 || argc > 3 || i == ncases) {
        fputs("usage: leaks CASE [DSO]\ncases:", stderr);
        for (i = 0; i < ncases; i++)
            fprintf(stderr, " %s", cases[i].name);
        fputc('\n', stderr);
        return 2;
    }
    if (argc == 3)
        dso_path = argv[2];
    run_deep(cases[i].run);
    clear_stack();
    HEAPWATCH_SNAPSHOT(cases[i].name);
    printf("leaks %s: done\n", cases[i].name);
    return 0;
}
