/* This file implements the unit test of schema/chunk.h, the packed formats that the shim
 * writes and the analyzer reads: varints at every length boundary, blocks and edges round
 * trip, bytes fixed by the format (schema.sql documents them: a change here is a schema
 * change), schema 5's vtable pointers and target offsets beside schema 4's bytes, schema 7's
 * stack nodes, and a
 * decoder that refuses truncated data and varints past 64 bits without reading beyond its
 * end. Prints TAP. */
// LINK:
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "../schema/chunk.h"
#include "harness.h"

/* Decodes a copy of exactly len bytes in its own allocation, so that valgrind sees a read
 * past the end. */
static bool get_exact(const uint8_t *bytes, size_t len, uint64_t *v, size_t *used)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, bytes, len);
    const uint8_t *p = copy;
    bool ok = hw_varint_get(&p, copy + len, v);
    *used = (size_t)(p - copy);
    free(copy);
    return ok;
}

int main(void)
{
    uint8_t buf[64];
    static const uint64_t values[] = { 0, 1, 127, 128, 300, 16383, 16384, (1ull << 35) - 1, 1ull << 56, UINT64_MAX };
    static const size_t lengths[] = { 1, 1, 1, 2, 2, 2, 3, 5, 9, 10 };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        size_t n = (size_t)(hw_varint_put(buf, values[i]) - buf), used;
        uint64_t v = 0;
        bool ok = get_exact(buf, n, &v, &used);
        CHECK(n == lengths[i] && ok && v == values[i] && used == n, "varint %llu: %zu bytes, round trip",
              (unsigned long long)values[i], lengths[i]);
        if (n > 1)
            CHECK(!get_exact(buf, n - 1, &v, &used) && used == n - 1, "varint %llu cut short: refused, no read past the end",
                  (unsigned long long)values[i]);
    }
    static const uint8_t protobuf_300[] = { 0xac, 0x02 };   /* protobuf's own example: 300 */
    CHECK(hw_varint_put(buf, 300) - buf == 2 && !memcmp(buf, protobuf_300, 2), "300 encodes as ac 02, as protobuf");
    uint8_t eleven[11];
    memset(eleven, 0xff, sizeof eleven);
    eleven[10] = 0x01;
    uint64_t v;
    size_t used;
    CHECK(!get_exact(eleven, sizeof eleven, &v, &used), "a varint longer than 64 bits is refused");
    CHECK(!get_exact(eleven, 0, &v, &used), "no bytes: refused");

    /* Blocks: a chunk of five, addresses delta-coded from the chunk's start; the last three
     * with vtable pointers, each a zigzag delta from the one before. */
    const struct hw_chunk_block blocks[5] = {
        { .addr = 0x1000, .size = 16, .stack = 7, .seq = 1, .tid = 42, .cls = 0, .flags = 0 },
        { .addr = 0x1010, .size = 200, .stack = 0, .seq = 2, .tid = 42, .cls = 2, .flags = 0 },
        { .addr = 0x7fff00001000, .size = 1 << 20, .stack = 99999, .seq = 4000000000u, .tid = 123456, .cls = 0, .flags = 3,
          .vptr = 0x555555557d48 },
        { .addr = 0x7fff00101000, .size = 24, .stack = 0, .seq = 5, .tid = 1, .cls = 0, .flags = 0, .vptr = 0x555555557d48 },
        { .addr = 0x7fff00101020, .size = 24, .stack = 0, .seq = 6, .tid = 1, .cls = 1, .flags = 0, .vptr = 0x555555557d20 },
    };
    uint8_t *p = buf;
    struct hw_chunk_cursor prev = { 0, 0 };
    size_t at[6] = { 0 };
    for (int i = 0; i < 5; i++) {
        p = hw_chunk_put_block(p, &prev, &blocks[i]);
        at[i + 1] = (size_t)(p - buf);
    }
    size_t len = (size_t)(p - buf);
    CHECK(len <= 5 * HW_CHUNK_BLOCK_MAX, "five blocks fit HW_CHUNK_BLOCK_MAX each");
    static const uint8_t first_two[] = { 0x80, 0x20, 0x10, 0x07, 0x01, 0x2a, 0x00,    /* 0x1000 16 7 1 42 0 */
                                         0x10, 0xc8, 0x01, 0x00, 0x02, 0x2a, 0x02 };  /* +16 200 0 2 42 2 */
    CHECK(!memcmp(buf, first_two, sizeof first_two), "the bytes of two blocks are the documented ones");
    /* +0x20 24 0 6 1, class 1 | has_vptr 0x40, zigzag(-0x28) = 0x4f */
    static const uint8_t fifth[] = { 0x20, 0x18, 0x00, 0x06, 0x01, 0x41, 0x4f };
    CHECK(at[5] - at[4] == sizeof fifth && !memcmp(buf + at[4], fifth, sizeof fifth),
          "a vptr: bit 6 of the class varint, then its zigzag delta from the chunk's previous one");
    CHECK(at[4] - at[3] == 9 && buf[at[4] - 1] == 0x00 && buf[at[4] - 2] == 0x40,
          "the same vptr again costs one byte (delta 0)");
    CHECK(buf[at[3] - 8] == 0x4c && at[3] - at[2] == 7 + 3 + 3 + 5 + 3 + 1 + 7,
          "the chunk's first vptr is a delta from 0 (7 bytes), after class 0 | flags 3 << 2 | 0x40");
    const uint8_t *q = buf;
    prev = (struct hw_chunk_cursor){ 0, 0 };
    bool same = true;
    for (int i = 0; i < 5; i++) {
        struct hw_chunk_block b;
        same &= hw_chunk_get_block(&q, buf + len, &prev, &b) && !memcmp(&b, &blocks[i], sizeof b);
    }
    CHECK(same && q == buf + len, "blocks round trip, vptrs included, to the last byte");
    q = buf;
    prev = (struct hw_chunk_cursor){ 0, 0 };
    struct hw_chunk_block b;
    bool all = true;
    for (int i = 0; i < 4; i++)
        all &= hw_chunk_get_block(&q, buf + len - 1, &prev, &b);
    CHECK(all && !hw_chunk_get_block(&q, buf + len - 1, &prev, &b), "a chunk one byte short: its last block is refused");
    q = buf + at[4];
    prev = (struct hw_chunk_cursor){ 0x7fff00101000, 0x555555557d48 };
    CHECK(!hw_chunk_get_block(&q, buf + at[5] - 1, &prev, &b), "a block whose vptr is cut off is refused");
    static const uint8_t zero_vptr[] = { 0x10, 0x01, 0x00, 0x01, 0x01, 0x40, 0x00 };
    q = zero_vptr;
    prev = (struct hw_chunk_cursor){ 0, 0 };
    CHECK(!hw_chunk_get_block(&q, zero_vptr + sizeof zero_vptr, &prev, &b), "a vptr that decodes to 0 is refused");
    static const uint8_t old_block[] = { 0x80, 0x20, 0x10, 0x07, 0x01, 0x2a, 0x00 };
    q = old_block;
    prev = (struct hw_chunk_cursor){ 0, 0 };
    CHECK(hw_chunk_get_block(&q, old_block + sizeof old_block, &prev, &b) && b.vptr == 0 && q == old_block + 7,
          "a block of an earlier schema (no bit 6) reads with vptr 0");

    /* Edges: from a root (1-based id) and from a block; the second points 16 bytes in. */
    const struct hw_chunk_edge edges[3] = {
        { .from_root = true, .source = 1, .offset = 24, .target = 2 },
        { .from_root = false, .source = 0, .offset = 0, .target = 1, .target_offset = 16 },
        { .from_root = false, .source = 5, .offset = 8, .target = 3 },
    };
    p = buf;
    for (int i = 0; i < 3; i++)
        p = hw_chunk_put_edge(p, &edges[i]);
    static const uint8_t edge_bytes[] = { 0x03, 0x06, 0x02, 0x00, 0x01, 0x01, 0x10, 0x0a, 0x02, 0x03 };
    CHECK(p - buf == (long)sizeof edge_bytes && !memcmp(buf, edge_bytes, sizeof edge_bytes),
          "edges: 2 * root id + 1, offset / 8 * 2 + interior, target, target offset if interior; 2 * block for a block");
    q = buf;
    same = true;
    for (int i = 0; i < 3; i++) {
        struct hw_chunk_edge e;
        same &= hw_chunk_get_edge(&q, p, 5, &e) && e.from_root == edges[i].from_root && e.source == edges[i].source &&
                e.offset == edges[i].offset && e.target == edges[i].target && e.target_offset == edges[i].target_offset;
    }
    CHECK(same && q == p, "edges round trip (schema 5)");
    struct hw_chunk_edge e;
    q = buf;
    CHECK(!hw_chunk_get_edge(&q, buf + 2, 5, &e), "an edge cut short is refused");
    q = buf + 3;
    CHECK(!hw_chunk_get_edge(&q, buf + 6, 5, &e), "an interior edge without its target offset is refused");
    static const uint8_t zero_toff[] = { 0x00, 0x01, 0x01, 0x00 };
    q = zero_toff;
    CHECK(!hw_chunk_get_edge(&q, zero_toff + sizeof zero_toff, 5, &e), "an interior edge with target offset 0 is refused");
    /* Schema 4's bytes: the word offset alone, no target offsets. */
    static const uint8_t old_edges[] = { 0x03, 0x03, 0x02, 0x00, 0x01, 0x01 };
    q = old_edges;
    struct hw_chunk_edge e1, e2;
    CHECK(hw_chunk_get_edge(&q, old_edges + 6, 4, &e1) && hw_chunk_get_edge(&q, old_edges + 6, 4, &e2) &&
          q == old_edges + 6 && e1.from_root && e1.source == 1 && e1.offset == 24 && e1.target == 2 &&
          !e1.target_offset && !e2.from_root && e2.source == 0 && e2.offset == 8 && e2.target == 1 && !e2.target_offset,
          "edges of schema 4 read as before: offset / 8, target offset 0");

    /* Schema 9: the same edges as deltas within a chunk. A root's run of words, a block
     * scanned after the one that pointed to it, a block's later word, an interior pointer,
     * a pointer far back (a negative delta), a root again. */
    const struct hw_chunk_edge runs[] = {
        { .from_root = true, .source = 1, .offset = 80000, .target = 500010 },
        { .from_root = true, .source = 1, .offset = 80008, .target = 500011 },
        { .from_root = true, .source = 1, .offset = 80016, .target = 500012 },
        { .from_root = false, .source = 500012, .offset = 0, .target = 500004 },
        { .from_root = false, .source = 500004, .offset = 8, .target = 500003, .target_offset = 24 },
        { .from_root = false, .source = 500004, .offset = 40, .target = 900000 },
        { .from_root = false, .source = 900000, .offset = 0, .target = 899999 },
        { .from_root = true, .source = 2, .offset = 64, .target = 0 },
    };
    const int nruns = (int)(sizeof runs / sizeof runs[0]);
    struct hw_chunk_edge_cursor ewc = { 0, 0, 0 }, erc = { 0, 0, 0 };
    p = buf;
    for (int i = 0; i < nruns; i++)
        p = hw_chunk_put_edge_at(p, &ewc, &runs[i]);
    q = buf;
    same = true;
    for (int i = 0; i < nruns; i++) {
        struct hw_chunk_edge d;
        same &= hw_chunk_get_edge_at(&q, p, 9, &erc, &d) && d.from_root == runs[i].from_root &&
                d.source == runs[i].source && d.offset == runs[i].offset && d.target == runs[i].target &&
                d.target_offset == runs[i].target_offset;
    }
    CHECK(same && q == p, "edges round trip as deltas (schema 9)");
    uint8_t *mid = hw_chunk_put_edge_at(buf, &(struct hw_chunk_edge_cursor){ 0, 0, 0 }, &runs[0]);
    uint8_t *two = hw_chunk_put_edge_at(mid, &(struct hw_chunk_edge_cursor){ 2 * 1 + 1, 10000, 500010 }, &runs[1]);
    CHECK(two - mid == 3 && mid[0] == 0x00 && mid[1] == 0x04 && mid[2] == 0x04,
          "a root's next word: the same key (0), one word on and the next target (zigzag 1, * 2): three bytes");
    p = buf;
    ewc = (struct hw_chunk_edge_cursor){ 0, 0, 0 };
    for (int i = 0; i < nruns; i++)
        p = hw_chunk_put_edge_at(p, &ewc, &runs[i]);
    uint8_t plain[sizeof buf];
    uint8_t *pp = plain;
    for (int i = 0; i < nruns; i++)
        pp = hw_chunk_put_edge(pp, &runs[i]);
    CHECK(p - buf < (pp - plain) * 3 / 4, "such runs take under three quarters of schema 8's bytes (%ld, against %ld)",
          (long)(p - buf), (long)(pp - plain));
    static const uint8_t root_from_source[] = { 0x0c, 0x00, 0x01 };   /* root 1, target "from its source" */
    q = root_from_source;
    erc = (struct hw_chunk_edge_cursor){ 0, 0, 0 };
    CHECK(!hw_chunk_get_edge_at(&q, root_from_source + 3, 9, &erc, &e), "a root's pointer counted from its source is refused");
    q = buf;
    erc = (struct hw_chunk_edge_cursor){ 0, 0, 0 };
    CHECK(!hw_chunk_get_edge_at(&q, buf + 2, 9, &erc, &e), "a delta edge cut short is refused");
    q = edge_bytes;
    erc = (struct hw_chunk_edge_cursor){ 0, 0, 0 };
    CHECK(hw_chunk_get_edge_at(&q, edge_bytes + sizeof edge_bytes, 8, &erc, &e) && e.from_root && e.source == 1 &&
              e.offset == 24 && e.target == 2,
          "schema 8's edges still read through the cursor's entry point");

    /* Event records: deltas of ticks and address from the previous record, of the stack id
     * from the previous allocation, in both directions. */
    static const struct hw_ev_record evs[] = {
        { .op = HW_EV_ALLOC, .ticks = 100, .addr = 0x5000, .size = 24, .stack = 7 },
        { .op = HW_EV_ALLOC, .ticks = 103, .addr = 0x5020, .size = 1 << 20, .stack = 9 },
        { .op = HW_EV_FREE_TEMP, .ticks = 104, .addr = 0x5020 },
        { .op = HW_EV_ALLOC, .ticks = 110, .addr = 0x4000, .size = 0, .stack = 3 },
        { .op = HW_EV_FREE, .ticks = 110, .addr = 0x5000 },
        { .op = HW_EV_ALLOC, .ticks = 90, .addr = 0x7fff00000000, .size = 5, .stack = 3 },
    };
    uint8_t evbuf[6 * HW_EV_RECORD_MAX];
    struct hw_ev_cursor wc = { 0 }, rc = { 0 };
    p = evbuf;
    for (int i = 0; i < 6; i++)
        p = hw_ev_put(p, &wc, &evs[i]);
    static const uint8_t first[] = { 0xa0, 0x06, 0x80, 0xc0, 0x02, 0x18, 0x0e };
    CHECK(!memcmp(evbuf, first, sizeof first),
          "an allocation's record: zigzag(ticks delta) << 2 | op, zigzag(address delta), size, zigzag(stack delta)");
    static const uint8_t second[] = { 0x18, 0x40, 0x80, 0x80, 0x40, 0x04 };
    CHECK(!memcmp(evbuf + sizeof first, second, sizeof second),
          "the next allocation's stack id is a delta from the last one's (+2: zigzag 4)");
    q = evbuf;
    same = true;
    for (int i = 0; i < 6; i++) {
        struct hw_ev_record r;
        same &= hw_ev_get(&q, p, &rc, &r) && r.op == evs[i].op && r.ticks == evs[i].ticks && r.addr == evs[i].addr &&
                r.size == evs[i].size && r.stack == evs[i].stack;
    }
    CHECK(same && q == p, "event records round trip: ticks and addresses up and down, stacks up and down");
    struct hw_ev_cursor c0 = { 0 };
    struct hw_ev_record r0;
    q = evbuf;
    CHECK(!hw_ev_get(&q, evbuf + sizeof first - 1, &c0, &r0), "an allocation's record without its stack is refused");
    static const uint8_t bad_op[] = { 0x03, 0x00 };
    q = bad_op;
    c0 = (struct hw_ev_cursor){ 0 };
    CHECK(!hw_ev_get(&q, bad_op + 2, &c0, &r0), "op 3 is refused");

    /* Stack nodes: a root (1), its child (2) a little below in the same module, a second root
     * (3) in another module, and node 4 whose parent is 2. */
    static const struct { uint64_t parent, pc; } nodes[] = {
        { 0, 0 }, { 0, 0x401234 }, { 1, 0x401200 }, { 0, 0x7f0000001000 }, { 2, 0x4012f0 },
    };
    uint8_t stbuf[4 * HW_STACK_NODE_MAX];
    p = stbuf;
    for (uint64_t id = 1; id <= 4; id++)
        p = hw_stack_put_node(p, id, nodes[id].parent, nodes[id].pc, nodes[id].parent ? nodes[nodes[id].parent].pc : 0);
    static const uint8_t root_and_child[] = { 0x01, 0xe8, 0xc8, 0x80, 0x04, 0x01, 0x67 };
    CHECK(!memcmp(stbuf, root_and_child, sizeof root_and_child),
          "stack nodes: id - parent, then zigzag(pc - parent's pc) (a root's: its pc)");
    uint64_t got_pc[5] = { 0 };
    q = stbuf;
    same = true;
    for (uint64_t id = 1; id <= 4; id++) {
        uint64_t parent = 0, delta = 0;
        same &= hw_stack_get_node(&q, p, id, &parent, &delta) && parent == nodes[id].parent;
        got_pc[id] = (parent ? got_pc[parent] : 0) + delta;
        same &= got_pc[id] == nodes[id].pc;
    }
    CHECK(same && q == p, "stack nodes round trip: roots, a child below its parent, a grandchild above");
    uint64_t parent, delta;
    q = stbuf;
    CHECK(!hw_stack_get_node(&q, stbuf + 4, 1, &parent, &delta), "a stack node cut short is refused");
    static const uint8_t own_parent[] = { 0x00, 0x02 }, later_parent[] = { 0x03, 0x02 };
    q = own_parent;
    CHECK(!hw_stack_get_node(&q, own_parent + 2, 2, &parent, &delta), "a stack node that is its own parent is refused");
    q = later_parent;
    CHECK(!hw_stack_get_node(&q, later_parent + 2, 2, &parent, &delta), "a stack node whose parent comes after it is refused");

    /* Per-stack counters: ids out of order (a later row may have a smaller id), full-range
     * values. */
    const struct hw_count_row rows[3] = {
        { .stack = 5, .alloc_objects = 3, .alloc_bytes = 300, .free_objects = 1, .free_bytes = 100, .alloc_samples = 3,
          .free_samples = 1 },
        { .stack = 2, .alloc_objects = 1, .alloc_bytes = 16 },
        { .stack = 4000000000u, .alloc_objects = INT64_MAX, .alloc_bytes = INT64_MAX, .free_objects = INT64_MAX,
          .free_bytes = 7, .alloc_samples = 1ull << 40, .free_samples = 2 },
    };
    uint8_t cbuf[3 * HW_COUNT_ROW_MAX];
    uint64_t cprev = 0;
    p = cbuf;
    for (int i = 0; i < 3; i++)
        p = hw_count_put(p, &cprev, &rows[i]);
    static const uint8_t count_bytes[] = { 0x0a, 3, 0xac, 0x02, 1, 100, 3, 1, 0x05, 1, 16, 0, 0, 0, 0 };
    CHECK(!memcmp(cbuf, count_bytes, sizeof count_bytes),
          "counter rows: zigzag(stack id - the previous row's), then the six counters");
    q = cbuf;
    cprev = 0;
    same = true;
    for (int i = 0; i < 3; i++) {
        struct hw_count_row r;
        same &= hw_count_get(&q, p, &cprev, &r) && !memcmp(&r, &rows[i], sizeof r);
    }
    CHECK(same && q == p, "counter rows round trip: a smaller id after a larger one, 64-bit values");
    struct hw_count_row r;
    q = cbuf;
    cprev = 0;
    CHECK(!hw_count_get(&q, cbuf + 6, &cprev, &r), "a counter row cut short is refused");
    static const uint8_t stack_zero[] = { 0x00, 1, 1, 0, 0, 1, 0 };
    q = stack_zero;
    cprev = 0;
    CHECK(!hw_count_get(&q, stack_zero + sizeof stack_zero, &cprev, &r), "a counter row of stack 0 is refused");
    return done();
}
