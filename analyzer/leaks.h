/* leaks.h: a marked snapshot's unreachable objects grouped by kind and allocation stack, with
 * suppressions applied: the model `heapwatch leaks` renders.
 *
 * Kinds are LeakSanitizer's: a direct leak (object class 2) is unreachable and pointed to by
 * no other unreachable object; an indirect leak (class 1) is unreachable but pointed to by
 * one. Objects the program passed to heapwatch_ignore() (flag 2) are never reported: they
 * count as suppressed, as LSan's __lsan_ignore_object() hides them. */
#ifndef HW_LEAKS_H
#define HW_LEAKS_H

#include <stdint.h>
#include "db.h"
#include "profile.h"
#include "suppress.h"

enum leak_kind { LEAK_DIRECT, LEAK_INDIRECT };
extern const char *const leak_kind_names[];   /* "direct", "indirect" */

struct leak_row {
    enum leak_kind kind;
    int64_t objects, bytes, stack_id;   /* stack_id 0: allocation not sampled, no frames */
    struct sample stack;                /* allocator wrappers dropped, as in every report */
};

/* A snapshot's totals: live and reachable from its row, the rest from its object rows;
 * live = reachable + indirect + leaked + suppressed, where indirect and leaked are the
 * unsuppressed ones. possible counts the reachable objects no chain of start pointers
 * reaches (flag 1), which memcheck calls "possibly lost". */
struct leak_totals {
    int64_t live_objects, live_bytes, reachable_objects, reachable_bytes;
    int64_t indirect_objects, indirect_bytes, leaked_objects, leaked_bytes;
    int64_t suppressed_objects, suppressed_bytes;
    int64_t possible_objects, possible_bytes;   /* among the reachable: memcheck's "possibly lost" */
};

struct leak_report {
    struct snapshot_info info;
    struct leak_row *rows;              /* unsuppressed: direct first, then bytes down, then stack */
    size_t nr, alloc;
    struct leak_totals total;
};

/* Load snapshot snap's leaks with stacks symbolized through sc, suppressing with sup (which
 * collects the hit counts; may be empty). Dies (3) when the snapshot had no heap walk. */
void leaks_load(struct leak_report *r, struct hwdb *db, struct symcache *sc, int64_t snap, struct suppressions *sup);
void leaks_release(struct leak_report *r);

#endif
