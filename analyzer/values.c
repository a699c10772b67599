/* This file implements the names of the sample types, shared by every report and the pprof
 * encoder (kept apart from profile.c so the encoder's unit test needs no database): Go's four
 * heap sample types in Go's order, then the two the heap walk adds, then the two the event log adds. */
#include <string.h>
#include "profile.h"

const char *const value_names[NV] = { "alloc_objects", "alloc_space", "inuse_objects", "inuse_space",
                                      "leaked_objects", "leaked_space", "temporary_objects", "temporary_space" };
const char *const value_units[NV] = { "count", "bytes", "count", "bytes", "count", "bytes", "count", "bytes" };

int value_index(const char *name)
{
    for (int i = 0; i < NV; i++)
        if (!strcmp(name, value_names[i]))
            return i;
    return -1;
}

