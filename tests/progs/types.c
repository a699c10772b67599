/* types.c: a heap whose block types and paths are known exactly, for `heapwatch types` and
 * `heapwatch path` (t2010-types.sh). Run in full mode (HEAPWATCH_SAMPLE_RATE=1); it takes
 * one snapshot, "types", and exits 0.
 *
 * Variable                  what it holds                               type (how)
 * g_server                  struct server (48 B)                        struct server
 *   ->sessions[0..3]        4 struct session (32 B each)                struct session
 *     ->user                4 struct user (40 B each)                   struct user
 *       ->name              4 names of 21 B                             char[]
 *                           (path: g_server->sessions[2]->user->name: three fields)
 * g_items                   a list of 6 struct item (32 B) via ->next   struct item
 * (dropped)                 a second list of 6 items from the same stack, leaked: typed by
 *                           the site that allocated g_items' items      struct item (site)
 * g_root                    a tree of 7 struct tnode (24 B) via ->left/->right
 * g_points                  10 struct point (12 B each) in one block    struct point[10]
 * g_vec                     8 struct item * in one block (64 B), each   struct item *[8]
 *                           pointing to a struct item (32 B)            struct item
 * g_msg                     struct msg with a flexible char data[]      struct msg
 *                           (16 + 100 B)
 * g_var.u                   a union { long i; char *s; struct item *it; }: the first member
 *                           holding a pointer at the offset is s        char[] (77 B)
 * g_blob, g_holder.opaque   two struct blob (56 B) from one stack; g_holder's is a void *
 *                           member, typed by the site                   struct blob (site)
 * g_base, g_derived         one block of struct derived (40 B), pointed to as its first
 *                           member's type too: the outer type wins, no conflict
 * g_mid                     a char * into g_points' block (+12): an interior pointer types
 *                           nothing (else: a conflict with struct point[10])
 * g_inner                   a char * 10 bytes into a 50-byte block nothing else points to:
 *                           the block stays (unknown); path says "+0xa into"
 * It prints the addresses of g_server->sessions[2]->user->name ("name2") and of the leaked
 * list's third item ("leaked") for `path`.
 */
#define _GNU_SOURCE
#include <heapwatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "clear_stack.h"

struct user { long id; char *name; char pad[24]; };
struct session { struct user *user; long started; char pad[16]; };
struct server { int nr; struct session *sessions[4]; char pad[4]; };
struct item { struct item *next; long value; char pad[16]; };
struct tnode { struct tnode *left, *right; long v; };
struct point { int x, y, z; };
struct msg { long len; long kind; char data[]; };
struct var { int tag; union { long i; char *s; struct item *it; } u; };
struct blob { long a[7]; };
struct holder { long flags; void *opaque; };
struct base { long kind; };
struct derived { struct base b; long extra[4]; };

_Static_assert(sizeof(struct user) == 40, "user");
_Static_assert(sizeof(struct session) == 32, "session");
_Static_assert(sizeof(struct server) == 48, "server");
_Static_assert(sizeof(struct item) == 32, "item");
_Static_assert(sizeof(struct point) == 12, "point");
_Static_assert(sizeof(struct msg) == 16, "msg");
_Static_assert(sizeof(struct blob) == 56, "blob");
_Static_assert(sizeof(struct derived) == 40, "derived");

struct server *g_server;
struct item *g_items;
struct tnode *g_root;
struct point *g_points;
struct item **g_vec;
struct msg *g_msg;
struct var g_var;
struct blob *g_blob;
struct holder g_holder;
struct base *g_base;
struct derived *g_derived;
char *g_mid, *g_inner;

__attribute__((noinline)) static void *zalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p) {
        fputs("types: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

__attribute__((noinline)) static struct item *make_list(int n)
{
    struct item *head = NULL;
    for (int i = 0; i < n; i++) {
        struct item *it = zalloc(sizeof *it);
        it->value = i;
        it->next = head;
        head = it;
    }
    return head;
}

__attribute__((noinline)) static struct tnode *tree(int depth)
{
    if (!depth)
        return NULL;
    struct tnode *t = zalloc(sizeof *t);
    t->left = tree(depth - 1);
    t->right = tree(depth - 1);
    return t;
}

__attribute__((noinline)) static struct blob *make_blob(void)
{
    struct blob *b = zalloc(sizeof *b);
    b->a[0] = 1;   /* not a tail call: make_blob stays on the stack */
    return b;
}

__attribute__((noinline)) static void build(void)
{
    g_server = zalloc(sizeof *g_server);
    for (int i = 0; i < 4; i++) {
        struct session *s = zalloc(sizeof *s);
        s->user = zalloc(sizeof *s->user);
        s->user->name = zalloc(21);
        g_server->sessions[i] = s;
    }
    struct item *lists[2];
    for (int i = 0; i < 2; i++)
        lists[i] = make_list(6);
    g_items = lists[0];
    fprintf(stderr, "leaked %p\n", (void *)lists[1]->next->next);   /* the leaked list's third item */
    lists[1] = NULL;   /* the second list leaks */
    g_root = tree(3);
    g_points = zalloc(10 * sizeof *g_points);
    g_vec = zalloc(8 * sizeof *g_vec);
    for (int i = 0; i < 8; i++)
        g_vec[i] = zalloc(sizeof(struct item));
    g_msg = zalloc(sizeof *g_msg + 100);
    g_mid = (char *)g_points + 12;
    g_inner = (char *)zalloc(50) + 10;
    fprintf(stderr, "inner %p\n", (void *)g_inner);
    g_var.tag = 1;
    g_var.u.s = zalloc(77);
    struct blob *blobs[2];
    for (int i = 0; i < 2; i++)
        blobs[i] = make_blob();
    g_blob = blobs[0];
    g_holder.opaque = blobs[1];
    fprintf(stderr, "name2 %p\n", (void *)g_server->sessions[2]->user->name);
    g_derived = zalloc(sizeof *g_derived);
    g_base = &g_derived->b;
}

int main(void)
{
    build();
    clear_stack();
    heapwatch_snapshot("types");
    return 0;
}
