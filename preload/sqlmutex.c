/* This file implements sqlmutex.h: SQLite's mutex methods (sqlite3_mutex_methods) over
 * pthread mutexes, with a count of the threads holding any and a gate for fork. */
#define _GNU_SOURCE
#include "sqlmutex.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "arena.h"
#include "hw.h"
#include "sys.h"

struct sqlite3_mutex {
    pthread_mutex_t m;
};

#define FIRST_STATIC SQLITE_MUTEX_STATIC_MAIN
#define NSTATIC (SQLITE_MUTEX_STATIC_VFS3 - FIRST_STATIC + 1)
static struct sqlite3_mutex statics[NSTATIC];

static _Atomic int holders;          /* threads holding at least one SQLite mutex */
static _Atomic bool gate_closed;

static int m_init(void)
{
    for (int i = 0; i < NSTATIC; i++)
        pthread_mutex_init(&statics[i].m, NULL);
    return SQLITE_OK;
}

static int m_end(void) { return SQLITE_OK; }

static bool is_static(const sqlite3_mutex *p)
{
    return p >= statics && p < statics + NSTATIC;
}

static sqlite3_mutex *m_alloc(int id)
{
    if (id >= FIRST_STATIC && id < FIRST_STATIC + NSTATIC)
        return &statics[id - FIRST_STATIC];
    if (id != SQLITE_MUTEX_FAST && id != SQLITE_MUTEX_RECURSIVE)
        return NULL;
    sqlite3_mutex *p = hw_arena_alloc(sizeof *p);
    if (!p)
        return NULL;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (id == SQLITE_MUTEX_RECURSIVE)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&p->m, &attr);
    pthread_mutexattr_destroy(&attr);
    return p;
}

static void m_free(sqlite3_mutex *p)
{
    if (!p || is_static(p))
        return;
    pthread_mutex_destroy(&p->m);
    hw_arena_free(p);
}

/* The calling thread is about to take a mutex. Its first waits while the gate is closed:
 * holders goes up before the gate is read, and the fork closes the gate before it reads
 * holders (both sequentially consistent), so one of the two sees the other. */
static void gate_enter(void)
{
    if (hw_self.sql_mutexes++)
        return;
    for (;;) {
        atomic_fetch_add(&holders, 1);
        if (!atomic_load(&gate_closed))
            return;
        atomic_fetch_sub(&holders, 1);
        while (atomic_load_explicit(&gate_closed, memory_order_relaxed)) {
            struct timespec pause = { 0, 50000 };
            nanosleep(&pause, NULL);
        }
    }
}

static void gate_leave(void)
{
    if (!--hw_self.sql_mutexes)
        atomic_fetch_sub(&holders, 1);
}

static void m_enter(sqlite3_mutex *p)
{
    gate_enter();
    pthread_mutex_lock(&p->m);
}

static int m_try(sqlite3_mutex *p)
{
    gate_enter();
    if (pthread_mutex_trylock(&p->m) == 0)
        return SQLITE_OK;
    gate_leave();
    return SQLITE_BUSY;
}

static void m_leave(sqlite3_mutex *p)
{
    pthread_mutex_unlock(&p->m);
    gate_leave();
}

int hw_sqlmutex_install(void)
{
    static const sqlite3_mutex_methods methods = {
        m_init, m_end, m_alloc, m_free, m_enter, m_try, m_leave, NULL, NULL,
    };
    return sqlite3_config(SQLITE_CONFIG_MUTEX, &methods);
}

bool hw_sqlmutex_fork_prepare(int ms)
{
    atomic_store(&gate_closed, true);
    if (hw_self.sql_mutexes)
        return false;   /* a fork from inside SQLite (a handler): its own locks go with it */
    uint64_t until = hw_now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * 1000000u;
    while (atomic_load(&holders)) {
        if (hw_now_ns(CLOCK_MONOTONIC) >= until)
            return false;
        struct timespec pause = { 0, 20000 };
        nanosleep(&pause, NULL);
    }
    return true;
}

void hw_sqlmutex_fork_parent(void)
{
    atomic_store(&gate_closed, false);
}

void hw_sqlmutex_fork_child(void)
{
    /* Either nobody held a mutex at the fork (the prepare handler waited for it), or the
     * child never uses SQLite (hw_sink_fork_child): the count starts again from this thread's. */
    atomic_store(&holders, hw_self.sql_mutexes ? 1 : 0);
    atomic_store(&gate_closed, false);
}
