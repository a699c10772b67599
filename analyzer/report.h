/* report.h: aggregating a profile into rows (pprof's flat and cum) and rendering sizes.
 * Rows are keyed by the strings they show, so rows from two databases line up in a diff. */
#ifndef HW_REPORT_H
#define HW_REPORT_H

#include <stdbool.h>
#include "hmap.h"
#include "json.h"
#include "profile.h"

/* FUNCTION, LINE and STACK group a profile's samples by their stacks (report_aggregate);
 * OWNER and TYPE group a walked snapshot's heap (groupings.h), for diff and growth only. */
enum report_by { BY_FUNCTION, BY_LINE, BY_STACK, BY_OWNER, BY_TYPE };

struct row {
    uint64_t key;
    const char *function, *file;   /* the row's frame (BY_FUNCTION: file of its first sighting) */
    int line;
    const struct sample *sample;   /* BY_STACK: the stack shown */
    int64_t flat[NV], cum[NV];
};

struct rows {
    struct row *v;
    size_t nr, alloc;
    struct hmap index;   /* key -> row index + 1 */
};

/* Parse "function" | "line" | "stack" | "owner" | "type"; -1 if unknown. */
int report_by_parse(const char *s);
extern const char *const report_by_names[];
/* Add p's samples into rows (call again with another profile to sum); by is a stack grouping. */
void report_aggregate(const struct profile *p, enum report_by by, struct rows *rows);
/* The key of the row that s's flat values go to (its leaf frame; its whole stack BY_STACK),
 * with that frame in *f; 0 for a sample without locations. */
uint64_t report_flat_key(const struct sample *s, enum report_by by, const struct frame **f);
/* The row with key, or NULL. */
struct row *report_find(struct rows *rows, uint64_t key);
/* Sort by |value[idx]| of flat (or cum) descending, then by name. */
void report_sort(struct rows *rows, int idx, bool by_cum);
void report_rows_release(struct rows *rows);

/* "12.5MiB", "512B", "3.0k objects" style rendering into buf. */
const char *fmt_value(char *buf, size_t size, int64_t v, int idx);
/* The row's display name: "func file:line", "func", or the stack "a < b < c". */
const char *row_name(const struct row *r, enum report_by by, char *buf, size_t size);
/* Emit the row's identity fields (function, file, line or frames) into an open JSON object. */
void row_json_identity(struct json *j, const struct row *r, enum report_by by);
/* Emit "frames":[{"function":..,"file":..,"line":..},...] for a stack, innermost first and
 * inlined frames expanded (what `top --by stack --json` shows), into an open JSON object. */
void sample_frames_json(struct json *j, const struct sample *s);
/* Emit {"alloc_objects":..,..} for a values array, the heap-walk values (leaked_*) null
 * unless walked. */
void values_json_known(struct json *j, const int64_t v[NV], unsigned known);
/* Emit a snapshot row's fields ("time_ns", "label", ..., "mode", the reachability totals, null
 * when the snapshot had no heap walk, ..., "write_ns") into an open JSON object. */
void snapshot_info_json(struct json *j, const struct snapshot_info *si);

#endif
