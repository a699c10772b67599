/* snapshot.h: taking one profile snapshot, on the thread that asks for it, and the shim's
 * snapshot-side start, exec, exit and fork handling. When snapshots are taken (the helper
 * thread, the trigger signal, `heapwatch snap`, the interval) is trigger.h's. */
#ifndef HW_SNAPSHOT_H
#define HW_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include "hw.h"
#include "stw.h"

/* Make ready to take snapshots (roots, loader lock, modules, stop-the-world, SQLite), then
 * start the triggers (hw_trigger_start: the helper thread, which creates the database, and
 * the trigger signal). Guarded, from the constructor. */
void hw_snapshot_start(void);
/* Take one snapshot now on the calling thread; returns the snapshot id or -1. From an
 * application thread (API, exit), caller says where its own stack begins (the shim's frames
 * below are not roots, so a stale pointer left in them cannot hide a leak) and holds its
 * registers; it stays valid until this returns. From the helper: NULL. */
long hw_snapshot_take(const char *trigger, const char *label, const struct hw_caller *caller);
/* This image is about to exec another (exechooks.c): waits for a write under way (the
 * database's creation included), then see hw_output_before_exec. Until
 * hw_snapshot_exec_failed (the exec returned), no snapshot is taken and no database made.
 * False, doing nothing, in a vfork child. */
bool hw_snapshot_before_exec(void);
void hw_snapshot_exec_failed(void);
/* This image is about to exec another: a snapshot request still waiting for the helper
 * (trigger.h) is taken now, as exit would take it. Nothing in a vfork child. */
void hw_snapshot_pending_before_exec(void);
/* This process is about to end through _exit or _Exit (exechooks.c), with no exit snapshot:
 * waits (at most about 2 s) for a creation or a write of its database under way, which the
 * end would cut short, leaving a file without its tables, and keeps any other from starting.
 * Nothing in a vfork child, nor on a thread inside the shim (a signal handler's _exit). */
void hw_snapshot_before_quick_exit(void);
/* exechooks.c: resolve the real exec functions (guarded, at start: never in a vfork child). */
void hw_exechooks_init(void);
/* At exit: the final snapshot (if enabled); no snapshot is taken after it. */
void hw_snapshot_at_exit(void);
/* For the helper thread (trigger.c), under the lock that serialises snapshots: create the
 * database (at the helper's start, so that `heapwatch snap` finds it); wait for the walk
 * child still checkpointing an application thread's snapshot, if any. */
void hw_snapshot_create_output(void);
/* Write the event log's waiting records (eventwriter.h), under the snapshots' write lock. */
void hw_snapshot_flush_events(void);
void hw_snapshot_reap_checkpointer(void);
/* fork handlers. */
void hw_snapshot_atfork_prepare(void);
void hw_snapshot_atfork_parent(void);
void hw_snapshot_atfork_child(void);

#endif
