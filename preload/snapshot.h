/* snapshot.h: taking profile snapshots and the triggers that ask for them. */
#ifndef HW_SNAPSHOT_H
#define HW_SNAPSHOT_H

#include <stdbool.h>
#include "hw.h"

/* Start the helper thread and the signal trigger; open the database. Guarded, from the
 * constructor (or a fork child's first need). */
void hw_snapshot_start(void);
/* Take one snapshot now on the calling thread; returns the snapshot id or -1. Guarded. */
long hw_snapshot_take(const char *trigger, const char *label);
/* At exit: the final snapshot (if enabled), then close the database. */
void hw_snapshot_at_exit(void);
/* fork handlers. */
void hw_snapshot_atfork_prepare(void);
void hw_snapshot_atfork_parent(void);
void hw_snapshot_atfork_child(void);

#endif
