/* This file implements the unit test of schema/chunk.h, the packed formats that the shim
 * writes and the analyzer reads: varints at every length boundary, blocks and edges round
 * trip, bytes fixed by the format (schema.sql documents them: a change here is a schema
 * change), and a decoder that refuses truncated data and varints past 64 bits without
 * reading beyond its end. Prints TAP. */
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

    /* Blocks: a chunk of three, addresses delta-coded from the chunk's start. */
    const struct hw_chunk_block blocks[3] = {
        { .addr = 0x1000, .size = 16, .stack = 7, .seq = 1, .tid = 42, .cls = 0, .flags = 0 },
        { .addr = 0x1010, .size = 200, .stack = 0, .seq = 2, .tid = 42, .cls = 2, .flags = 0 },
        { .addr = 0x7fff00001000, .size = 1 << 20, .stack = 99999, .seq = 4000000000u, .tid = 123456, .cls = 0, .flags = 3 },
    };
    uint8_t *p = buf;
    uint64_t prev = 0;
    for (int i = 0; i < 3; i++)
        p = hw_chunk_put_block(p, &prev, &blocks[i]);
    size_t len = (size_t)(p - buf);
    CHECK(len <= 3 * HW_CHUNK_BLOCK_MAX, "three blocks fit HW_CHUNK_BLOCK_MAX each");
    static const uint8_t first_two[] = { 0x80, 0x20, 0x10, 0x07, 0x01, 0x2a, 0x00,    /* 0x1000 16 7 1 42 0 */
                                         0x10, 0xc8, 0x01, 0x00, 0x02, 0x2a, 0x02 };  /* +16 200 0 2 42 2 */
    CHECK(!memcmp(buf, first_two, sizeof first_two), "the bytes of two blocks are the documented ones");
    const uint8_t *q = buf;
    prev = 0;
    bool same = true;
    for (int i = 0; i < 3; i++) {
        struct hw_chunk_block b;
        same &= hw_chunk_get_block(&q, buf + len, &prev, &b) && !memcmp(&b, &blocks[i], sizeof b);
    }
    CHECK(same && q == buf + len, "blocks round trip, to the last byte");
    q = buf;
    prev = 0;
    struct hw_chunk_block b;
    CHECK(hw_chunk_get_block(&q, buf + len - 1, &prev, &b) && hw_chunk_get_block(&q, buf + len - 1, &prev, &b) &&
          !hw_chunk_get_block(&q, buf + len - 1, &prev, &b), "a chunk one byte short: its last block is refused");

    /* Edges: from a root (1-based id) and from a block. */
    const struct hw_chunk_edge edges[2] = {
        { .from_root = true, .source = 1, .offset = 24, .target = 2 },
        { .from_root = false, .source = 0, .offset = 0, .target = 1 },
    };
    p = buf;
    for (int i = 0; i < 2; i++)
        p = hw_chunk_put_edge(p, &edges[i]);
    static const uint8_t edge_bytes[] = { 0x03, 0x03, 0x02, 0x00, 0x00, 0x01 };
    CHECK(p - buf == (long)sizeof edge_bytes && !memcmp(buf, edge_bytes, sizeof edge_bytes),
          "edges: 2 * root id + 1, offset / 8, target; 2 * block for a block");
    q = buf;
    same = true;
    for (int i = 0; i < 2; i++) {
        struct hw_chunk_edge e;
        same &= hw_chunk_get_edge(&q, p, &e) && e.from_root == edges[i].from_root && e.source == edges[i].source &&
                e.offset == edges[i].offset && e.target == edges[i].target;
    }
    CHECK(same && q == p, "edges round trip");
    struct hw_chunk_edge e;
    q = buf;
    CHECK(!hw_chunk_get_edge(&q, buf + 2, &e), "an edge cut short is refused");
    return done();
}
