/* This file implements the analyzer's hash map (linear probing, power-of-two capacity, grown
 * at 1/2 load) and the string interner. */
#include "hmap.h"

#include <stdlib.h>
#include <string.h>
#include "usage.h"

static inline uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

uint64_t hash_bytes(const void *p, size_t len)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

void *hmap_get(const struct hmap *m, uint64_t key)
{
    if (!key)
        return m->has_zero ? m->zero_val : NULL;
    if (!m->cap)
        return NULL;
    for (size_t i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (!m->keys[i])
            return NULL;
    }
}

static void insert(struct hmap *m, uint64_t key, void *val)
{
    size_t i = mix(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->nr++;
    m->keys[i] = key;
    m->vals[i] = val;
}

void hmap_put(struct hmap *m, uint64_t key, void *val)
{
    if (!key) {
        m->has_zero = 1;
        m->zero_val = val;
        return;
    }
    if ((m->nr + 1) * 2 > m->cap) {
        struct hmap n = { 0 };
        n.cap = m->cap ? m->cap * 2 : 64;
        n.keys = xcalloc(n.cap, sizeof *n.keys);
        n.vals = xcalloc(n.cap, sizeof *n.vals);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                insert(&n, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        n.has_zero = m->has_zero;
        n.zero_val = m->zero_val;
        *m = n;
    }
    insert(m, key, val);
}

void hmap_clear(struct hmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

struct interned {
    struct interned *next;
    char s[];
};

const char *strpool_intern_n(struct strpool *p, const char *s, size_t len)
{
    uint64_t h = hash_bytes(s, len);
    struct interned *head = hmap_get(&p->map, h);
    for (struct interned *e = head; e; e = e->next)
        if (!strncmp(e->s, s, len) && !e->s[len])
            return e->s;
    struct interned *e = xmalloc(sizeof *e + len + 1);
    memcpy(e->s, s, len);
    e->s[len] = '\0';
    e->next = head;
    hmap_put(&p->map, h, e);
    return e->s;
}

const char *strpool_intern(struct strpool *p, const char *s)
{
    return s ? strpool_intern_n(p, s, strlen(s)) : NULL;
}

static void free_chain(struct interned *e)
{
    while (e) {
        struct interned *next = e->next;
        free(e);
        e = next;
    }
}

void strpool_clear(struct strpool *p)
{
    HMAP_FOR_EACH(&p->map, i)
        free_chain(p->map.vals[i]);
    if (p->map.has_zero)
        free_chain(p->map.zero_val);
    hmap_clear(&p->map);
}
