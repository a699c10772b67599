/* This file implements reading the event log (eventlog.h): inflating each chunk, decoding
 * the threads' record streams (schema/chunk.h), merging them by the event clock within a
 * window of one chunk, and matching frees with their allocations. */
#define _GNU_SOURCE
#include "eventlog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "../schema/chunk.h"
#include "hmap.h"
#include "usage.h"

#define MAX_RAW_BYTES (1ull << 31)   /* a chunk the shim cannot have written: corrupt */

/* ---- the blocks live at the moment: address -> allocation ---------------------------------- */

struct live {
    uint64_t addr, size;
    int64_t stack, alloc_ns;
    double objects, bytes;
};

/* Open addressing with linear probing and backward-shift deletion; addr 0 marks a free slot
 * (the shim never records a block at 0). */
struct live_map {
    struct live *slot;
    size_t nr, cap;
};

static size_t live_hash(uint64_t addr, size_t cap)
{
    return (size_t)((addr >> 4) * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
}

static struct live *live_find(struct live_map *m, uint64_t addr)
{
    if (!m->cap)
        return NULL;
    for (size_t i = live_hash(addr, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slot[i].addr == addr)
            return &m->slot[i];
        if (!m->slot[i].addr)
            return NULL;
    }
}

static void live_put(struct live_map *m, const struct live *l);

static void live_grow(struct live_map *m)
{
    struct live_map bigger = { xcalloc(m->cap ? 2 * m->cap : 1024, sizeof *m->slot), 0, m->cap ? 2 * m->cap : 1024 };
    for (size_t i = 0; i < m->cap; i++)
        if (m->slot[i].addr)
            live_put(&bigger, &m->slot[i]);
    free(m->slot);
    *m = bigger;
}

/* Insert or replace l. */
static void live_put(struct live_map *m, const struct live *l)
{
    if (2 * (m->nr + 1) > m->cap)
        live_grow(m);
    size_t i = live_hash(l->addr, m->cap);
    while (m->slot[i].addr && m->slot[i].addr != l->addr)
        i = (i + 1) & (m->cap - 1);
    if (!m->slot[i].addr)
        m->nr++;
    m->slot[i] = *l;
}

static void live_delete(struct live_map *m, struct live *l)
{
    size_t i = (size_t)(l - m->slot), j = i;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (!m->slot[j].addr)
            break;
        size_t home = live_hash(m->slot[j].addr, m->cap);
        /* Move j back into the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->slot[i] = m->slot[j];
            i = j;
        }
    }
    m->slot[i].addr = 0;
    m->nr--;
}

/* ---- decoding -------------------------------------------------------------------------------- */

/* A decoded record waiting in the merge window, in its thread's queue. */
struct pending {
    uint64_t ticks;
    int64_t ns;
    uint64_t addr, size, stack;
    unsigned op;
};

/* A thread's stream: where its decoding is, and its records waiting in the window, in its
 * own order (oldest at head). */
struct thread_cursor {
    uint64_t stream;
    int tid;
    struct hw_ev_cursor c;
    struct pending *q;
    size_t head, nr, alloc;
};

struct replay {
    struct hwdb *db;
    ev_fn *fn;
    void *ctx;
    struct ev_stats st;
    double rate;                /* the process's sample rate; <= 1: every event weighs 1 */
    struct live_map live;
    struct thread_cursor *threads;   /* one per stream */
    size_t nr_threads, alloc_threads;
    struct hmap streams;             /* stream number -> index in threads + 1 */
    size_t *heap;               /* threads with records waiting, by their oldest (a min-heap) */
    size_t nr_heap, alloc_heap;
    uint64_t last_ticks, last_chunk_end;
    int64_t last_ns;
    bool any_delivered;
    uint8_t *raw;
    size_t alloc_raw;
    int stop;
    char **failure;   /* soft replay: a corrupt chunk's message goes here, and the replay stops */
};

/* A corrupt chunk: one message and exit 3, or in a soft replay the message kept and the
 * replay stopped (its return value, for the chunk callback to return). */
static int corrupt(struct replay *r, int64_t chunk, const char *why)
{
    char *msg = xasprintf("cannot read '%s': event chunk %lld is corrupt (%s)", r->db->path, (long long)chunk, why);
    if (!r->failure)
        die(EXIT_INPUT, "%s", msg);
    *r->failure = msg;
    return r->stop = -2;
}

static struct thread_cursor *cursor_of(struct replay *r, uint64_t stream, int tid)
{
    uintptr_t at = (uintptr_t)hmap_get(&r->streams, stream);
    if (at)
        return &r->threads[at - 1];
    ALLOC_GROW(r->threads, r->nr_threads + 1, r->alloc_threads);
    r->threads[r->nr_threads] = (struct thread_cursor){ .stream = stream, .tid = tid };
    hmap_put(&r->streams, stream, (void *)(uintptr_t)(r->nr_threads + 1));
    return &r->threads[r->nr_threads++];
}

static void weigh(const struct replay *r, uint64_t size, double *objects, double *bytes)
{
    if (r->rate <= 1) {
        *objects = 1;
        *bytes = (double)size;
        return;
    }
    double p = -expm1(-(double)(size ? size : 1) / r->rate);
    *objects = 1 / p;
    *bytes = (double)size / p;
}

/* Deliver one event of the window to the callback, matching a free with its allocation. */
static void deliver(struct replay *r, const struct pending *p, int tid)
{
    if (r->stop)
        return;
    int64_t ns = p->ns;
    if (r->any_delivered && p->ticks < r->last_ticks) {
        r->st.late++;
        ns = r->last_ns;
    } else {
        r->last_ticks = p->ticks;
        r->last_ns = ns;
        r->any_delivered = true;
    }
    struct ev_event e = { .op = p->op, .time_ns = ns, .tid = tid, .addr = p->addr };
    if (p->op == HW_EV_ALLOC) {
        struct live l = { p->addr, p->size, (int64_t)p->stack, ns, 0, 0 };
        weigh(r, p->size, &l.objects, &l.bytes);
        if (live_find(&r->live, p->addr))
            r->st.unmatched_frees++;   /* its free is missing: the new block replaces it */
        live_put(&r->live, &l);
        e.size = l.size;
        e.stack = l.stack;
        e.alloc_ns = ns;
        e.objects = l.objects;
        e.bytes = l.bytes;
    } else {
        struct live *l = live_find(&r->live, p->addr);
        if (!l) {
            r->st.unmatched_frees++;
            return;
        }
        e.size = l->size;
        e.stack = l->stack;
        e.alloc_ns = l->alloc_ns;
        e.objects = l->objects;
        e.bytes = l->bytes;
        live_delete(&r->live, l);
    }
    r->stop = r->fn(r->ctx, &e);
}

/* Whether thread x's oldest waiting record comes before thread y's (ties: by tid). */
static bool before(const struct replay *r, size_t x, size_t y)
{
    const struct thread_cursor *a = &r->threads[x], *b = &r->threads[y];
    uint64_t ta = a->q[a->head].ticks, tb = b->q[b->head].ticks;
    return ta != tb ? ta < tb : a->tid < b->tid;
}

static void heap_down(struct replay *r, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < r->nr_heap && before(r, r->heap[l], r->heap[m]))
            m = l;
        if (l + 1 < r->nr_heap && before(r, r->heap[l + 1], r->heap[m]))
            m = l + 1;
        if (m == i)
            return;
        size_t t = r->heap[i];
        r->heap[i] = r->heap[m];
        r->heap[m] = t;
        i = m;
    }
}

/* Deliver, oldest first across threads, every waiting record taken up to `upto` ticks (all
 * of them when flush): a k-way merge of the threads' queues, each already in order. */
static void release_window(struct replay *r, uint64_t upto, bool flush)
{
    r->nr_heap = 0;
    ALLOC_GROW(r->heap, r->nr_threads, r->alloc_heap);
    for (size_t i = 0; i < r->nr_threads; i++)
        if (r->threads[i].head < r->threads[i].nr)
            r->heap[r->nr_heap++] = i;
    for (size_t i = r->nr_heap / 2; i-- > 0;)
        heap_down(r, i);
    while (r->nr_heap) {
        struct thread_cursor *t = &r->threads[r->heap[0]];
        const struct pending *p = &t->q[t->head];
        if (!flush && p->ticks > upto)
            break;
        deliver(r, p, t->tid);
        if (++t->head == t->nr)
            r->heap[0] = r->heap[--r->nr_heap];
        heap_down(r, 0);
    }
    for (size_t i = 0; i < r->nr_threads; i++) {   /* drop what was delivered */
        struct thread_cursor *t = &r->threads[i];
        if (t->head && t->head * 2 >= t->nr) {
            memmove(t->q, t->q + t->head, (t->nr - t->head) * sizeof *t->q);
            t->nr -= t->head;
            t->head = 0;
        }
    }
}

static int64_t ticks_to_ns(const struct db_event_chunk *c, uint64_t ticks)
{
    if (c->end_ticks == c->start_ticks)
        return c->end_ns;
    double f = ((double)(int64_t)(ticks - (uint64_t)c->start_ticks)) / (double)(c->end_ticks - c->start_ticks);
    return c->start_ns + (int64_t)llround(f * (double)(c->end_ns - c->start_ns));
}

static int one_chunk(void *ctx, const struct db_event_chunk *c)
{
    struct replay *r = ctx;
    if (c->raw_bytes <= 0 || (uint64_t)c->raw_bytes > MAX_RAW_BYTES || c->events < 0)
        return corrupt(r, c->id, "bad header");
    if (c->end_ticks < c->start_ticks || c->end_ns < c->start_ns)
        return corrupt(r, c->id, "its clock runs backwards");
    const uint8_t *p, *end;
    if (c->codec == 0) {   /* the records as they are */
        if (!c->data || c->len != (size_t)c->raw_bytes)
            return corrupt(r, c->id, "its data is not as long as its header says");
        p = c->data;
        end = p + c->len;
    } else if (c->codec == 1) {
        ALLOC_GROW(r->raw, (size_t)c->raw_bytes, r->alloc_raw);
        uLongf len = (uLongf)c->raw_bytes;
        int zrc = c->data ? uncompress(r->raw, &len, c->data, (uLong)c->len) : Z_DATA_ERROR;
        if (zrc != Z_OK)
            return corrupt(r, c->id, zrc == Z_BUF_ERROR ? "more data than its header says" : "not zlib data");
        if (len != (uLongf)c->raw_bytes)
            return corrupt(r, c->id, "less data than its header says");
        p = r->raw;
        end = p + len;
    } else {
        return corrupt(r, c->id, "unknown codec");
    }
    int64_t events = 0;
    while (p < end) {
        uint64_t stream, tid, seg;
        if (!hw_varint_get(&p, end, &stream) || !hw_varint_get(&p, end, &tid) || !hw_varint_get(&p, end, &seg) ||
            seg > (uint64_t)(end - p) || tid > INT32_MAX || !stream)
            return corrupt(r, c->id, "bad segment header");
        const uint8_t *seg_end = p + seg;
        struct thread_cursor *t = cursor_of(r, stream, (int)tid);
        if (t->tid != (int)tid)
            return corrupt(r, c->id, "a stream changes thread");
        while (p < seg_end) {
            struct hw_ev_record rec;
            if (!hw_ev_get(&p, seg_end, &t->c, &rec))
                return corrupt(r, c->id, "bad record");
            ALLOC_GROW(t->q, t->nr + 1, t->alloc);
            t->q[t->nr++] = (struct pending){
                .ticks = rec.ticks, .ns = ticks_to_ns(c, rec.ticks), .addr = rec.addr, .size = rec.size,
                .stack = rec.stack, .op = rec.op,
            };
            events++;
        }
    }
    if (events != c->events)
        return corrupt(r, c->id, "its record count does not match its header");
    if (!r->st.chunks)
        r->st.first_ns = c->start_ns;
    r->st.last_ns = c->end_ns;
    r->st.chunks++;
    r->st.events += events;
    /* Everything taken before the previous chunk's end has arrived by now. */
    release_window(r, r->last_chunk_end, false);
    r->last_chunk_end = (uint64_t)c->end_ticks;
    return r->stop;
}

bool ev_log_extent(struct hwdb *db, struct ev_stats *st)
{
    memset(st, 0, sizeof *st);
    if (db_event_log_extent(db, &st->chunks, &st->events, &st->first_ns, &st->last_ns) < 0)
        exit(EXIT_INPUT);
    char *end = db_meta_value(db, "event_log_end");
    st->complete = end != NULL;
    free(end);
    return st->chunks > 0;
}

void ev_no_log(struct hwdb *db, const char *what)
{
    char *end = db_meta_value(db, "event_log_end");
    if (end) {   /* the process ended normally, with nothing logged */
        free(end);
        if (db->sample_rate == 1)
            die(EXIT_INPUT, "'%s' has an empty event log, and %s needs events: its process made no allocation"
                " after the log began", db->path, what);
        die(EXIT_INPUT, "'%s' has an empty event log, and %s needs events: its process logged no sampled"
            " allocation (one in every %lld bytes allocated, on average; HEAPWATCH_SAMPLE_RATE=1 logs every one)",
            db->path, what, (long long)db->sample_rate);
    }
    if (db_recorded_events(db))
        die(EXIT_INPUT, "'%s' has no event log yet, which %s needs: its process ran with HEAPWATCH_EVENTS=1 but"
            " wrote none (the log goes out about once a second: it ended before, killed, or is still starting)",
            db->path, what);
    die(EXIT_INPUT, "'%s' has no event log, which %s needs: record with HEAPWATCH_EVENTS=1"
        " (heapwatch run -e, or LD_PRELOAD=... HEAPWATCH_EVENTS=1)", db->path, what);
}

void ev_require_log(struct hwdb *db, const char *what)
{
    struct ev_stats st;
    if (!ev_log_extent(db, &st))
        ev_no_log(db, what);
}

static int replay(struct hwdb *db, ev_fn *fn, void *ctx, struct ev_stats *st, char **failure)
{
    struct replay r = { .db = db, .fn = fn, .ctx = ctx, .rate = (double)db->sample_rate, .failure = failure };
    int rc = db_each_event_chunk(db, one_chunk, &r);
    if (rc < 0 && rc != -2)
        exit(EXIT_INPUT);
    if (rc != -2)
        release_window(&r, 0, true);
    if (st) {
        struct ev_stats ext;
        ev_log_extent(db, &ext);
        r.st.complete = ext.complete;
        *st = r.st;
    }
    free(r.live.slot);
    for (size_t i = 0; i < r.nr_threads; i++)
        free(r.threads[i].q);
    free(r.threads);
    free(r.heap);
    hmap_clear(&r.streams);
    free(r.raw);
    return r.stop;
}

int ev_replay(struct hwdb *db, ev_fn *fn, void *ctx, struct ev_stats *st)
{
    return replay(db, fn, ctx, st, NULL);
}

int ev_replay_soft(struct hwdb *db, ev_fn *fn, void *ctx, char **failure)
{
    *failure = NULL;
    int rc = replay(db, fn, ctx, NULL, failure);
    return *failure ? -1 : rc;
}
