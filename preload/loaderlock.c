/* This file implements loaderlock.h: finding glibc's dl_load_write_lock, and freeing it in a
 * fork child when a thread the child does not have held it.
 *
 * dl_iterate_phdr holds that lock for its whole walk. glibc's fork resets the loader's other
 * locks in the child (dl_load_lock, dl_load_tls_lock) but not this one (glibc 2.36
 * posix/fork.c), so a child forked while another thread was inside dl_iterate_phdr (the
 * shim's module refresh, a snapshot's stop, or the program's own call) waits for ever at its
 * first dl_iterate_phdr: its exit snapshot, at the latest. The lock is a recursive mutex in
 * ld.so's _rtld_global, whose layout is private; so it is found by what it is: while our own
 * dl_iterate_phdr callback runs, it is the one recursive mutex in _rtld_global held once, by
 * this thread. If the search is not conclusive, nothing is ever reset.
 * The lock also guards dlopen's and dlclose's edits of the list of loaded objects: a child
 * forked in the middle of one sees that list half-edited, as glibc accepts for dl_load_lock,
 * which it resets the same way; before, such a child hung at its first dl_iterate_phdr. */
#define _GNU_SOURCE
#include "loaderlock.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include "sys.h"

/* glibc's x86-64 struct __pthread_mutex_s, the fields this file reads. */
struct mutex_words {
    int lock;
    unsigned int count;
    int owner;
    unsigned int nusers;
    int kind;
};

static struct mutex_words *write_lock;

struct search {
    uintptr_t lo, hi;
    int tid;
    struct mutex_words *found;
    unsigned matches;
};

static int search_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)info;
    (void)size;
    struct search *s = arg;
    for (uintptr_t a = s->lo; a + sizeof(pthread_mutex_t) <= s->hi; a += sizeof(int)) {
        struct mutex_words *m = (struct mutex_words *)a;
        if (m->owner == s->tid && m->count == 1 && (m->kind & 0x7f) == PTHREAD_MUTEX_RECURSIVE_NP && m->lock) {
            s->found = m;
            s->matches++;
        }
    }
    return 1;  /* one callback is enough: the lock is held for the whole walk */
}

void hw_loaderlock_init(void)
{
    void *rtld = dlsym(RTLD_DEFAULT, "_rtld_global");
    Dl_info where;
    const ElfW(Sym) *sym = NULL;
    if (!rtld || !dladdr1(rtld, &where, (void **)&sym, RTLD_DL_SYMENT) || !sym || sym->st_size < sizeof(pthread_mutex_t))
        return;
    struct search s = { .lo = (uintptr_t)rtld, .hi = (uintptr_t)rtld + sym->st_size, .tid = hw_gettid() };
    dl_iterate_phdr(search_cb, &s);
    if (s.matches == 1)
        write_lock = s.found;
}

void hw_loaderlock_after_fork(int forking_tid)
{
    struct mutex_words *m = write_lock;
    if (!m || !m->lock)
        return;
    if (m->owner == forking_tid) {
        /* fork() inside a dl_iterate_phdr callback: the callback returns in the child too,
         * and must be able to unlock what is now its thread's lock. */
        m->owner = hw_gettid();
        return;
    }
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
}

bool hw_loaderlock_known(void)
{
    return write_lock != NULL;
}
