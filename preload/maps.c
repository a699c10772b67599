/* This file implements maps.h: the process's mappings from /proc/self/maps, read with raw
 * system calls into the shim's own memory, and the questions the walk asks of them.
 * Context: SIGSAFE -- no allocation, no locks. */
#define _GNU_SOURCE
#include "maps.h"

static uintptr_t parse_hex(const char **p)
{
    uintptr_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else
            return v;
    }
}

void hw_maps_read(struct hw_vec *maps)
{
    static char *buf;
    static size_t cap;
    hw_vec_clear(maps);
    for (;;) {
        if (!buf) {
            cap = cap ? cap * 2 : (1u << 20);
            buf = hw_map(cap);
            if (!buf)
                return;
        }
        size_t n = hw_read_file("/proc/self/maps", buf, cap);
        if (n + 1 == cap) {  /* may not have fit: read it again into a bigger buffer */
            hw_unmap(buf, cap);
            buf = NULL;
            continue;
        }
        for (const char *p = buf, *end = buf + n; p < end;) {
            struct hw_mapping *m = hw_vec_push(maps);
            if (!m)
                return;
            m->lo = parse_hex(&p);
            p++;
            m->hi = parse_hex(&p);
            m->readable = p[1] == 'r';
            while (p < end && *p != '\n')
                p++;
            p++;
        }
        return;
    }
}

/* The first mapping that ends above a (maps are sorted and disjoint), or NULL. */
const struct hw_mapping *hw_maps_from(const struct hw_vec *maps, uintptr_t a)
{
    const struct hw_mapping *m = (const struct hw_mapping *)maps->data;
    size_t lo = 0, hi = maps->nr;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m[mid].hi <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < maps->nr ? &m[lo] : NULL;
}

const struct hw_mapping *hw_maps_of(const struct hw_vec *maps, uintptr_t a)
{
    const struct hw_mapping *m = hw_maps_from(maps, a);
    return m && m->lo <= a ? m : NULL;
}

uintptr_t hw_maps_readable_end(const struct hw_vec *maps, uintptr_t a, uintptr_t *next)
{
    if (!maps->nr)
        return UINTPTR_MAX;  /* no mappings known (a unit test's hand-made roots): all readable */
    const struct hw_mapping *m = hw_maps_from(maps, a), *end = (const struct hw_mapping *)maps->data + maps->nr;
    while (m && m < end && !m->readable)
        m++;
    if (!m || m == end) {
        *next = UINTPTR_MAX;
        return 0;
    }
    if (m->lo > a) {
        *next = m->lo;
        return 0;
    }
    uintptr_t hi = m->hi;
    for (m++; m < end && m->readable && m->lo == hi; m++)
        hi = m->hi;
    return hi;
}

