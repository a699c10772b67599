/* profile.h: one snapshot's heap profile, symbolized: the model every report renders.
 *
 * Values are Go's four heap sample types, already unbiased for sampling by the shim:
 * alloc_objects, alloc_space (since start), inuse_objects, inuse_space (at the snapshot). */
#ifndef HW_PROFILE_H
#define HW_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "db.h"
#include "hmap.h"

enum { V_ALLOC_OBJECTS, V_ALLOC_SPACE, V_INUSE_OBJECTS, V_INUSE_SPACE, NV };
extern const char *const value_names[NV];   /* "alloc_objects" ... */
extern const char *const value_units[NV];   /* "count" / "bytes" */
/* Index of a sample type name, or -1. */
int value_index(const char *name);

struct frame {
    const char *function;   /* interned; "??" when unknown */
    const char *file;       /* interned; NULL when unknown */
    int line;               /* 0 when unknown */
};

struct module_info {
    int64_t id;
    const char *path, *build_id;   /* interned; build_id may be NULL */
    uint64_t bias, start, end;
};

/* A distinct return address with its frames, innermost (inlined) first. */
struct location {
    uint32_t id;            /* dense, 1-based, stable within one struct symcache */
    uint64_t pc;
    struct module_info *module;   /* NULL when outside every known module */
    int nframes;
    struct frame *frames;
};

struct sample {
    int64_t stack_id;
    int depth;
    struct location **locs;   /* leaf first, allocator frames already dropped */
    int64_t v[NV];
};

/* Symbolization state for one database: modules, resolved locations and the on-disk cache
 * (table cache_frame, written when the database is writable). */
struct symcache;
struct symcache *symcache_open(struct hwdb *db);
void symcache_close(struct symcache *sc);   /* stores new cache rows, then frees */
struct location *symcache_location(struct symcache *sc, uint64_t pc);
/* Every location resolved so far, by id (index id - 1). */
struct location **symcache_locations(struct symcache *sc, size_t *nr);
struct module_info *symcache_modules(struct symcache *sc, size_t *nr);
/* Whether any module of the stacks had no debug info (for a warning). */
bool symcache_missing_debug(struct symcache *sc, const char **example);

struct profile {
    struct hwdb *db;
    struct symcache *sc;
    int64_t snapshot, time_ns, sample_rate;
    char *label, *trigger;
    struct sample *samples;
    size_t nr, alloc;
    int64_t total[NV];
};

/* Load snapshot `snap` of db with stacks symbolized through sc; dies on a corrupt database. */
void profile_load(struct profile *p, struct hwdb *db, struct symcache *sc, int64_t snap);
void profile_release(struct profile *p);

#endif
