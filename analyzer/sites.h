/* sites.h: an allocation stack said as its site, for the reports that group blocks by where
 * they were allocated without a profile (types, path): the first frame that is not an
 * allocator wrapper (profile_wrapper_frames) and its caller. Context: analyzer only. */
#ifndef HW_SITES_H
#define HW_SITES_H

#include <stdint.h>
#include "json.h"
#include "profile.h"

struct symcache;

struct site {
    const struct frame *at;       /* the allocating frame; NULL when the stack is 0 (not sampled) */
    const struct frame *caller;   /* its caller's frame (the outer one of an inlined pair too),
                                   * NULL when none */
    uint32_t key_at, key_caller;  /* location ids (symcache.h): equal ids, equal sites */
};

/* The site of stack stack_id (0: not sampled, every field NULL / 0). */
void site_of_stack(struct hwdb *db, struct symcache *sc, int64_t stack_id, struct site *out);
/* "make_entry owners.c:83 < build", or "(unsampled)". */
const char *site_text(const struct site *s, char *buf, size_t size);
/* {"function":..,"file":..,"line":..,"caller":..} or null for an unsampled one. */
void site_json(struct json *j, const struct site *s);

#endif
