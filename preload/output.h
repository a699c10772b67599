/* output.h: where this process's database goes. The name comes from HEAPWATCH_OUT (%p pid,
 * %e program name); the file is created at the first need (at start, or at a fork child's
 * first snapshot) and kept open read-only, so that `heapwatch snap` finds it among the
 * process's open files. Every function runs guarded, under the snapshot lock (snapshot.c). */
#ifndef HW_OUTPUT_H
#define HW_OUTPUT_H

#include <stdbool.h>
#include "hw.h"

/* Create this process's database if it has none yet; false (with one message, once) if it
 * cannot be. A name already taken is never overwritten: a fixed name (no %p) becomes
 * NAME.PID.db, a pid name NAME-2.db, NAME-3.db ... (an image exec'd in the same pid); a fork
 * child's fixed name is NAME.PID.db at once. Under `heapwatch run`, the name goes to its
 * manifest. */
bool hw_output_ensure(void);
/* Whether this process has its database (created, and not given up before an exec); false
 * in a vfork child, whose pid is not the database's. Reads two words: safe anywhere. */
bool hw_output_ready(void) HW_SIGSAFE;
/* The database's path (valid once hw_output_ensure returned true). */
const char *hw_output_path(void);
/* A snapshot was committed to it. */
void hw_output_note_snapshot(void);
/* Before this image execs another: a database that holds no snapshot goes, so that the next
 * image (a wrapper script's final program, say) can take its name. False in a vfork child or
 * a process whose database is not its own. */
void hw_output_before_exec(void);
/* Whether hw_output_before_exec would remove the database: it is this process's own (not a
 * vfork child's view of its parent's) and holds no snapshot. Reads two words: safe anywhere. */
bool hw_output_droppable(void) HW_SIGSAFE;
/* In a fork child: the parent's database is the parent's; remember whose child this is. */
void hw_output_forget_in_child(void);
/* The parent's pid in a fork child (0 otherwise). */
int hw_output_forked_from(void);

#endif
