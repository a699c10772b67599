/* verdicts.c: heaps whose leaks are known exactly, built the way ordinary programs leave them:
 * stale stack data, glibc's own bookkeeping, pthread internals. A tool that only finds leaks
 * in a scrubbed heap (leaks.c clears the stack and avoids 16k+8 sizes on purpose) says "no
 * leaks" here where LeakSanitizer and memcheck find them. `verdicts CASE [ARG]`:
 *
 *   top SIZE    lose_top        1 block of SIZE bytes, the last one carved from glibc's top
 *                               chunk, lost: 1 direct leak. For SIZE = 16k + 1..8 the top
 *                               chunk's header lies inside the block, and main_arena.top
 *                               points at it.
 *   bin         lose_before_bin 1 x 100 lost, followed in memory by a free chunk in the
 *                               unsorted bin (main_arena's bin pointers point at its header,
 *                               inside the lost block): 1 direct leak
 *   remainder   lose_over_remainder 1 x 1500 lost, carved from a free chunk that an earlier
 *                               split had left main_arena.last_remainder pointing into (a
 *                               large request does not update it): 1 direct leak. Prints
 *                               "remainder inside" when the heap went as planned.
 *   link        lose_before_link 1 x 100 lost; a live block keeps, in bytes the program never
 *                               wrote, the address of the chunk header that follows it in
 *                               memory, as glibc leaves a free chunk's bin links in the block
 *                               that chunk later becomes: 1 direct leak
 *   api         lose_scribbled  1 x 352 lost by a function that left copies of the pointer
 *                               all over its dead stack frame, right before the program
 *                               calls heapwatch_snapshot(): 1 direct leak
 *   exit        lose_in_frame   3 x 336 held by a function's locals; it returns, then a
 *                               nested function calls exit(): 3 direct leaks at exit
 *   return      lose_in_frame   the same, then main returns: 3 direct leaks at exit
 *   keys        keep_in_keys    40 pthread keys; keys 5 and 35 hold 384 and 368 bytes: no
 *                               leak (key 35 lives in glibc's second-level array). Prints the
 *                               key numbers, which the shim must not shift.
 *   exited      thread_result   a joinable thread returns 400 bytes and exits; a snapshot
 *                               before the join: no leak (the result is in its descriptor).
 *               detached_result a detached thread returns 416 bytes: 1 direct leak.
 *   coroutine   lose_pair       a snapshot taken on a coroutine whose stack is a 64 KiB heap
 *                               block; a lost pair A -> B (48 bytes each) lies above that
 *                               block in the heap: A direct, B indirect (the coroutine's stack
 *                               ends with its block, not with the heap's mapping).
 *   starting    starting_arg    20 threads, each given a 123-byte argument that main does not
 *                               keep, with a snapshot right after each pthread_create, before
 *                               the thread ran (the process is pinned to one CPU): no leak.
 *   chains      chain_node      memcheck's nine pointer chains (root --> A, root --> A --> B,
 *                               A alone, A --> B, root -?-> A, root --> A -?-> B,
 *                               root -?-> A --> B, root -?-> A -?-> B, A -?-> B; --> a start
 *                               pointer, -?-> an interior one), 16-byte blocks, checked at
 *                               exit: 3 direct, 2 indirect, 6 possibly lost (reachable), 4
 *                               plainly reachable, as memcheck counts them.
 *   dlclosed    dso_keep        leaks_dso<SUFFIX>.so, dlopen'd, keeps 7 x 208 in its globals and
 *                               is dlclose'd before the snapshot: 7 direct leaks, charged to
 *                               dso_keep in the unloaded library.
 *   ignored     ignore_list     a list of 3 x 80 lost after heapwatch_ignore() of its head: no
 *                               leak (the head is a root, as __lsan_ignore_object makes it);
 *               lose_top        1 x 80 lost without: 1 direct leak. heapwatch_ignore() of a
 *                               stack address and of a page whose page before is unmapped
 *                               must not fault. Prints the calls' results.
 *   guard       lose_top        a heap block with a PROT_NONE page in the middle (a guard page)
 *                               is reachable; 1 x 208 lost: the walk skips the page, the
 *                               snapshot is stored and finds the leak.
 *
 * Each case takes one snapshot labelled CASE (exit and return: the exit snapshot) and exits 0. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "heapwatch.h"
#include "clear_stack.h"   /* the stack and scratch registers: glibc-state cases must not
                             * pass or fail because of stale copies */

#define CASEFN __attribute__((noipa, used))

void *volatile hw_sink;

static void *fill(void *p, size_t n)
{
    if (!p) {
        fputs("verdicts: out of memory\n", stderr);
        exit(1);
    }
    memset(p, 0x5a, n);
    hw_sink = p;
    return p;
}
#define NEW(n) fill(malloc(n), (n))

/* ---- glibc's bookkeeping ---- */

CASEFN void lose_top(size_t size)
{
    NEW(size);
    hw_sink = NULL;
}

void *keep[16];

CASEFN void lose_before_bin(void)
{
    void *x[7];
    char *lost = NEW(100);
    char *next = NEW(200);              /* right after `lost` in memory */
    keep[0] = NEW(16);                  /* keeps `next` from merging with the top chunk */
    for (int i = 0; i < 7; i++) {
        x[i] = NEW(200);
        keep[1 + i] = NEW(16);
    }
    for (int i = 0; i < 7; i++)
        free(x[i]);                     /* the tcache for this size is full now ... */
    free(next);                         /* ... so this chunk goes to the unsorted bin */
    (void)lost;
    hw_sink = NULL;
}

/* ---- heapwatch_ignore ---- */

CASEFN void ignore_list(char *out, size_t len)
{
    void **head = NEW(80), **second = NEW(80), **third = NEW(80);
    head[0] = second;
    second[0] = third;
    third[0] = NULL;
    int on_list = HEAPWATCH_IGNORE(head);
    int local = 0;
    int on_stack = HEAPWATCH_IGNORE(&local);
    /* a page whose page before it is not mapped: the shim must not read p[-1] blindly */
    char *pages = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int after_hole = -2;
    if (pages != MAP_FAILED) {
        munmap(pages, 4096);
        after_hole = HEAPWATCH_IGNORE(pages + 4096);
        munmap(pages + 4096, 4096);
    }
    snprintf(out, len, "ignore list=%d stack=%s hole=%s", on_list, on_stack <= 0 ? "ok" : "?",
             after_hole <= 0 ? "ok" : "?");
    hw_sink = NULL;
}

int remainder_inside;

CASEFN void lose_over_remainder(void)
{
    void *x[7];
    for (int i = 0; i < 7; i++) {
        x[i] = NEW(200);
        keep[1 + i] = NEW(16);
    }
    char *a = NEW(2000);
    keep[0] = NEW(16);                  /* keeps a's chunk from the top chunk */
    free(a);                            /* into the unsorted bin */
    char *c = NEW(200);                 /* a split of a's chunk: last_remainder = the rest */
    for (int i = 0; i < 7; i++)
        free(x[i]);                     /* the tcache for this size is full now ... */
    free(c);                            /* ... so c merges with the rest again */
    char *lost = NEW(1500);             /* a large request: last_remainder stays, inside lost */
    remainder_inside = c == a && lost == a;
    hw_sink = NULL;
}

CASEFN void lose_before_link(void)
{
    char *lost = NEW(100);
    uintptr_t *holder = malloc(64);     /* its first word written, the rest as malloc left it */
    holder[0] = 0;
    /* glibc's chunk: 8 bytes of size before the block, the next chunk's 16-byte header
     * starting 8 bytes before the usable end */
    holder[5] = (uintptr_t)lost + malloc_usable_size(lost) - 8;
    keep[0] = holder;
    hw_sink = NULL;
}

/* ---- stale stack data ---- */

CASEFN void lose_scribbled(void)
{
    volatile uintptr_t copies[256];
    uintptr_t p = (uintptr_t)NEW(352);
    for (size_t i = 0; i < 256; i++)
        copies[i] = p;
    __asm__ volatile("" : : "r"(copies) : "memory");
    hw_sink = NULL;
}

CASEFN void lose_in_frame(void)
{
    volatile uintptr_t held[3];
    for (int i = 0; i < 3; i++)
        held[i] = (uintptr_t)NEW(336);
    __asm__ volatile("" : : "r"(held) : "memory");
    hw_sink = NULL;
}

CASEFN void finish(void)
{
    fflush(stdout);
    exit(0);
}

/* ---- pthread internals ---- */

CASEFN void keep_in_keys(void)
{
    pthread_key_t k[40];
    for (int i = 0; i < 40; i++)
        if (pthread_key_create(&k[i], NULL)) {
            fputs("verdicts: pthread_key_create failed\n", stderr);
            exit(1);
        }
    /* Enough allocation for a sampled profile to take its first samples after the keys. */
    for (int i = 0; i < 64; i++)
        free(malloc(64 * 1024));
    pthread_setspecific(k[5], NEW(384));
    pthread_setspecific(k[35], NEW(368));
    hw_sink = NULL;
    printf("keys");
    for (int i = 0; i < 40; i++)
        printf(" %u", (unsigned)k[i]);
    printf("\n");
}

static volatile int result_tid;

CASEFN void *thread_result(void *arg)
{
    result_tid = (int)syscall(SYS_gettid);
    (void)arg;
    void *r = NEW(400);
    hw_sink = NULL;
    return r;
}

static volatile int detached_tid;

CASEFN void *detached_result(void *arg)
{
    (void)arg;
    detached_tid = (int)syscall(SYS_gettid);
    void *r = NEW(416);
    hw_sink = NULL;
    return r;  /* nobody can join a detached thread: the result is lost */
}

CASEFN void *takes_arg(void *arg)
{
    free(arg);
    return NULL;
}

CASEFN void start_one(pthread_t *t)
{
    pthread_create(t, NULL, takes_arg, NEW(123));
    hw_sink = NULL;
}

/* ---- possibly lost ---- */

struct chain {
    struct chain *next;
    char pad[8];
};

struct chain *root_of[10];  /* root_of[k]: chain k's root pointer */

CASEFN struct chain *chain_node(struct chain *next)
{
    struct chain *c = NEW(sizeof *c);
    c->next = next;
    hw_sink = NULL;
    return c;
}

#define INTERIOR(p) ((struct chain *)((char *)(p) + 8))

CASEFN void build_chains(void)
{
    root_of[1] = chain_node(NULL);
    root_of[2] = chain_node(chain_node(NULL));
    chain_node(NULL);
    chain_node(chain_node(NULL));
    root_of[5] = INTERIOR(chain_node(NULL));
    root_of[6] = chain_node(NULL);
    root_of[6]->next = INTERIOR(chain_node(NULL));
    root_of[7] = INTERIOR(chain_node(chain_node(NULL)));
    struct chain *a = chain_node(NULL);
    a->next = INTERIOR(chain_node(NULL));
    root_of[8] = INTERIOR(a);
    a = chain_node(NULL);
    a->next = INTERIOR(chain_node(NULL));
    a = NULL;
}

/* ---- other stacks, other protections ---- */

struct pair {
    struct pair *next;
    char pad[40];
};

CASEFN void lose_pair(void)
{
    struct pair *a = NEW(sizeof *a);
    a->next = NEW(sizeof *a);
    hw_sink = NULL;
}

static ucontext_t main_uc, co_uc;

CASEFN void on_coroutine(void)
{
    HEAPWATCH_SNAPSHOT("coroutine");
    swapcontext(&co_uc, &main_uc);
}

CASEFN void guarded_block(void)
{
    char *b = aligned_alloc(4096, 3 * 4096);
    memset(b, 0x5a, 3 * 4096);
    mprotect(b + 4096, 4096, PROT_NONE);
    keep[2] = b;
}

/* Wait until thread tid has exited (its kernel task is gone). */
static void wait_gone(int tid)
{
    for (int i = 0; i < 5000 && syscall(SYS_tgkill, getpid(), tid, 0) == 0; i++)
        usleep(1000);
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "top")) {
        lose_top(argc > 2 ? strtoul(argv[2], NULL, 10) : 100);
        clear_stack();
        HEAPWATCH_SNAPSHOT("top");
    } else if (!strcmp(c, "bin")) {
        lose_before_bin();
        clear_stack();
        HEAPWATCH_SNAPSHOT("bin");
    } else if (!strcmp(c, "ignored")) {
        char line[128];
        ignore_list(line, sizeof line);
        lose_top(80);
        clear_stack();
        puts(line);
        HEAPWATCH_SNAPSHOT("ignored");
    } else if (!strcmp(c, "remainder")) {
        lose_over_remainder();
        clear_stack();
        puts(remainder_inside ? "remainder inside" : "remainder elsewhere");
        HEAPWATCH_SNAPSHOT("remainder");
    } else if (!strcmp(c, "link")) {
        lose_before_link();
        clear_stack();
        HEAPWATCH_SNAPSHOT("link");
    } else if (!strcmp(c, "api")) {
        lose_scribbled();
        HEAPWATCH_SNAPSHOT("api");
    } else if (!strcmp(c, "exit")) {
        lose_in_frame();
        finish();
    } else if (!strcmp(c, "return")) {
        lose_in_frame();
        return 0;
    } else if (!strcmp(c, "keys")) {
        keep_in_keys();
        clear_stack();
        HEAPWATCH_SNAPSHOT("keys");
    } else if (!strcmp(c, "exited")) {
        pthread_t t, d;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_create(&d, &attr, detached_result, NULL);
        pthread_create(&t, NULL, thread_result, NULL);
        while (!result_tid || !detached_tid)
            usleep(1000);
        wait_gone(result_tid);
        wait_gone(detached_tid);
        clear_stack();
        HEAPWATCH_SNAPSHOT("exited");
        void *r;
        pthread_join(t, &r);
        keep[0] = r;
    } else if (!strcmp(c, "starting")) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &one);
        sched_setaffinity(0, sizeof one, &one);
        for (int i = 0; i < 20; i++) {
            pthread_t t;
            start_one(&t);
            clear_stack();
            HEAPWATCH_SNAPSHOT("starting");
            pthread_join(t, NULL);
        }
    } else if (!strcmp(c, "chains")) {
        build_chains();
        clear_stack();
        return 0;
    } else if (!strcmp(c, "dlclosed")) {
        char path[PATH_MAX];
        const char *dash = strrchr(argv[0], '-');
        snprintf(path, sizeof path, "%.*s/leaks_dso%s.so", (int)(strrchr(argv[0], '/') - argv[0]), argv[0],
                 dash ? dash : "");
        void *h = dlopen(path, RTLD_NOW);
        void (*keep_fn)(void) = h ? (void (*)(void))dlsym(h, "dso_keep") : NULL;
        if (!keep_fn) {
            fprintf(stderr, "verdicts: %s\n", dlerror());
            return 1;
        }
        keep_fn();
        dlclose(h);
        clear_stack();
        HEAPWATCH_SNAPSHOT("dlclosed");
    } else if (!strcmp(c, "coroutine")) {
        keep[1] = NEW(65536);
        lose_pair();
        clear_stack();
        getcontext(&co_uc);
        co_uc.uc_stack.ss_sp = keep[1];
        co_uc.uc_stack.ss_size = 65536;
        co_uc.uc_link = &main_uc;
        makecontext(&co_uc, on_coroutine, 0);
        swapcontext(&main_uc, &co_uc);
    } else if (!strcmp(c, "guard")) {
        guarded_block();
        lose_top(208);
        clear_stack();
        int rc = HEAPWATCH_SNAPSHOT("guard");
        mprotect((char *)keep[2] + 4096, 4096, PROT_READ | PROT_WRITE);
        printf("snapshot %d\n", rc);
    } else {
        fprintf(stderr, "usage: verdicts top SIZE|bin|api|exit|return|keys|exited|starting|chains|dlclosed|coroutine|guard\n");
        return 2;
    }
    printf("verdicts %s: done\n", c);
    return 0;
}
