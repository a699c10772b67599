/* group_reports.h: `growth` and `diff` by a heap-walk grouping (groupings.h: --by owner),
 * the halves of cmd_growth.c and cmd_diff.c that read heap walks instead of profiles. The
 * commands parse and check their options, then hand over.
 *
 * The value of a row is its bytes (--sample-index inuse_space, the default) or its objects
 * (inuse_objects): what the owner retains, or what is unreachable at the site. */
#ifndef HW_GROUP_REPORTS_H
#define HW_GROUP_REPORTS_H

#include "options.h"

struct hwdb;

/* `growth DB --by owner`: every walked snapshot of db, loaded and released one at a time;
 * snapshots without a heap walk are left out with a warning, and none at all dies (3).
 * Returns the exit status. */
int growth_by_group(struct hwdb *db, const struct report_opts *o);
/* `diff A B --by owner`: both must have a heap walk (else dies 3). Returns the exit status. */
int diff_by_group(const char *spec_a, const char *spec_b, const struct report_opts *o);

#endif
