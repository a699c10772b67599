/* record.h: what the hooks do around the real allocator: sample, capture, count, track. */
#ifndef HW_RECORD_H
#define HW_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "hw.h"
#include "livetable.h"

/* A new block p of `size` requested bytes. Called after the real allocator succeeded. */
void hw_record_alloc(void *p, size_t size) HW_HOOKSAFE;
/* Block p is about to be released: call before the real free (livetable.c note 3). Whether
 * it was tracked; its entry goes to *out unless out is NULL. */
bool hw_record_free(void *p, struct hw_live_entry *out) HW_HOOKSAFE;
/* Let the live table count allocations and frees under its locks (once, at init). */
void hw_record_init(void) HW_HOOKSAFE;

#endif
