/* pprof.h: writing a profile as a gzip'd google/pprof profile.proto, in the layout of Go's heap
 * profiles (runtime/pprof writeHeapProto), so `go tool pprof` and the pprof web UI read it. */
#ifndef HW_PPROF_H
#define HW_PPROF_H

#include "profile.h"

/* Write p to path ("-" for standard output) as a gzip'd profile.proto: sample types
 * alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes (values as
 * they are: the shim already unbiased them), then leaked_objects/count, leaked_space/bytes
 * (exact; 0 for a snapshot without a heap walk), period space/bytes = p->sample_rate, default
 * sample type "inuse_space", one Mapping per module referenced, one Location per struct
 * location (inlined frames as several Lines, innermost first), Functions deduplicated by
 * (name, file), a numeric label "bytes" = average block size, and a comment naming the
 * snapshot. Samples whose values are all zero are left out; a location without a module (the
 * "(unsampled)" pseudo-location) gets no Mapping.
 *
 * Uses only p's samples, their locations and the locations' module pointers (not p->db nor
 * p->sc), so a struct profile filled by hand works too. Returns 0, or -1 after error()
 * ("cannot write 'path': reason"); a file may be left partly written. */
int pprof_write(const struct profile *p, const char *path);

/* As pprof_write, with default_sample_type set to value_names[sample_index] instead. */
int pprof_write_index(const struct profile *p, const char *path, int sample_index);

#endif
