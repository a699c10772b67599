/* record.h: what the hooks do around the real allocator: sample, capture, count, track. */
#ifndef HW_RECORD_H
#define HW_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "hw.h"
#include "livetable.h"

/* A new block p of `size` requested bytes. Called after the real allocator succeeded. */
void hw_record_alloc(void *p, size_t size) HW_HOOKSAFE;
/* Block p is about to be released: call before the real free (livetable.c note 3). */
void hw_record_free(void *p) HW_HOOKSAFE;
/* Let the live table count allocations and frees under its locks (once, at init). */
void hw_record_init(void) HW_HOOKSAFE;
/* Count the free of a block taken out of the live table (called by the table). */
void hw_record_free_entry(const struct hw_live_entry *e) HW_HOOKSAFE;
/* The sampling weight of an allocation of `size` bytes: 1/(1-exp(-size/R)), in
 * HW_WEIGHT_ONE units; exactly HW_WEIGHT_ONE when every allocation is recorded. */
uint64_t hw_sample_weight(uint64_t size) HW_HOOKSAFE;
/* Reseed the calling thread's sampler (fork child, tests). */
void hw_record_reset_thread(void) HW_HOOKSAFE;

#endif
