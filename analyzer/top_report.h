/* top_report.h: the rendering of `heapwatch top`, which `peak` shares. */
#ifndef HW_TOP_REPORT_H
#define HW_TOP_REPORT_H

#include "json.h"
#include "options.h"
#include "report.h"

/* The header line and the rows, as pprof's top prints them. */
void top_print_text(const struct profile *p, struct rows *rows, const struct report_opts *o);
/* The report's fields (db, snapshot, label, time_ns, ..., rows) into an open JSON object. */
void top_json_fields(struct json *j, const struct profile *p, struct rows *rows, const struct report_opts *o);

#endif
