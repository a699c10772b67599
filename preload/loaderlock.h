/* loaderlock.h: the loader lock that glibc's fork leaves held in a child (dl_load_write_lock,
 * taken by every dl_iterate_phdr), which the shim's own dl_iterate_phdr calls in a fork child
 * would otherwise wait for for ever. */
#ifndef HW_LOADERLOCK_H
#define HW_LOADERLOCK_H

#include <stdbool.h>
#include "hw.h"

/* Find the lock; once, guarded, at start, when no other thread can be inside dl_iterate_phdr
 * for long. Without a conclusive answer nothing is done later. */
void hw_loaderlock_init(void);
/* In a fork child: if a thread other than the forking one (forking_tid, its tid in the
 * parent) held the lock, it is gone: make the lock free. If the forking thread held it (fork
 * inside a dl_iterate_phdr callback), it is now this thread's. */
void hw_loaderlock_after_fork(int forking_tid);
/* Whether the lock was found (for tests). */
bool hw_loaderlock_known(void);

#endif
