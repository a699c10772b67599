/* profile.h: one snapshot's heap profile, symbolized: the model every report renders.
 *
 * Values are Go's four heap sample types, already unbiased for sampling by the shim:
 * alloc_objects, alloc_space (since start), inuse_objects, inuse_space (at the snapshot); then
 * leaked_objects, leaked_space: the snapshot's unreachable objects (direct and indirect leaks,
 * heapwatch_ignore()d ones left out), counted exactly from its object rows. Unreachable objects
 * whose allocation was not sampled form one sample of stack id 0 whose only location is the
 * pseudo-location "(unsampled)". Both are 0 when the snapshot was not marked. */
#ifndef HW_PROFILE_H
#define HW_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "db.h"
#include "hmap.h"

enum { V_ALLOC_OBJECTS, V_ALLOC_SPACE, V_INUSE_OBJECTS, V_INUSE_SPACE, V_LEAKED_OBJECTS, V_LEAKED_SPACE,
       V_TEMP_OBJECTS, V_TEMP_SPACE, NV };
/* Whether sample type i needs a marked snapshot (leaked_objects, leaked_space). */
#define VALUE_NEEDS_WALK(i) ((i) == V_LEAKED_OBJECTS || (i) == V_LEAKED_SPACE)
/* Whether sample type i needs the event log (temporary_objects, temporary_space: allocations
 * freed before their thread's next allocation, heaptrack's "temporary"). */
#define VALUE_NEEDS_EVENTS(i) ((i) >= V_TEMP_OBJECTS)
/* Which optional values a profile has: what values_json_known prints as numbers, null, or
 * not at all. */
#define VALUES_WALKED 1u        /* the leaked values (else null) */
#define VALUES_TEMPORARIES 2u   /* the temporary values (else left out, as before schema 6) */
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
    int64_t load_seq;              /* the shim's number for this load (schema 2: the row id) */
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
    int64_t stack_id;       /* 0: the unsampled objects' pseudo-sample */
    int depth;
    struct location **locs;   /* leaf first, allocator frames already dropped */
    int64_t v[NV];
};

/* Whether every value of s is 0 (exports leave such samples out). */
static inline bool sample_all_zero(const struct sample *s)
{
    for (int i = 0; i < NV; i++)
        if (s->v[i])
            return false;
    return true;
}

struct symcache;   /* symcache.h: symbolization state for one database */

struct profile {
    struct hwdb *db;
    struct symcache *sc;
    int64_t snapshot, time_ns, sample_rate;
    char *label, *trigger, *mode;
    bool marked;            /* the leaked values are known (see db.h struct snapshot_info) */
    bool temporaries;       /* the temporary values are known (from the event log) */
    struct sample *samples;
    size_t nr, alloc;
    int64_t total[NV];
};

/* Load snapshot `snap` of db with stacks symbolized through sc; dies on a corrupt database. */
void profile_load(struct profile *p, struct hwdb *db, struct symcache *sc, int64_t snap);
void profile_release(struct profile *p);
/* Add v to the sample of stack_id among the first `sorted` samples (sorted by stack id), or
 * append a sample for it; profile_sort orders them again. */
void profile_add_values(struct profile *p, size_t sorted, int64_t stack_id, const int64_t v[NV]);
void profile_sort(struct profile *p);
/* Dies (3) when sample type `index` needs a heap walk that snapshot p did not have, or an
 * event log that its database does not have. */
void profile_require_index(const struct profile *p, int index);
/* VALUES_WALKED and VALUES_TEMPORARIES, as p has them. */
static inline unsigned profile_known(const struct profile *p)
{
    return (p->marked ? VALUES_WALKED : 0) | (p->temporaries ? VALUES_TEMPORARIES : 0);
}
/* The number of sample types p exports: the temporary ones only when it has them. */
static inline int profile_nv(const struct profile *p)
{
    return p->temporaries ? NV : V_TEMP_OBJECTS;
}

/* The locations of stack `stack_id` (0: none), leaf first, into out[0..max); returns how many. */
int profile_stack(struct hwdb *db, struct symcache *sc, int64_t stack_id, struct location **out, int max);
/* How many leading locations of a stack are allocator wrappers (strdup, getline, operator new
 * of a library...), to be charged to their caller as pprof drops runtime.malloc. Always leaves
 * at least one location. */
int profile_wrapper_frames(struct location *const *locs, int depth);
#define PROFILE_MAX_DEPTH 256

#endif
