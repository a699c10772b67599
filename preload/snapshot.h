/* snapshot.h: taking profile snapshots and the triggers that ask for them. */
#ifndef HW_SNAPSHOT_H
#define HW_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"
#include "stw.h"

/* Start the helper thread and the signal trigger; open the database. Guarded, from the
 * constructor (or a fork child's first need). */
void hw_snapshot_start(void);
/* Take one snapshot now on the calling thread; returns the snapshot id or -1. From an
 * application thread (API, exit), caller says where its own stack begins (the shim's frames
 * below are not roots, so a stale pointer left in them cannot hide a leak) and holds its
 * registers; it stays valid until this returns. From the helper: NULL. */
long hw_snapshot_take(const char *trigger, const char *label, const struct hw_caller *caller);
/* This image is about to exec another (exechooks.c): see hw_output_before_exec. Until
 * hw_snapshot_exec_failed (the exec returned), no snapshot is taken. */
void hw_snapshot_before_exec(void);
void hw_snapshot_exec_failed(void);
/* exechooks.c: resolve the real exec functions (guarded, at start: never in a vfork child). */
void hw_exechooks_init(void);
/* At exit: the final snapshot (if enabled); no snapshot is taken after it. */
void hw_snapshot_at_exit(void);
/* The application is installing a handler for sig (sigaction/signal wrappers): if the shim
 * took sig for snapshots, say once that snapshots on signal are off. Context: SIGSAFE. */
void hw_snapshot_signal_taken_over(int sig);
/* fork handlers. */
void hw_snapshot_atfork_prepare(void);
void hw_snapshot_atfork_parent(void);
void hw_snapshot_atfork_child(void);

#endif
