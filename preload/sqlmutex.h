/* sqlmutex.h: the private SQLite's mutexes, with a gate that lets fork wait for no SQLite
 * mutex being held rather than for a whole SQLite operation.
 *
 * A child forked while another thread held one of SQLite's mutexes would wait for it for
 * ever. fork used to wait for the sink lock, held around whole operations: an event log chunk
 * or a checkpoint took tens to hundreds of milliseconds, and a fork waited that long (or its
 * child did without a database after a second). SQLite holds its global mutexes for
 * microseconds, and between them its global state is whole; a connection is used by one
 * thread (SQLITE_CONFIG_MULTITHREAD), so a child that never touches the parent's connections
 * may use SQLite on its own. The fork prepare handler closes the gate and waits until no
 * thread holds a SQLite mutex; a thread that holds none waits at the gate before taking one,
 * one that holds some passes (it may be on its way to releasing them).
 * Context: the methods run inside SQLite, never in a signal handler. */
#ifndef HW_SQLMUTEX_H
#define HW_SQLMUTEX_H
#include <stdbool.h>

/* Hand SQLite these mutexes: before sqlite3_initialize. 0, or SQLite's error code. */
int hw_sqlmutex_install(void);
/* Close the gate and wait, ms at most, until no thread holds a SQLite mutex. False when one
 * still does: a child forked now must not use SQLite. The gate stays closed either way,
 * until one of the two below. */
bool hw_sqlmutex_fork_prepare(int ms);
void hw_sqlmutex_fork_parent(void);
/* The child: the parent's other threads are gone, and with them whatever they held. */
void hw_sqlmutex_fork_child(void);
#endif
