/* owners.c: a heap whose owners, retained sizes and types are known exactly, for
 * `heapwatch owners` (t2000-owners.sh). Run in full mode (HEAPWATCH_SAMPLE_RATE=1) so that
 * every block keeps its requested size. It takes one snapshot, "owners", while a worker
 * thread is blocked in a system call, then releases the worker and exits 0.
 *
 * Owner              kind          holds                                     retained
 * g_cache            global        struct cache (136) + 4 entries (24 each)   4232 B, 9 objects
 *                                  each with a 1000-byte val
 * g_table            global        8 entries (24 each)                        192 B, 8 objects
 * g_config           global        g_config.log.buf: 4096 bytes               4096 B, 1 object
 * list in get_list   static local  10 nodes of 48 bytes in a list             480 B, 10 objects
 * g_tree             global        a complete tree of 7 tnodes (24 each)      168 B, 7 objects
 * g_shared_a, _b     global        both one 777-byte block: retained by neither, reachable
 *                                  from both, counted once in `shared`
 * tls_buf            tls (worker)  3000 bytes                                 3000 B, 1 object
 * mine in worker     local         5000 bytes (a stack slot at -O0; -O2 may keep it in a
 *                                  callee-saved register across the system call)
 * main_local in main local         1234 bytes
 * dso_held           global of owners_dso*.so (dlopen'd): 64 bytes
 * dso_tls_held       tls of owners_dso*.so (worker): 720 bytes
 * g_key's value      the worker's pthread_setspecific value: 333 bytes, in its thread
 *                    descriptor (named through libc's DWARF for struct pthread)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <heapwatch.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "clear_stack.h"

struct entry { struct entry *next; long key; char *val; };
struct cache { struct entry *buckets[16]; long count; };
struct node { struct node *next; char pad[40]; };
struct tnode { struct tnode *left, *right; long v; };
struct config { int level; struct { char *buf; size_t len; } log; };

_Static_assert(sizeof(struct entry) == 24, "entry");
_Static_assert(sizeof(struct cache) == 136, "cache");
_Static_assert(sizeof(struct node) == 48, "node");
_Static_assert(sizeof(struct tnode) == 24, "tnode");

struct cache *g_cache;
struct entry *g_table[8];
struct config g_config;
struct tnode *g_tree;
void *g_shared_a, *g_shared_b;
__thread char *tls_buf;

static int go_pipe[2], ready_pipe[2];
static pthread_key_t g_key;
static void (*dso_hold_tls)(void);

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("owners: out of memory\n", stderr);
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

__attribute__((noinline)) static struct node **get_list(void)
{
    static struct node *list;
    return &list;
}

__attribute__((noinline)) static struct tnode *tree(int depth)
{
    if (!depth)
        return NULL;
    struct tnode *t = xmalloc(sizeof *t);
    t->left = tree(depth - 1);
    t->right = tree(depth - 1);
    return t;
}

__attribute__((noinline)) static void build(void)
{
    g_cache = xmalloc(sizeof *g_cache);
    for (int i = 0; i < 4; i++) {
        struct entry *e = xmalloc(sizeof *e);
        e->key = i;
        e->val = xmalloc(1000);
        g_cache->buckets[i] = e;
        g_cache->count++;
    }
    for (int i = 0; i < 8; i++)
        g_table[i] = xmalloc(sizeof(struct entry));
    g_config.log.buf = xmalloc(4096);
    g_config.log.len = 4096;
    struct node **list = get_list();
    for (int i = 0; i < 10; i++) {
        struct node *n = xmalloc(sizeof *n);
        n->next = *list;
        *list = n;
    }
    g_tree = tree(3);
    g_shared_a = g_shared_b = xmalloc(777);
}

static void *worker(void *arg)
{
    (void)arg;
    tls_buf = xmalloc(3000);
    dso_hold_tls();
    if (pthread_setspecific(g_key, xmalloc(333)))
        exit(1);
    char *mine = xmalloc(5000);
    char c = 'r';
    if (write(ready_pipe[1], &c, 1) != 1)
        exit(1);
    syscall(SYS_getpid);   /* binds syscall's PLT entry now: the lazy resolver saves registers */
    clear_stack();   /* write() and the resolver may have saved `mine`'s register below this frame */
    /* syscall() does not touch the callee-saved registers: at -O2 `mine` stays where the
     * compiler put it, in its frame or in a register saved in the signal frame. */
    if (syscall(SYS_read, go_pipe[0], &c, 1) != 1)
        exit(1);
    free(mine);
    free(tls_buf);
    free(pthread_getspecific(g_key));
    return NULL;
}

static void *load_dso(const char *argv0)
{
    char exe[PATH_MAX];
    snprintf(exe, sizeof exe, "%s", argv0);
    const char *base = strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/owners_dso%s.so", dirname(exe), base + strlen("owners"));
    void *h = dlopen(path, RTLD_NOW);
    if (!h) {
        fprintf(stderr, "owners: %s\n", dlerror());
        exit(1);
    }
    return h;
}

int main(int argc, char **argv)
{
    (void)argc;
    void *dso = load_dso(argv[0]);
    void (*dso_hold)(void) = (void (*)(void))dlsym(dso, "dso_hold");
    dso_hold_tls = (void (*)(void))dlsym(dso, "dso_hold_tls");
    if (!dso_hold || !dso_hold_tls || pipe(go_pipe) || pipe(ready_pipe) || pthread_key_create(&g_key, NULL))
        return 1;
    dso_hold();
    build();
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL))
        return 1;
    char c;
    if (read(ready_pipe[0], &c, 1) != 1)
        return 1;
    /* Only now: the new thread starts with its creator's registers, and glibc's start_thread
     * keeps copies of some in its descriptor. */
    char *main_local = xmalloc(1234);
    usleep(20000);   /* until the worker sits in its read */
    clear_stack();
    heapwatch_snapshot("owners");
    if (write(go_pipe[1], &c, 1) != 1)
        return 1;
    pthread_join(t, NULL);
    free(main_local);
    return 0;
}
