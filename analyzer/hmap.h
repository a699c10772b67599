/* hmap.h: an open-addressing hash map from uint64_t keys to pointers, and a string interner
 * built on it (equal strings get the same pointer, so reports compare names by address). */
#ifndef HW_HMAP_H
#define HW_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap {
    uint64_t *keys;
    void **vals;
    size_t nr, cap;   /* cap is 0 or a power of two; key 0 is stored out of line */
    void *zero_val;
    int has_zero;
};

void *hmap_get(const struct hmap *m, uint64_t key);
void hmap_put(struct hmap *m, uint64_t key, void *val);
void hmap_clear(struct hmap *m);
/* Visit every value; order unspecified. */
#define HMAP_FOR_EACH(m, i) for (size_t i = 0; i < (m)->cap; i++) if ((m)->keys[i])

uint64_t hash_bytes(const void *p, size_t len);

struct strpool {
    struct hmap map;  /* hash -> chain of interned strings */
};
/* The interned copy of s (NULL stays NULL); lives until strpool_clear. */
const char *strpool_intern(struct strpool *p, const char *s);
/* The interned copy of s[0..len), NUL-terminated: strpool_intern of that prefix, without
 * copying it first (the symbolizer keeps "regexec" of "regexec@@GLIBC_2.3.4"). s[0..len) must
 * hold no NUL. */
const char *strpool_intern_n(struct strpool *p, const char *s, size_t len);
void strpool_clear(struct strpool *p);

#endif
