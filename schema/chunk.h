/* chunk.h: the packed formats of the database, encoder and decoder side by side (as pprof
 * keeps profile.proto's), so that the shim that writes them and the analyzer that reads them
 * cannot disagree. schema.sql documents the bytes of each table that holds them; a new
 * packed format (the event log's) belongs here too.
 *
 * Everything is a sequence of unsigned LEB128 varints (7 bits a byte, low bits first, the
 * high bit set on every byte but the last: protobuf's varint). Header-only and allocation-
 * free: the shim encodes in its own mappings while the heap may be walked, the analyzer
 * decodes and checks every read against the end of its blob (a corrupt database must give a
 * message, never a read out of bounds). */
#ifndef HW_SCHEMA_CHUNK_H
#define HW_SCHEMA_CHUNK_H

#include <stdbool.h>
#include <stdint.h>

#define HW_VARINT_MAX 10   /* bytes of the longest varint (a 64-bit value) */

static inline uint8_t *hw_varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads one varint from *p, not past end. False when the data ends first or the varint runs
 * past 64 bits. */
static inline bool hw_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* ---- object_chunk: every live block of a walked snapshot, in address order ----------------
 * Per block: address - the previous block's address (the first of a chunk: its address),
 * size, stack id (0 = not sampled), seq, tid, class | flags << 2 | HW_CHUNK_HAS_VPTR; then,
 * only when that bit is set (schema 5), the block's first word (a candidate C++ vtable
 * pointer) as a zigzag delta from the previous such word in the chunk (0 at its start).
 * Earlier schemas never set the bit, so one decoder reads them all. */

struct hw_chunk_block {
    uint64_t addr, size, stack, seq, tid;
    unsigned cls;     /* 0 reachable, 1 indirect leak, 2 direct leak */
    unsigned flags;   /* as in the object table: 1 possibly lost, 2 ignored */
    uint64_t vptr;    /* the block's first word when it points into a module's data (a C++
                       * object's vtable pointer, or a false candidate); 0 = none */
};

/* Where a chunk's encoder or decoder is: the previous block's address and the previous
 * nonzero vptr. Zero at the start of every chunk. */
struct hw_chunk_cursor {
    uint64_t addr, vptr;
};

#define HW_CHUNK_FLAGS_MASK 0xf   /* flags take bits 2..5 of the class varint */
#define HW_CHUNK_HAS_VPTR 0x40    /* bit 6: a vptr follows; blocks without one pay nothing */
#define HW_CHUNK_BLOCK_MAX (7 * HW_VARINT_MAX)   /* bytes one block can take */

static inline uint64_t hw_zigzag(uint64_t delta) { return delta << 1 ^ (uint64_t)-(int64_t)(delta >> 63); }
static inline uint64_t hw_unzigzag(uint64_t z) { return z >> 1 ^ (uint64_t)-(int64_t)(z & 1); }

static inline uint8_t *hw_chunk_put_block(uint8_t *p, struct hw_chunk_cursor *c, const struct hw_chunk_block *b)
{
    p = hw_varint_put(p, b->addr - c->addr);
    c->addr = b->addr;
    p = hw_varint_put(p, b->size);
    p = hw_varint_put(p, b->stack);
    p = hw_varint_put(p, b->seq);
    p = hw_varint_put(p, b->tid);
    p = hw_varint_put(p, (uint64_t)b->cls | (uint64_t)(b->flags & HW_CHUNK_FLAGS_MASK) << 2 |
                             (b->vptr ? HW_CHUNK_HAS_VPTR : 0));
    if (!b->vptr)
        return p;
    /* Objects of one class share a vptr and often lie side by side: the delta is then 0, one
     * byte where the raw address takes seven. */
    p = hw_varint_put(p, hw_zigzag(b->vptr - c->vptr));
    c->vptr = b->vptr;
    return p;
}

static inline bool hw_chunk_get_block(const uint8_t **p, const uint8_t *end, struct hw_chunk_cursor *c,
                                      struct hw_chunk_block *b)
{
    uint64_t delta, cls_flags, vdelta;
    if (!hw_varint_get(p, end, &delta) || !hw_varint_get(p, end, &b->size) || !hw_varint_get(p, end, &b->stack) ||
        !hw_varint_get(p, end, &b->seq) || !hw_varint_get(p, end, &b->tid) || !hw_varint_get(p, end, &cls_flags))
        return false;
    b->addr = c->addr += delta;
    b->cls = (unsigned)(cls_flags & 3);
    b->flags = (unsigned)(cls_flags >> 2 & HW_CHUNK_FLAGS_MASK);
    b->vptr = 0;
    if (cls_flags & HW_CHUNK_HAS_VPTR) {
        if (!hw_varint_get(p, end, &vdelta))
            return false;
        b->vptr = c->vptr += hw_unzigzag(vdelta);
        if (!b->vptr)
            return false;   /* the encoder never writes a vptr of 0 */
    }
    return true;
}

/* ---- edge_chunk: the pointers the mark found, from roots first, then from blocks -----------
 * Per pointer: source (2 * root id + 1 for a root, 2 * block number for a block), the word's
 * byte offset / 8 within the root range or block, the target block number.
 * Schema 5: the second varint is (offset / 8) * 2 + interior, and an interior pointer (one
 * whose value is not its target's start) is followed by a fourth varint, its target offset
 * (value - target's address, > 0). A pointer to a block's start costs nothing more, and
 * only the rare word offset of 64 or more can take one more byte. Earlier schemas have
 * neither: the decoder needs to know which it reads.
 * Schema 9: each pointer is a delta from the one before it in its chunk (a cursor, zero at
 * every chunk's start), since the mark finds them in runs: a root range's words in order,
 * the words of one block in order, and a block scanned right after the one that pointed to
 * it. With key = 2 * source + (1 for a root):
 *   zigzag(key - base) * 2 + b: base is the previous key (b = 0), or 2 * the previous target
 *     (b = 1: the source is the block the previous pointer led to)
 *   zigzag(words - w) * 2 + interior: words = offset / 8; w is the previous pointer's words
 *     when it had the same key, else 0
 *   zigzag(target - base) * 2 + b: base is the previous target (b = 0) or, for a block's
 *     pointer, its source (b = 1)
 *   the target offset, when interior
 * The writer takes whichever base gives the shorter varint. On the bench's 3-million-block
 * heap, a pointer takes 4 bytes instead of 9. */

struct hw_chunk_edge {
    bool from_root;
    uint64_t source;   /* root id (1-based, the root table's id) or block number */
    uint64_t offset;   /* bytes from the start of the source; a multiple of 8 */
    uint64_t target;   /* block number */
    uint64_t target_offset;  /* bytes from the target's start to where the pointer points
                              * (0: its start; always 0 before schema 5) */
};

#define HW_CHUNK_EDGE_MAX (4 * HW_VARINT_MAX)
#define HW_CHUNK_SCHEMA_TARGET_OFFSET 5   /* the first schema whose edges carry it */

static inline uint8_t *hw_chunk_put_edge(uint8_t *p, const struct hw_chunk_edge *e)
{
    p = hw_varint_put(p, 2 * e->source + (e->from_root ? 1 : 0));
    p = hw_varint_put(p, e->offset / 8 * 2 + (e->target_offset ? 1 : 0));
    p = hw_varint_put(p, e->target);
    return e->target_offset ? hw_varint_put(p, e->target_offset) : p;
}

/* Reads one edge of a database of schema `schema` (PRAGMA user_version). */
static inline bool hw_chunk_get_edge(const uint8_t **p, const uint8_t *end, int schema, struct hw_chunk_edge *e)
{
    uint64_t source, words;
    if (!hw_varint_get(p, end, &source) || !hw_varint_get(p, end, &words) || !hw_varint_get(p, end, &e->target))
        return false;
    e->from_root = source & 1;
    e->source = source >> 1;
    e->target_offset = 0;
    if (schema >= HW_CHUNK_SCHEMA_TARGET_OFFSET) {
        bool interior = words & 1;
        words >>= 1;
        if (interior && (!hw_varint_get(p, end, &e->target_offset) || !e->target_offset))
            return false;
    }
    e->offset = words * 8;
    return true;
}

#define HW_CHUNK_SCHEMA_EDGE_DELTAS 9   /* the first schema whose edges are deltas */

/* Where a chunk's edges stand (schema 9): the previous pointer's key, words and target. */
struct hw_chunk_edge_cursor {
    uint64_t key, words, target;
};

/* zigzag(v - a) * 2 or zigzag(v - b) * 2 + 1, whichever is smaller. */
static inline uint64_t hw_chunk_delta_of_two(uint64_t v, uint64_t a, uint64_t b)
{
    uint64_t za = hw_zigzag(v - a), zb = hw_zigzag(v - b);
    return za <= zb ? za << 1 : zb << 1 | 1;
}

static inline uint8_t *hw_chunk_put_edge_at(uint8_t *p, struct hw_chunk_edge_cursor *c, const struct hw_chunk_edge *e)
{
    uint64_t key = 2 * e->source + (e->from_root ? 1 : 0), words = e->offset / 8;
    p = hw_varint_put(p, hw_chunk_delta_of_two(key, c->key, 2 * c->target));
    p = hw_varint_put(p, hw_zigzag(words - (key == c->key ? c->words : 0)) * 2 + (e->target_offset ? 1 : 0));
    p = hw_varint_put(p, e->from_root ? hw_zigzag(e->target - c->target) << 1
                                      : hw_chunk_delta_of_two(e->target, c->target, e->source));
    *c = (struct hw_chunk_edge_cursor){ .key = key, .words = words, .target = e->target };
    return e->target_offset ? hw_varint_put(p, e->target_offset) : p;
}

/* Reads one edge of a database of schema `schema`; c is the chunk's cursor (zeroed at its
 * start), used from schema 9 on. */
static inline bool hw_chunk_get_edge_at(const uint8_t **p, const uint8_t *end, int schema,
                                        struct hw_chunk_edge_cursor *c, struct hw_chunk_edge *e)
{
    if (schema < HW_CHUNK_SCHEMA_EDGE_DELTAS)
        return hw_chunk_get_edge(p, end, schema, e);
    uint64_t k, w, t;
    if (!hw_varint_get(p, end, &k) || !hw_varint_get(p, end, &w) || !hw_varint_get(p, end, &t))
        return false;
    uint64_t key = (k & 1 ? 2 * c->target : c->key) + hw_unzigzag(k >> 1);
    e->from_root = key & 1;
    e->source = key >> 1;
    uint64_t words = (key == c->key ? c->words : 0) + hw_unzigzag(w >> 1);
    e->offset = words * 8;
    if (t & 1 && e->from_root)
        return false;   /* a root's pointer has no block to count from */
    e->target = (t & 1 ? e->source : c->target) + hw_unzigzag(t >> 1);
    e->target_offset = 0;
    if (w & 1 && (!hw_varint_get(p, end, &e->target_offset) || !e->target_offset))
        return false;
    *c = (struct hw_chunk_edge_cursor){ .key = key, .words = words, .target = e->target };
    return true;
}

/* ---- stack_chunk: stack-tree nodes first, first + 1, ... first + count - 1 (schema 7) -------
 * Per node: id - parent (from 1 to id: a parent is interned before its children, and a root's
 * parent is 0), then zigzag(pc - its parent's pc) (a root: its pc). A frame and its caller
 * mostly lie in one module, so a node takes three or four bytes; the reader has every parent
 * before its child, since it reads the nodes in id order. */

#define HW_STACK_NODE_MAX (2 * HW_VARINT_MAX)   /* bytes one node can take */

static inline uint8_t *hw_stack_put_node(uint8_t *p, uint64_t id, uint64_t parent, uint64_t pc, uint64_t parent_pc)
{
    p = hw_varint_put(p, id - parent);
    return hw_varint_put(p, hw_zigzag(pc - parent_pc));
}

/* Reads node id: its parent, and what to add to the parent's pc (0 for a root) for its own.
 * False when the data ends first or the parent would not come before the node. */
static inline bool hw_stack_get_node(const uint8_t **p, const uint8_t *end, uint64_t id, uint64_t *parent,
                                     uint64_t *pc_delta)
{
    uint64_t back, z;
    if (!hw_varint_get(p, end, &back) || !hw_varint_get(p, end, &z) || back == 0 || back > id)
        return false;
    *parent = id - back;
    *pc_delta = hw_unzigzag(z);
    return true;
}

/* ---- stack_count_chunk: a snapshot's per-stack counters (schema 8) ---------------------------
 * Per stack: zigzag(stack id - the previous row's id; the first row of a chunk: from 0), then
 * alloc_objects, alloc_bytes, free_objects, free_bytes, alloc_samples, free_samples (as the
 * snapshot_stack table's columns). Rows come in the order the shim interned the stacks, not by
 * id: a stack whose innermost frame was already a caller's node in an older stack has a
 * smaller id than stacks interned before it. */

struct hw_count_row {
    uint64_t stack;
    uint64_t alloc_objects, alloc_bytes, free_objects, free_bytes, alloc_samples, free_samples;
};

#define HW_COUNT_ROW_MAX (7 * HW_VARINT_MAX)   /* bytes one row can take */

static inline uint8_t *hw_count_put(uint8_t *p, uint64_t *prev_stack, const struct hw_count_row *r)
{
    p = hw_varint_put(p, hw_zigzag(r->stack - *prev_stack));
    *prev_stack = r->stack;
    p = hw_varint_put(p, r->alloc_objects);
    p = hw_varint_put(p, r->alloc_bytes);
    p = hw_varint_put(p, r->free_objects);
    p = hw_varint_put(p, r->free_bytes);
    p = hw_varint_put(p, r->alloc_samples);
    return hw_varint_put(p, r->free_samples);
}

/* Reads one row. False when the data ends first or the stack id would be 0. */
static inline bool hw_count_get(const uint8_t **p, const uint8_t *end, uint64_t *prev_stack, struct hw_count_row *r)
{
    uint64_t z;
    if (!hw_varint_get(p, end, &z) || !hw_varint_get(p, end, &r->alloc_objects) ||
        !hw_varint_get(p, end, &r->alloc_bytes) || !hw_varint_get(p, end, &r->free_objects) ||
        !hw_varint_get(p, end, &r->free_bytes) || !hw_varint_get(p, end, &r->alloc_samples) ||
        !hw_varint_get(p, end, &r->free_samples))
        return false;
    r->stack = *prev_stack + hw_unzigzag(z);
    *prev_stack = r->stack;
    return r->stack != 0;
}

/* ---- event_chunk: the event log (HEAPWATCH_EVENTS=1, schema 6) -----------------------------
 * A chunk's data (inflated first when its codec is 1, zlib) is a sequence of segments, one per stream that had
 * events to give at that drain: stream number, tid, length in bytes, then that many bytes of
 * records. A stream is one thread's records (a thread that exits and logs again, in a later
 * destructor, starts a new one; so does a new thread that gets an old one's tid); its records
 * continue from one segment to its next, in the next chunks: each record is a delta from
 * the previous one of the same stream (0 before its first), so a stream must be read from
 * its first segment on. Per record:
 *   zigzag(ticks - previous ticks) << 2 | op      op: HW_EV_ALLOC, HW_EV_FREE, HW_EV_FREE_TEMP
 *   zigzag(address - previous address)
 *   for HW_EV_ALLOC only: requested size, zigzag(stack id - the previous allocation's)
 * ticks are the event clock (the chunk's start and end pairs map it to CLOCK_REALTIME), in
 * units of 32 TSC cycles or 16 ns: about 10 ns, and small enough deltas that a record's tag
 * is mostly one byte. Reading the clock costs more than the rest of a record, so while a
 * process has one thread with events, an event may carry its thread's previous time (delta
 * 0): at most 16 events, or one tick of the kernel's coarse clock (a few ms), since the clock
 * was last read; a time is never later than its event. Once a second thread has events,
 * every event reads the clock: a free's time is taken before the real free, an allocation's
 * after the real malloc returned, so that a block passed between threads sorts in order.
 * HW_EV_FREE_TEMP is the free of a temporary allocation: the freeing thread's latest
 * allocation, with no other allocation of that thread in between (heaptrack's definition,
 * per thread). Only sampled blocks have events; a free's size and stack are its
 * allocation's. */

enum { HW_EV_ALLOC = 0, HW_EV_FREE = 1, HW_EV_FREE_TEMP = 2 };
#define HW_EV_RECORD_MAX (4 * HW_VARINT_MAX)   /* bytes one record can take */

struct hw_ev_record {
    unsigned op;
    uint64_t ticks, addr, size, stack;   /* size and stack: HW_EV_ALLOC only */
};

/* A thread's place in its stream: the previous record's ticks and address, and the previous
 * allocation's stack id. */
struct hw_ev_cursor {
    uint64_t ticks, addr, stack;
};

static inline uint8_t *hw_ev_put(uint8_t *p, struct hw_ev_cursor *c, const struct hw_ev_record *r)
{
    p = hw_varint_put(p, hw_zigzag(r->ticks - c->ticks) << 2 | r->op);
    p = hw_varint_put(p, hw_zigzag(r->addr - c->addr));
    c->ticks = r->ticks;
    c->addr = r->addr;
    if (r->op == HW_EV_ALLOC) {
        p = hw_varint_put(p, r->size);
        p = hw_varint_put(p, hw_zigzag(r->stack - c->stack));
        c->stack = r->stack;
    }
    return p;
}

static inline bool hw_ev_get(const uint8_t **p, const uint8_t *end, struct hw_ev_cursor *c, struct hw_ev_record *r)
{
    uint64_t tag, delta;
    if (!hw_varint_get(p, end, &tag) || !hw_varint_get(p, end, &delta))
        return false;
    r->op = (unsigned)(tag & 3);
    if (r->op > HW_EV_FREE_TEMP)
        return false;
    r->ticks = c->ticks += hw_unzigzag(tag >> 2);
    r->addr = c->addr += hw_unzigzag(delta);
    r->size = r->stack = 0;
    if (r->op == HW_EV_ALLOC) {
        if (!hw_varint_get(p, end, &r->size) || !hw_varint_get(p, end, &delta))
            return false;
        r->stack = c->stack += hw_unzigzag(delta);
    }
    return true;
}

#endif
