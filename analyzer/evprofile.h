/* evprofile.h: profiles from the event log: the heap at any moment (`top --at`, `peak`,
 * `export --at`), the peak itself, and the temporary allocations up to a snapshot. */
#ifndef HW_EVPROFILE_H
#define HW_EVPROFILE_H

#include <stdbool.h>
#include <stdint.h>
#include "profile.h"

/* p as profile_load makes it, but for the moment at_ns (CLOCK_REALTIME), from the log alone:
 * per stack what was allocated up to then (alloc_*), what of it was not freed yet (inuse_*)
 * and the temporary allocations (temporary_*); the leaked values are unknown. label names
 * the moment ("peak", "2.5s"...). max_events > 0 also stops after that many events (the
 * peak's own, when several share its nanosecond). Dies when db has no event log. */
void profile_load_at(struct profile *p, struct hwdb *db, struct symcache *sc, int64_t at_ns, int64_t max_events,
                     const char *label);
/* Add the temporary values up to p's snapshot time to a snapshot's profile (when its
 * database has an event log; otherwise p stays without them). A corrupt log dies with one
 * message when they are required, else it gives a warning and p stays without them. */
void profile_add_temporaries(struct profile *p, bool required);

/* The peak of inuse_space (index V_INUSE_SPACE) or inuse_objects over the log: the first
 * moment the total was highest, and the totals then. In sampled mode both are estimates and
 * the peak of an estimate leans high: it is the largest of many noisy values. */
struct ev_peak {
    int64_t time_ns;
    double objects, bytes;
    int64_t events;     /* events replayed up to and including the peak's */
};
void ev_find_peak(struct hwdb *db, int index, struct ev_peak *pk);

/* The moment an --at argument names: "peak" (of inuse_space), a time since the log's start
 * ("2.5s", "300ms", "1500us"), an absolute time ("@1765000000.25": seconds since the epoch,
 * CLOCK_REALTIME, to the nanosecond), or a snapshot ("3", "latest", "-1": its time). *label gets a
 * malloc'd name for it; *max_events, for profile_load_at, the events up to the peak's own
 * (events of one thread may share a time: the peak is one of them), 0 for the others. Dies
 * with one message on anything else. */
int64_t ev_resolve_at(struct hwdb *db, const char *spec, char **label, int64_t *max_events);

#endif
