/* This file implements the unit test of preload/cookie.h, the header the shim puts in front
 * of a block it records in arena mode: the cookie word's fields (magic and glibc's bit 3,
 * kind, offset up to HW_COOKIE_OFF_MAX), its two places (q[1] for the walk, p[-1] for free),
 * the base and the kind changed with the offset kept, an INLINE record's round trip with every
 * field at its extremes, hw_live_entry_make's layout, the bit that sends a free to the slow path, and clearing.
 * Prints TAP. */
// LINK:
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "../preload/cookie.h"
#include "harness.h"

int main(void)
{
    static const size_t offs[] = { 16, 32, 64, 4096, HW_COOKIE_OFF_MAX };
    static const unsigned kinds[] = { HW_COOKIE_TABLE, HW_COOKIE_INTERNAL, HW_COOKIE_INLINE };
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            uintptr_t w = hw_cookie_word(offs[i], kinds[k]);
            CHECK(hw_is_cookie(w) && (w & HW_COOKIE_SLOW_BITS) && hw_cookie_off(w) == offs[i] && hw_cookie_kind(w) == kinds[k],
                  "cookie word of offset %zu, kind %u: recognised, sends free to the slow path, fields back", offs[i], kinds[k]);
        }
    /* what free's fast path relies on: glibc never sets bit 3 of a chunk's size word, and every
     * cookie has it, so a header without it is glibc's own block */
    CHECK((HW_COOKIE_MAGIC & 8) && (HW_COOKIE_SLOW_BITS & 8) && !(HW_COOKIE_SLOW_BITS & 1) && !(HW_COOKIE_SLOW_BITS & 4),
          "cookies have bit 3, which sends a free to the slow path; PREV_INUSE and NON_MAIN_ARENA do not");

    /* hw_live_entry_make's words are the bit fields' layout */
    struct hw_live_entry made = hw_live_entry_make(0x1230, (1ull << 40) - 2, (1u << 22) - 3, true, 0xfedcba98u, 0x76543210u);
    struct hw_live_entry fields = { .addr = 0x1230, .size = (1ull << 40) - 2, .thread = (1u << 22) - 3, .ignored = 0,
                                    .uncounted = 1, .stack = 0xfedcba98u, .seq = 0x76543210u };
    CHECK(!memcmp(&made, &fields, sizeof made), "hw_live_entry_make builds the entry its fields would");
    made = hw_live_entry_make(16, 5, 1, false, 2, 3);
    fields = (struct hw_live_entry){ .addr = 16, .size = 5, .thread = 1, .stack = 2, .seq = 3 };
    CHECK(!memcmp(&made, &fields, sizeof made), "hw_live_entry_make of small values, not uncounted");

    /* a real block q of 4 KiB with the user block 64 bytes in (an alignment's offset) */
    uintptr_t *q = aligned_alloc(64, 4096);
    memset(q, 0xa5, 4096);
    void *p = hw_cookie_put(q, 64, HW_COOKIE_TABLE);
    CHECK(p == (char *)q + 64 && q[1] == ((uintptr_t *)p)[-1] && hw_cookie_base(p) == q,
          "put: the user block off bytes in, the same word in q[1] and p[-1], the base found from p");
    hw_cookie_set_kind(p, HW_COOKIE_INLINE);
    CHECK(hw_cookie_kind(q[1]) == HW_COOKIE_INLINE && q[1] == ((uintptr_t *)p)[-1] && hw_cookie_base(p) == q,
          "set_kind: both words change, the offset stays");

    struct hw_live_entry e = { .addr = (uintptr_t)p, .size = (1ull << 40) - 1, .thread = (1u << 22) - 1,
                               .ignored = 1, .uncounted = 0, .stack = UINT32_MAX, .seq = 0x89abcdefu };
    hw_cookie_put_record(p, &e);
    struct hw_live_entry r = hw_cookie_record(p);
    CHECK(!memcmp(&r, &e, sizeof e) && hw_is_cookie(q[1]) && hw_is_cookie(((uintptr_t *)p)[-1]),
          "record at its extremes (size 2^40-1, thread 2^22-1, stack and seq): round trip, cookies untouched");
    e = (struct hw_live_entry){ .addr = (uintptr_t)p, .size = 0, .thread = 0, .ignored = 0, .uncounted = 1, .stack = 0, .seq = 0 };
    hw_cookie_put_record(p, &e);
    r = hw_cookie_record(p);
    CHECK(!memcmp(&r, &e, sizeof e), "record of zeros but the uncounted flag: round trip");

    /* offset 32, the record's own: q[0] and p[-2] hold the record, q[1] = p[-3] and p[-1] the cookie */
    void *p32 = hw_cookie_put(q, HW_COOKIE_RECORD_OFF, HW_COOKIE_INLINE);
    e = (struct hw_live_entry){ .addr = (uintptr_t)p32, .size = 200, .thread = 3, .stack = 7, .seq = 9 };
    hw_cookie_put_record(p32, &e);
    r = hw_cookie_record(p32);
    CHECK(!memcmp(&r, &e, sizeof e) && hw_cookie_kind(q[1]) == HW_COOKIE_INLINE && hw_cookie_off(q[1]) == 32 &&
              ((uintptr_t *)p32)[-1] == q[1],
          "offset 32: the record in q[0] and p[-2] leaves both cookie words whole");
    hw_cookie_clear(p32);
    CHECK(!hw_is_cookie(q[1]) && !hw_is_cookie(((uintptr_t *)p32)[-1]), "clear: neither word is a cookie any more");
    free(q);
    return done();
}
