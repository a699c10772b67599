/* top_types.h: `heapwatch top --by type` (top_types.c). Context: analyzer only. */
#ifndef HW_TOP_TYPES_H
#define HW_TOP_TYPES_H

#include "options.h"

/* Print the report of snapshot spec ("[DB:]ID") by type; dies on bad input. Returns 0. */
int top_by_type(const char *spec, const struct report_opts *o);

#endif
