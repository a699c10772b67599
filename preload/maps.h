/* maps.h: the process's memory mappings, as /proc/self/maps lists them, for a heap walk:
 * which ranges may be read. Context: SIGSAFE (raw system calls, the shim's own memory). */
#ifndef HW_MAPS_H
#define HW_MAPS_H

#include <stdbool.h>
#include <stdint.h>
#include "sys.h"

struct hw_mapping {
    uintptr_t lo, hi;
    bool readable;
};

/* Read /proc/self/maps into maps (struct hw_mapping, sorted and disjoint); empty on failure. */
void hw_maps_read(struct hw_vec *maps) HW_SIGSAFE;
/* The first mapping that ends above a, or NULL. */
const struct hw_mapping *hw_maps_from(const struct hw_vec *maps, uintptr_t a) HW_SIGSAFE;
/* The mapping that holds a, or NULL. */
const struct hw_mapping *hw_maps_of(const struct hw_vec *maps, uintptr_t a) HW_SIGSAFE;
/* The end of the run of adjacent readable mappings that holds a; or, if a is not readable,
 * 0, with *next the start of the next readable mapping (UINTPTR_MAX if none). With no
 * mappings at all (hand-made roots in a unit test) everything is readable. */
uintptr_t hw_maps_readable_end(const struct hw_vec *maps, uintptr_t a, uintptr_t *next) HW_SIGSAFE;

#endif
